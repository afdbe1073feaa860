package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/webhook"
)

// prHost is a host whose payload is a webhook.Event in JSON, signed like
// GitHub's: the handler's pull request path is tested apart from any
// host's dialect.
type prHost struct{}

func (prHost) Name() string   { return "prhost" }
func (prHost) MaxBody() int64 { return 1 << 20 }
func (prHost) Peek(h http.Header, body []byte) (webhook.Event, error) {
	ev, err := prHost{}.Parse(h, body)
	ev.PullRequest = nil
	return ev, err
}
func (prHost) Parse(_ http.Header, body []byte) (webhook.Event, error) {
	var ev webhook.Event
	err := json.Unmarshal(body, &ev)
	return ev, err
}
func (prHost) Verify(h http.Header, body []byte, secret string) error {
	return webhook.CheckPrefixedHMAC(h, "X-Signature", body, secret)
}

const (
	prHead = "1111111111111111111111111111111111111111"
	prNext = "2222222222222222222222222222222222222222"
	// Written out (see the ids above): r-pr, refs/pull/7/head, rule 1.
	idPR7     = "2ab224b3468cb3d5a14a" // at prHead
	idPR7Next = "da436deac2377a76e26f" // at prNext
)

func prRepoOf(mode string) model.Repo {
	r := demoRepo()
	r.ID, r.Provider, r.PullRequests = "r-pr", "prhost", mode
	r.Rules = []model.Rule{
		{SourceType: "branch", Source: "main", Tags: []string{"latest"}},
		{SourceType: "pull_request", Source: "main", Tags: []string{"pr-{pr}"}},
	}
	return r
}

func newPREnv(t *testing.T, mode string) *env {
	e := newEnv(t, []webhook.Provider{prHost{}}, prRepoOf(mode))
	e.h.PullRequests = pullRequests{e}
	return e
}

// pullRequests meets webhook.PullRequests as cmd/slipway does.
type pullRequests struct{ e *env }

func (p pullRequests) Newest(ctx context.Context, repoID, ref string) (string, []string, error) {
	return p.e.store.Newest(ctx, repoID, ref)
}
func (p pullRequests) GetBuild(ctx context.Context, id string) (model.Build, error) {
	return p.e.store.GetBuild(ctx, id)
}
func (p pullRequests) Cancel(ctx context.Context, id, reason, by string) (bool, error) {
	return p.e.queue.Cancel(ctx, id, reason, by)
}

func (e *env) sendPR(id string, pr webhook.PullRequest) (int, map[string]any) {
	e.t.Helper()
	body, err := json.Marshal(webhook.Event{Kind: webhook.KindPullRequest, RawKind: "pull_request", DeliveryID: id, Repo: "acme/demo", PullRequest: &pr})
	if err != nil {
		e.t.Fatal(err)
	}
	h := http.Header{}
	h.Set("X-Signature", "sha256="+webhook.SignHMAC(body, secret))
	return e.post("/hooks/prhost", h, body)
}

func openedPR(fork bool) webhook.PullRequest {
	return webhook.PullRequest{Action: webhook.PROpened, Number: 7, Head: prHead, HeadRef: "feature", Base: "main", Fork: fork, FetchRef: "refs/pull/7/head", Title: "Add feature", Author: "octocat"}
}

func TestHandlerPullRequestInternalBuilds(t *testing.T) {
	e := newPREnv(t, "")
	code, resp := e.sendPR("d1", openedPR(false))
	accepted(t, code, resp, idPR7)
	e.recorded(idPR7)
	b := e.build(idPR7)
	want := &model.PullRequest{Number: 7, Head: prHead, HeadRef: "feature", Base: "main", FetchRef: "refs/pull/7/head"}
	if b.Ref != "refs/pull/7/head" || b.Commit != prHead || !reflect.DeepEqual(b.Tags, []string{"pr-7"}) || !reflect.DeepEqual(b.PullRequest, want) || b.CloneURL != internal {
		t.Errorf("build: ref %q commit %q tags %v pr %+v clone %q", b.Ref, b.Commit, b.Tags, b.PullRequest, b.CloneURL)
	}
	// The same delivery again queues nothing.
	code, resp = e.sendPR("d1", openedPR(false))
	accepted(t, code, resp, idPR7)
	e.recorded(idPR7)
}

func TestHandlerPullRequestForkUnderInternalIsSkipped(t *testing.T) {
	e := newPREnv(t, model.PullRequestsInternal)
	code, resp := e.sendPR("d1", openedPR(true))
	accepted(t, code, resp)
	if resp["reason"] != "pull request from a fork; pull_requests is internal" {
		t.Errorf("reason = %v", resp["reason"])
	}
	if got := e.builds(); len(got) != 1 || e.build(got[0]).Status != model.StatusSkipped || e.jobs() != 0 {
		t.Fatalf("builds %v, jobs %d; want one skipped record, no job", got, e.jobs())
	}
}

