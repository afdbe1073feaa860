package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/github"
)

const (
	secret     = "3f9c1e7a-webhook-secret"
	branchHead = "4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5"
	internal   = "https://git.acme.internal/acme/demo.git"
)

var (
	now         = time.Date(2024, 3, 4, 9, 17, 42, 0, time.UTC)
	errNotFound = errors.New("repo not found")
)

// fakeRepos is an in-memory Repos keyed by provider and full name.
type fakeRepos struct {
	repos map[string]model.Repo
	err   error // returned for every lookup when set
	calls int
}

func (f *fakeRepos) FindRepo(_ context.Context, provider, fullName string) (model.Repo, error) {
	f.calls++
	if f.err != nil {
		return model.Repo{}, f.err
	}
	r, ok := f.repos[provider+":"+fullName]
	if !ok {
		return model.Repo{}, errNotFound
	}
	return r, nil
}

// fakeQueue is an in-memory Queue that reports builds it has seen.
type fakeQueue struct {
	mu     sync.Mutex
	builds map[string]model.Build
	order  []string
	failAt int // fail the failAt-th submission (1-based) and all later ones; 0 never
	calls  int
}

func (q *fakeQueue) SubmitBuild(_ context.Context, b model.Build) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	if q.failAt > 0 && q.calls >= q.failAt {
		return false, errors.New("nats: no responders available for request")
	}
	if q.builds == nil {
		q.builds = map[string]model.Build{}
	}
	if _, ok := q.builds[b.ID]; ok {
		return true, nil
	}
	q.builds[b.ID] = b
	q.order = append(q.order, b.ID)
	return false, nil
}

func (q *fakeQueue) CreateBuild(ctx context.Context, b model.Build) (bool, error) {
	dup, err := q.SubmitBuild(ctx, b)
	return !dup, err
}

func (q *fakeQueue) Supersede(context.Context, model.Build) ([]string, error) { return nil, nil }

func (q *fakeQueue) queued() []model.Build {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]model.Build, len(q.order))
	for i, id := range q.order {
		out[i] = q.builds[id]
	}
	return out
}

// smallProvider is GitHub with a small body limit, so the 413 path can be
// tested without 25 MB bodies.
type smallProvider struct {
	github.Provider
	max int64
}

func (p smallProvider) MaxBody() int64 { return p.max }

func demoRepo() model.Repo {
	return model.Repo{
		ID: "r1", Provider: "github", FullName: "acme/demo",
		CloneURL:      internal,
		WebhookSecret: secret,
		Image:         "127.0.0.1:5000/acme/demo",
		Rules: []model.Rule{
			{SourceType: "branch", Source: "main", Tags: []string{"latest", "main"}},
			{SourceType: "tag", Source: "v1.2.0", Tags: []string{"1.2.0", "stable"}, Dockerfile: "build/Dockerfile", Context: "build"},
			{SourceType: "branch", Source: "release", Tags: []string{"release"}},
			// push-delete.json deletes this branch; a deletion must not build.
			{SourceType: "branch", Source: "feature/login", Tags: []string{"login"}},
		},
	}
}

type env struct {
	mux   *http.ServeMux
	repos *fakeRepos
	queue *fakeQueue
}

func newEnv(t *testing.T, providers ...webhook.Provider) *env {
	t.Helper()
	if len(providers) == 0 {
		providers = []webhook.Provider{github.Provider{}}
	}
	e := &env{
		repos: &fakeRepos{repos: map[string]model.Repo{"github:acme/demo": demoRepo()}},
		queue: &fakeQueue{},
		mux:   http.NewServeMux(),
	}
	e.mux.Handle("POST /hooks/{provider}", &webhook.Handler{
		Providers:  providers,
		Repos:      e.repos,
		Queue:      e.queue,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:        func() time.Time { return now },
		IsNotFound: func(err error) bool { return errors.Is(err, errNotFound) },
	})
	return e
}

type delivery struct {
	path        string // defaults to /hooks/github
	event       string
	id          string
	contentType string // defaults to application/json
	body        []byte
	sig         *string // X-Hub-Signature-256; nil signs body with secret, "" leaves it out
}

func (e *env) send(t *testing.T, d delivery) (int, map[string]any) {
	t.Helper()
	if d.path == "" {
		d.path = "/hooks/github"
	}
	if d.contentType == "" {
		d.contentType = "application/json"
	}
	req := httptest.NewRequest(http.MethodPost, d.path, bytes.NewReader(d.body))
	req.Header.Set("Content-Type", d.contentType)
	req.Header.Set("X-GitHub-Event", d.event)
	req.Header.Set("X-GitHub-Delivery", d.id)
	switch {
	case d.sig == nil:
		req.Header.Set("X-Hub-Signature-256", "sha256="+webhook.SignHMAC(d.body, secret))
	case *d.sig != "":
		req.Header.Set("X-Hub-Signature-256", *d.sig)
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	var out map[string]any
	if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusMethodNotAllowed && ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if rec.Body.Len() > 0 && rec.Code != http.StatusMethodNotAllowed {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("response %d is not JSON: %v: %s", rec.Code, err, rec.Body)
		}
	}
	return rec.Code, out
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("github", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr(s string) *string { return &s }

// buildIDs reads {"builds": [...]} from a response.
func buildIDs(t *testing.T, resp map[string]any) []string {
	t.Helper()
	raw, ok := resp["builds"].([]any)
	if !ok {
		t.Fatalf("response has no builds list: %v", resp)
	}
	ids := make([]string, len(raw))
	for i, v := range raw {
		ids[i], _ = v.(string)
	}
	return ids
}

func TestHandlerPushBranchQueuesBuild(t *testing.T) {
	e := newEnv(t)
	const id = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	code, resp := e.send(t, delivery{event: "push", id: id, body: fixture(t, "push-branch.json")})
	if code != http.StatusAccepted {
		t.Fatalf("status = %d, want 202: %v", code, resp)
	}
	queued := e.queue.queued()
	if len(queued) != 1 {
		t.Fatalf("queued %d builds, want 1", len(queued))
	}
	want := model.Build{
		ID:     webhook.BuildID("r1", id, "refs/heads/main", branchHead, 0),
		RepoID: "r1", Ref: "refs/heads/main", Commit: branchHead,
		Status: model.StatusQueued, Image: "127.0.0.1:5000/acme/demo",
		Tags:     []string{"latest", "main"},
		Rule:     model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest", "main"}, Dockerfile: "Dockerfile", Context: "."},
		CloneURL: internal, // the repository's own URL beats the payload's
		Pusher:   "mona", Trigger: "webhook", DeliveryID: id, CreatedAt: now,
		Rules: []int{0}, Before: "9b2c6f0a1d4e8b7c3a5f2e1d0c9b8a7f6e5d4c3b",
		Message: "Bump base image to alpine 3.19\n\nThe old one is out of support.", Seq: now.UnixNano(),
	}
	if !reflect.DeepEqual(queued[0], want) {
		t.Errorf("queued build =\n %+v\nwant\n %+v", queued[0], want)
	}
	if got := buildIDs(t, resp); !reflect.DeepEqual(got, []string{want.ID}) {
		t.Errorf("builds = %v, want [%s]", got, want.ID)
	}
}

func TestHandlerPushTagBuildsTaggedCommit(t *testing.T) {
	e := newEnv(t)
	code, resp := e.send(t, delivery{event: "push", id: "d-tag", body: fixture(t, "push-tag.json")})
	if code != http.StatusAccepted {
		t.Fatalf("status = %d, want 202: %v", code, resp)
	}
	queued := e.queue.queued()
	if len(queued) != 1 {
		t.Fatalf("queued %d builds, want 1", len(queued))
	}
	b := queued[0]
	// The fixture's "after" is the annotated tag object; the build needs the
	// commit it points at (head_commit.id).
	if b.Commit != branchHead {
		t.Errorf("Commit = %s, want the tagged commit %s", b.Commit, branchHead)
	}
	if b.Ref != "refs/tags/v1.2.0" || !reflect.DeepEqual(b.Tags, []string{"1.2.0", "stable"}) {
		t.Errorf("Ref, Tags = %s, %v; want refs/tags/v1.2.0, [1.2.0 stable]", b.Ref, b.Tags)
	}
	if b.Rule.Dockerfile != "build/Dockerfile" || b.Rule.Context != "build" {
		t.Errorf("Rule = %+v, want the v1.2.0 rule", b.Rule)
	}
	if b.Pusher != "hubot" {
		t.Errorf("Pusher = %q, want hubot", b.Pusher)
	}
	if got := buildIDs(t, resp); !reflect.DeepEqual(got, []string{b.ID}) {
		t.Errorf("builds = %v, want [%s]", got, b.ID)
	}
}

func TestHandlerFallsBackToPayloadCloneURL(t *testing.T) {
	e := newEnv(t)
	r := demoRepo()
	r.CloneURL = ""
	e.repos.repos["github:acme/demo"] = r
	if code, resp := e.send(t, delivery{event: "push", id: "d1", body: fixture(t, "push-branch.json")}); code != http.StatusAccepted {
		t.Fatalf("status = %d, want 202: %v", code, resp)
	}
	q := e.queue.queued()
	if len(q) != 1 || q[0].CloneURL != "https://github.com/acme/demo.git" {
		t.Fatalf("queued = %+v, want one build cloning the payload's clone_url", q)
	}
}

func TestHandlerFormEncodedPush(t *testing.T) {
	e := newEnv(t)
	body := []byte("payload=" + url.QueryEscape(string(fixture(t, "push-branch.json"))))
	code, resp := e.send(t, delivery{event: "push", id: "d-form", contentType: "application/x-www-form-urlencoded", body: body})
	if code != http.StatusAccepted {
		t.Fatalf("status = %d, want 202: %v", code, resp)
	}
	if ids := buildIDs(t, resp); len(ids) != 1 || len(e.queue.queued()) != 1 {
		t.Fatalf("builds = %v, queued %d; want one", ids, len(e.queue.queued()))
	}
}

func TestHandlerRedeliveryNamesSameBuilds(t *testing.T) {
	e := newEnv(t)
	r := demoRepo()
	r.Rules = append(r.Rules, model.Rule{SourceType: "branch", Source: "main", Tags: []string{"edge"}, Dockerfile: "edge.Dockerfile"})
	e.repos.repos["github:acme/demo"] = r
	d := delivery{event: "push", id: "72d3162e-cc78-11e3-81ab-4c9367dc0958", body: fixture(t, "push-branch.json")}

	code1, resp1 := e.send(t, d)
	code2, resp2 := e.send(t, d)
	if code1 != http.StatusAccepted || code2 != http.StatusAccepted {
		t.Fatalf("statuses = %d, %d; want 202 twice", code1, code2)
	}
	first, second := buildIDs(t, resp1), buildIDs(t, resp2)
	if len(first) != 2 {
		t.Fatalf("first delivery: builds = %v, want 2 (two rules on main)", first)
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("redelivery builds = %v, want %v", second, first)
	}
	if n := len(e.queue.queued()); n != 2 {
		t.Errorf("queue holds %d builds, want 2", n)
	}

	// A new delivery of the same push is a new request for builds.
	d.id = "8e4f2a10-cc78-11e3-9b1c-5d2e3f4a5b6c"
	_, resp3 := e.send(t, d)
	if third := buildIDs(t, resp3); len(third) != 2 || third[0] == first[0] || third[1] == first[1] {
		t.Errorf("new delivery builds = %v, want 2 ids different from %v", third, first)
	}
}

func TestHandlerResponses(t *testing.T) {
	bigMax := int64(len(fixture(t, "push-branch.json")))
	tests := []struct {
		name       string
		providers  []webhook.Provider
		d          delivery
		reposErr   error
		queueFail  int
		wantCode   int
		wantBuilds int  // builds listed in a 2xx answer
		wantQueued int  // builds in the queue afterwards
		wantError  bool // answer carries {"error": ...}
	}{
		{name: "ping", d: delivery{event: "ping", id: "p1", body: fixture(t, "ping.json")}, wantCode: http.StatusOK},
		{name: "ping with bad signature", d: delivery{event: "ping", id: "p1", body: fixture(t, "ping.json"), sig: ptr("sha256=" + webhook.SignHMAC(fixture(t, "ping.json"), "guess"))}, wantCode: http.StatusUnauthorized, wantError: true},
		{name: "push", d: delivery{event: "push", id: "d1", body: fixture(t, "push-branch.json")}, wantCode: http.StatusAccepted, wantBuilds: 1, wantQueued: 1},
		{name: "wrong secret", d: delivery{event: "push", id: "d1", body: fixture(t, "push-branch.json"), sig: ptr("sha256=" + webhook.SignHMAC(fixture(t, "push-branch.json"), "guess"))}, wantCode: http.StatusUnauthorized, wantError: true},
		{name: "unsigned", d: delivery{event: "push", id: "d1", body: fixture(t, "push-branch.json"), sig: ptr("")}, wantCode: http.StatusUnauthorized, wantError: true},
		{name: "signature without prefix", d: delivery{event: "push", id: "d1", body: fixture(t, "push-branch.json"), sig: ptr(webhook.SignHMAC(fixture(t, "push-branch.json"), secret))}, wantCode: http.StatusUnauthorized, wantError: true},
		// Signed for main, replayed with the ref changed to another built branch.
		{name: "tampered body", d: delivery{event: "push", id: "d1", body: bytes.ReplaceAll(fixture(t, "push-branch.json"), []byte(`"refs/heads/main"`), []byte(`"refs/heads/release"`)), sig: ptr("sha256=" + webhook.SignHMAC(fixture(t, "push-branch.json"), secret))}, wantCode: http.StatusUnauthorized, wantError: true},
		{name: "unknown repo", d: delivery{event: "push", id: "d1", body: bytes.ReplaceAll(fixture(t, "push-branch.json"), []byte("acme/demo"), []byte("acme/other"))}, wantCode: http.StatusNotFound, wantError: true},
		{name: "repo store down", d: delivery{event: "push", id: "d1", body: fixture(t, "push-branch.json")}, reposErr: errors.New("nats: timeout"), wantCode: http.StatusServiceUnavailable, wantError: true},
		{name: "branch deleted", d: delivery{event: "push", id: "d1", body: fixture(t, "push-delete.json")}, wantCode: http.StatusAccepted},
		{name: "ref matches no rule", d: delivery{event: "push", id: "d1", body: bytes.ReplaceAll(fixture(t, "push-branch.json"), []byte(`"refs/heads/main"`), []byte(`"refs/heads/dev"`))}, wantCode: http.StatusAccepted},
		{name: "non-push event", d: delivery{event: "issues", id: "d1", body: fixture(t, "issues.json")}, wantCode: http.StatusAccepted},
		{name: "bad payload", d: delivery{event: "push", id: "d1", body: []byte(`{"ref":`)}, wantCode: http.StatusBadRequest, wantError: true},
		{name: "unknown provider", d: delivery{path: "/hooks/gitlab", event: "push", id: "d1", body: fixture(t, "push-branch.json")}, wantCode: http.StatusNotFound, wantError: true},
		{name: "queue down", d: delivery{event: "push", id: "d1", body: fixture(t, "push-branch.json")}, queueFail: 1, wantCode: http.StatusServiceUnavailable, wantError: true},
		{
			name:      "body at limit",
			providers: []webhook.Provider{smallProvider{max: bigMax}},
			d:         delivery{event: "push", id: "d1", body: fixture(t, "push-branch.json")},
			wantCode:  http.StatusAccepted, wantBuilds: 1, wantQueued: 1,
		},
		{
			name:      "body over limit",
			providers: []webhook.Provider{smallProvider{max: bigMax - 1}},
			d:         delivery{event: "push", id: "d1", body: fixture(t, "push-branch.json")},
			wantCode:  http.StatusRequestEntityTooLarge, wantError: true,
		},
		{
			// GitHub's real limit: 25 MB of JSON (a valid push padded with
			// trailing spaces) plus one byte.
			name: "github body over 25 MB",
			d: delivery{event: "push", id: "d1", body: func() []byte {
				b := fixture(t, "push-branch.json")
				return append(b, bytes.Repeat([]byte(" "), 25<<20+1-len(b))...)
			}()},
			wantCode: http.StatusRequestEntityTooLarge, wantError: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.providers...)
			e.repos.err = tt.reposErr
			e.queue.failAt = tt.queueFail
			code, resp := e.send(t, tt.d)
			if code != tt.wantCode {
				t.Fatalf("status = %d, want %d: %v", code, tt.wantCode, resp)
			}
			if msg, _ := resp["error"].(string); tt.wantError != (msg != "") {
				t.Errorf("error = %q, want one: %v", msg, tt.wantError)
			}
			if code/100 == 2 && code != http.StatusOK {
				if ids := buildIDs(t, resp); len(ids) != tt.wantBuilds {
					t.Errorf("builds = %v, want %d", ids, tt.wantBuilds)
				}
			}
			if n := len(e.queue.queued()); n != tt.wantQueued {
				t.Errorf("queue holds %d builds, want %d", n, tt.wantQueued)
			}
		})
	}
}