func TestHandlerPullRequestOffRecordsNothing(t *testing.T) {
	e := newPREnv(t, model.PullRequestsOff)
	code, resp := e.sendPR("d1", openedPR(false))
	accepted(t, code, resp)
	if resp["ignored"] != "pull_requests is off" {
		t.Errorf("ignored = %v", resp["ignored"])
	}
	e.recorded()
}

func TestHandlerPullRequestForkUnderAllBuildsWithoutTags(t *testing.T) {
	e := newPREnv(t, model.PullRequestsAll)
	code, resp := e.sendPR("d1", openedPR(true))
	accepted(t, code, resp, idPR7)
	if b := e.build(idPR7); len(b.Tags) != 0 || b.PullRequest == nil || !b.PullRequest.Fork {
		t.Errorf("fork build: tags %v, pr %+v; want no tags, a fork", b.Tags, b.PullRequest)
	}
}

func TestHandlerPullRequestUpdatedSupersedesThenClosedCancels(t *testing.T) {
	e := newPREnv(t, "")
	code, resp := e.sendPR("d1", openedPR(false))
	accepted(t, code, resp, idPR7)
	e.clock = e.clock.Add(time.Minute)
	upd := openedPR(false)
	upd.Action, upd.Head = webhook.PRUpdated, prNext
	code, resp = e.sendPR("d2", upd)
	accepted(t, code, resp, idPR7Next)
	if b := e.build(idPR7); b.Status != model.StatusCancelled || b.SupersededBy != idPR7Next {
		t.Errorf("first head's build: %s superseded by %q, want cancelled by %s", b.Status, b.SupersededBy, idPR7Next)
	}
	closed := webhook.PullRequest{Action: webhook.PRClosed, Number: 7}
	code, resp = e.sendPR("d3", closed)
	accepted(t, code, resp)
	if got, _ := resp["cancelled"].([]any); len(got) != 1 || got[0] != idPR7Next {
		t.Errorf("cancelled = %v, want [%s]", resp["cancelled"], idPR7Next)
	}
	if b := e.build(idPR7Next); b.Status != model.StatusCancelled || b.Reason != webhook.ReasonClosed {
		t.Errorf("newest build: %s %q, want cancelled %q", b.Status, b.Reason, webhook.ReasonClosed)
	}
}

func TestHandlerPullRequestRejectsBadFields(t *testing.T) {
	e := newPREnv(t, "")
	bad := openedPR(false)
	bad.FetchRef = "pull/7/head"
	if code, resp := e.sendPR("d1", bad); code != http.StatusBadRequest {
		t.Fatalf("status %d %v, want 400", code, resp)
	}
	bad = openedPR(false)
	bad.Head = "HEAD"
	if code, resp := e.sendPR("d2", bad); code != http.StatusBadRequest {
		t.Fatalf("status %d %v, want 400", code, resp)
	}
	e.recorded()
}

// deletedTags records what a TagDeleter was asked to delete.
type deletedTags struct{ got *[]string }

func (d deletedTags) DeleteTags(_ context.Context, repo model.Repo, tags []string) error {
	*d.got = append(*d.got, repo.Image+":"+strings.Join(tags, ","))
	return nil
}

func TestHandlerPullRequestMergedDeletesItsTags(t *testing.T) {
	repo := prRepoOf("")
	repo.Rules[1].DeleteOnClose = true
	repo.Rules = append(repo.Rules, model.Rule{SourceType: "pull_request", Source: "main", Tags: []string{"keep-{pr}"}, Dockerfile: "other.Dockerfile"})
	e := newEnv(t, []webhook.Provider{prHost{}}, repo)
	e.h.PullRequests = pullRequests{e}
	var deleted []string
	e.h.Tags = deletedTags{&deleted}
	code, resp := e.sendPR("d1", openedPR(false))
	accepted(t, code, resp, "518a5eff4b6804f5efed", "ba184e2089a1fbf1b611") // rules 1 (delete_on_close changes its id) and 2
	merged := webhook.PullRequest{Action: webhook.PRMerged, Number: 7, Head: prHead, Base: "main"}
	code, resp = e.sendPR("d2", merged)
	accepted(t, code, resp)
	if want := []string{"127.0.0.1:5000/acme/demo:pr-7"}; !reflect.DeepEqual(deleted, want) {
		t.Errorf("deleted %v, want %v (only the delete_on_close rule's tags)", deleted, want)
	}
	// A fork's close deletes nothing: its builds pushed nothing.
	deleted = nil
	code, resp = e.sendPR("d3", webhook.PullRequest{Action: webhook.PRClosed, Number: 8, Fork: true, Base: "main"})
	accepted(t, code, resp)
	if len(deleted) != 0 {
		t.Errorf("fork close deleted %v", deleted)
	}
}