func TestHandlerIgnoredEventSaysWhy(t *testing.T) {
	e := newEnv(t)
	_, resp := e.send(t, delivery{event: "issues", id: "d1", body: fixture(t, "issues.json")})
	if why, _ := resp["ignored"].(string); !strings.Contains(why, "issues") {
		t.Errorf("ignored = %q, want it to name the issues event", why)
	}
	if e.queue.calls != 0 {
		t.Errorf("queue called %d times for an issues event", e.queue.calls)
	}
}

// A failure after some builds are stored must still not answer 2xx, so the
// host redelivers; the redelivery then completes the set.
func TestHandlerQueueFailsMidway(t *testing.T) {
	e := newEnv(t)
	r := demoRepo()
	r.Rules = append(r.Rules, model.Rule{SourceType: "branch", Source: "main", Tags: []string{"edge"}, Dockerfile: "edge.Dockerfile"})
	e.repos.repos["github:acme/demo"] = r
	e.queue.failAt = 2
	d := delivery{event: "push", id: "d1", body: fixture(t, "push-branch.json")}
	if code, resp := e.send(t, d); code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503: %v", code, resp)
	}
	e.queue.failAt = 0
	code, resp := e.send(t, d)
	if code != http.StatusAccepted {
		t.Fatalf("redelivery status = %d, want 202: %v", code, resp)
	}
	if ids := buildIDs(t, resp); len(ids) != 2 || len(e.queue.queued()) != 2 {
		t.Errorf("after redelivery builds = %v, queued %d; want 2 and 2", ids, len(e.queue.queued()))
	}
}

func TestHandlerUnknownProviderSkipsLookup(t *testing.T) {
	e := newEnv(t)
	code, _ := e.send(t, delivery{path: "/hooks/bitbucket", event: "push", id: "d1", body: fixture(t, "push-branch.json")})
	if code != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", code)
	}
	if e.repos.calls != 0 {
		t.Errorf("repos looked up %d times for an unknown provider", e.repos.calls)
	}
}

func TestHandlerOnlyPOST(t *testing.T) {
	e := newEnv(t)
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hooks/github", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET status = %d, want 405", rec.Code)
	}
}
