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

	"github.com/slipway-build/slipway/forge/bitbucket"
	"github.com/slipway-build/slipway/forge/gitea"
	"github.com/slipway-build/slipway/forge/github"
	"github.com/slipway-build/slipway/forge/gitlab"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/rules"
	"github.com/slipway-build/slipway/trigger"
	"github.com/slipway-build/slipway/webhook"
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
	repos   map[string]model.Repo
	err     error // returned for every lookup when set
	calls   int
	lookups []string // "provider:full name" of each lookup
}

func (f *fakeRepos) FindRepo(_ context.Context, provider, fullName string) (model.Repo, error) {
	f.calls++
	f.lookups = append(f.lookups, provider+":"+fullName)
	if f.err != nil {
		return model.Repo{}, f.err
	}
	r, ok := f.repos[provider+":"+fullName]
	if !ok {
		return model.Repo{}, errNotFound
	}
	return r, nil
}

func (f *fakeRepos) UpdateRepo(_ context.Context, id string, change func(*model.Repo) error) (model.Repo, error) {
	for k, r := range f.repos {
		if r.ID == id {
			err := change(&r)
			f.repos[k] = r
			return r, err
		}
	}
	return model.Repo{}, errNotFound
}

// idOf is the id of the build of rule of a registered repository.
func (e *env) idOf(t *testing.T, repoID, ref, commit string, rule int) string {
	t.Helper()
	for _, r := range e.repos.repos {
		if r.ID != repoID {
			continue
		}
		plans, err := rules.Plans(r, rules.Push{Ref: ref, Commit: commit})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range plans {
			if p.Rules[0] == rule {
				return trigger.ID(repoID, ref, commit, p)
			}
		}
	}
	t.Fatalf("no rule %d of repo %s builds %s", rule, repoID, ref)
	return ""
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

func (q *fakeQueue) Enqueue(ctx context.Context, b model.Build, _ bool) (queue.Queued, error) {
	dup, err := q.SubmitBuild(ctx, b)
	q.mu.Lock()
	defer q.mu.Unlock()
	return queue.Queued{Duplicate: dup, Build: q.builds[b.ID]}, err
}

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
	github.Webhook
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
		providers = []webhook.Provider{github.Webhook{}}
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
	h := http.Header{}
	h.Set("Content-Type", d.contentType)
	h.Set("X-GitHub-Event", d.event)
	h.Set("X-GitHub-Delivery", d.id)
	switch {
	case d.sig == nil:
		h.Set("X-Hub-Signature-256", "sha256="+webhook.SignHMAC(d.body, secret))
	case *d.sig != "":
		h.Set("X-Hub-Signature-256", *d.sig)
	}
	return e.post(t, d.path, h, d.body)
}

// post sends a webhook request with the headers given.
func (e *env) post(t *testing.T, path string, h http.Header, body []byte) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header = h.Clone()
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
	b, err := os.ReadFile(filepath.Join("..", "forge", "github", "testdata", name))
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
		ID:     e.idOf(t, "r1", "refs/heads/main", branchHead, 0),
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

	// A new delivery of the same push names the same builds: one build
	// per repository, ref, commit and plan.
	d.id = "8e4f2a10-cc78-11e3-9b1c-5d2e3f4a5b6c"
	_, resp3 := e.send(t, d)
	if third := buildIDs(t, resp3); !reflect.DeepEqual(third, first) {
		t.Errorf("new delivery builds = %v, want %v", third, first)
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

// The other hosts' webhooks, each fixture sent through the handler with the
// host's real headers and signatures or tokens.

const (
	gitlabToken  = "glwht-3f9c1e7a0b2d4c6e"
	bbCloudClone = "https://bitbucket.org/acme/demo.git"
	bbDCClone    = "https://bitbucket.acme.internal/scm/acme/demo.git"
	gitlabClone  = "https://gitlab.acme.internal/acme/platform/demo.git"
	giteaClone   = "https://gitea.acme.internal/acme/demo.git"
	forgejoClone = "https://forgejo.acme.internal/acme/demo.git"
)

// hostFixture reads testdata of another host's adapter.
func hostFixture(t *testing.T, host, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "forge", host, "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newHostsEnv serves every provider, with acme/demo registered on each host.
// The repositories have no clone URL of their own, so the payload's is used.
func newHostsEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, github.Webhook{}, bitbucket.Webhook{}, gitlab.Webhook{}, gitea.Webhook{})
	add := func(id, provider, fullName, secret string) {
		r := demoRepo()
		r.ID, r.Provider, r.FullName, r.WebhookSecret, r.CloneURL = id, provider, fullName, secret, ""
		e.repos.repos[provider+":"+fullName] = r
	}
	add("r-bb", "bitbucket", "acme/demo", secret)
	add("r-bbdc", "bitbucket-server", "ACME/demo", secret)
	add("r-gl", "gitlab", "acme/platform/demo", gitlabToken)
	add("r-gt", "gitea", "acme/demo", secret)
	return e
}

// bbCloud is a Bitbucket Cloud request signed with key ("" leaves it
// unsigned).
func bbCloud(event, id string, body []byte, key string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Bitbucket-Webhooks/2.0")
	h.Set("X-Event-Key", event)
	h.Set("X-Request-UUID", id)
	h.Set("X-Hook-UUID", "4f9b1c2e-7d3a-4e8f-9a0b-1c2d3e4f5a6b")
	h.Set("X-Attempt-Number", "1")
	if key != "" {
		h.Set("X-Hub-Signature", "sha256="+webhook.SignHMAC(body, key))
	}
	return h
}

// bbDC is a Bitbucket Data Center request.
func bbDC(event, id string, body []byte, key string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "Atlassian HttpClient 4.2.0 / Bitbucket-8.19.1 (8019001) / Default")
	h.Set("X-Event-Key", event)
	h.Set("X-Request-Id", id)
	if key != "" {
		h.Set("X-Hub-Signature", "sha256="+webhook.SignHMAC(body, key))
	}
	return h
}

// gitlabReq is a GitLab request; idempotencyKey and token "" leave those
// headers out.
func gitlabReq(event, eventUUID, idempotencyKey, token string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitLab/17.9.1")
	h.Set("X-Gitlab-Event", event)
	h.Set("X-Gitlab-Event-UUID", eventUUID)
	h.Set("X-Gitlab-Webhook-UUID", "2c1e5b7a-0d3f-4a9e-8b6c-5f4e3d2c1b0a")
	h.Set("X-Gitlab-Instance", "https://gitlab.acme.internal")
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	if token != "" {
		h.Set("X-Gitlab-Token", token)
	}
	return h
}

// giteaReq is what Gitea sends: its own headers, Gogs' and GitHub's,
// GitHub's signature included, each signed with key.
func giteaReq(event, id string, body []byte, key string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Go-http-client/1.1")
	for _, host := range []string{"Gitea", "Gogs", "GitHub"} {
		h.Set("X-"+host+"-Event", event)
		h.Set("X-"+host+"-Event-Type", event)
		h.Set("X-"+host+"-Delivery", id)
	}
	if key != "" {
		sig := webhook.SignHMAC(body, key)
		h.Set("X-Gitea-Signature", sig)
		h.Set("X-Gogs-Signature", sig)
		h.Set("X-Hub-Signature", "sha1=0f0c5d3b5e1a8c7f2e4d6b9a1c3e5f7a9b2d4c6e")
		h.Set("X-Hub-Signature-256", "sha256="+sig)
	}
	return h
}

// forgejoReq is what Forgejo sends: Gitea's request plus its own headers.
func forgejoReq(event, id string, body []byte, key string) http.Header {
	h := giteaReq(event, id, body, key)
	h.Set("X-Forgejo-Event", event)
	h.Set("X-Forgejo-Event-Type", event)
	h.Set("X-Forgejo-Delivery", id)
	if key != "" {
		h.Set("X-Forgejo-Signature", webhook.SignHMAC(body, key))
	}
	return h
}

// pad makes a valid JSON body of exactly n bytes by appending spaces.
func pad(b []byte, n int) []byte {
	return append(append([]byte{}, b...), bytes.Repeat([]byte(" "), n-len(b))...)
}

// wantBuild is a build a webhook must queue; its id derives from the
// repository, the delivery, the ref, the commit and the rule.
type wantBuild struct {
	repo, delivery, ref, commit string
	rule                        int
	cloneURL, pusher            string
}

func TestHostWebhooks(t *testing.T) {
	bbPush := hostFixture(t, "bitbucket", "cloud-push-branch.json")
	bbTag := hostFixture(t, "bitbucket", "cloud-push-tag.json")
	bbDelete := hostFixture(t, "bitbucket", "cloud-push-delete.json")
	dcPush := hostFixture(t, "bitbucket", "server-refs-changed.json")
	dcTag := hostFixture(t, "bitbucket", "server-tag-add.json")
	dcDelete := hostFixture(t, "bitbucket", "server-delete.json")
	dcPing := hostFixture(t, "bitbucket", "server-ping.json")
	glPush := hostFixture(t, "gitlab", "push.json")
	glTag := hostFixture(t, "gitlab", "tag-push.json")
	glDelete := hostFixture(t, "gitlab", "push-delete.json")
	glNote := hostFixture(t, "gitlab", "note.json")
	gtPush := hostFixture(t, "gitea", "push.json")
	gtForgejo := hostFixture(t, "gitea", "push-forgejo.json")
	gtTag := hostFixture(t, "gitea", "push-tag.json")
	gtDelete := hostFixture(t, "gitea", "push-delete.json")
	gtDeleteEvent := hostFixture(t, "gitea", "delete-branch.json")
	bbBig := pad(bbTag, 256<<10+1)
	bbAtLimit := pad(bbTag, 256<<10)
	glBig := pad(glPush, 25<<20+1)
	gtBig := pad(gtPush, 25<<20+1)
	bbBad := []byte(`{"push": {"changes": [`)
	dcPR := []byte(`{"eventKey": "pr:opened", "pullRequest": {"id": 7, "toRef": {"id": "refs/heads/main", "repository": {"slug": "demo", "project": {"key": "ACME"}}}}}`)
	const (
		bbMain    = "11acffe8a01f38ff6c91ec4ac7960db25f9267a5"
		bbRelease = "584764b7ebee6c3b664d6662e2e27cd05daa9bc8"
		dcMain    = "a86a176724a147f9a0d8a7bdc232efef3b3218f5"
		glMain    = "ceac7ba0748011632bdf90ae77cb72d000d3a41e"
		gtMain    = "c490155e19b789dfcc86c2ed12d81eb6e88cb9d9"
	)

	tests := []struct {
		name       string
		path       string
		setup      func(e *env)
		h          http.Header
		body       []byte
		wantCode   int
		wantLookup string // "" when the repository must not be looked up
		want       []wantBuild
	}{
		// Bitbucket Cloud.
		{
			name: "bitbucket cloud: two branches in one push", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-1", bbPush, secret), body: bbPush,
			wantCode: http.StatusAccepted, wantLookup: "bitbucket:acme/demo",
			want: []wantBuild{
				{"r-bb", "bb-1", "refs/heads/main", bbMain, 0, bbCloudClone, "Mona Lisa"},
				{"r-bb", "bb-1", "refs/heads/release", bbRelease, 2, bbCloudClone, "Mona Lisa"},
			},
		},
		{
			name: "bitbucket cloud: tag", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-2", bbTag, secret), body: bbTag,
			wantCode: http.StatusAccepted, wantLookup: "bitbucket:acme/demo",
			want: []wantBuild{{"r-bb", "bb-2", "refs/tags/v1.2.0", bbMain, 1, bbCloudClone, "Release Bot"}},
		},
		{
			name: "bitbucket cloud: branch deleted", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-3", bbDelete, secret), body: bbDelete,
			wantCode: http.StatusAccepted, wantLookup: "bitbucket:acme/demo",
		},
		{
			name: "bitbucket cloud: other event", path: "/hooks/bitbucket",
			h:        bbCloud("pullrequest:created", "bb-4", []byte(`{"repository": {"full_name": "acme/demo"}}`), secret),
			body:     []byte(`{"repository": {"full_name": "acme/demo"}}`),
			wantCode: http.StatusAccepted, wantLookup: "bitbucket:acme/demo",
		},
		{
			name: "bitbucket cloud: wrong secret", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-5", bbPush, "guess"), body: bbPush,
			wantCode: http.StatusUnauthorized, wantLookup: "bitbucket:acme/demo",
		},
		{
			name: "bitbucket cloud: unsigned", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-6", bbPush, ""), body: bbPush,
			wantCode: http.StatusUnauthorized, wantLookup: "bitbucket:acme/demo",
		},
		{
			name: "bitbucket cloud: body at 256 KB", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-7", bbAtLimit, secret), body: bbAtLimit,
			wantCode: http.StatusAccepted, wantLookup: "bitbucket:acme/demo",
			want: []wantBuild{{"r-bb", "bb-7", "refs/tags/v1.2.0", bbMain, 1, bbCloudClone, "Release Bot"}},
		},
		{
			name: "bitbucket cloud: body over 256 KB", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-8", bbBig, secret), body: bbBig,
			wantCode: http.StatusRequestEntityTooLarge,
		},
		{
			name: "bitbucket cloud: bad payload", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-9", bbBad, secret), body: bbBad,
			wantCode: http.StatusBadRequest,
		},
		// Bitbucket Data Center: same endpoint, its own repositories.
		{
			name: "bitbucket dc: branch push", path: "/hooks/bitbucket",
			h: bbDC("repo:refs_changed", "dc-1", dcPush, secret), body: dcPush,
			wantCode: http.StatusAccepted, wantLookup: "bitbucket-server:ACME/demo",
			want: []wantBuild{{"r-bbdc", "dc-1", "refs/heads/main", dcMain, 0, bbDCClone, "mona"}},
		},
		{
			name: "bitbucket dc: tag", path: "/hooks/bitbucket",
			h: bbDC("repo:refs_changed", "dc-2", dcTag, secret), body: dcTag,
			wantCode: http.StatusAccepted, wantLookup: "bitbucket-server:ACME/demo",
			want: []wantBuild{{"r-bbdc", "dc-2", "refs/tags/v1.2.0", dcMain, 1, bbDCClone, "release-bot"}},
		},
		{
			name: "bitbucket dc: branch deleted", path: "/hooks/bitbucket",
			h: bbDC("repo:refs_changed", "dc-3", dcDelete, secret), body: dcDelete,
			wantCode: http.StatusAccepted, wantLookup: "bitbucket-server:ACME/demo",
		},
		{
			// "Test connection" names no repository: nothing to verify
			// against, nothing to build.
			name: "bitbucket dc: ping", path: "/hooks/bitbucket",
			h: bbDC("diagnostics:ping", "dc-4", dcPing, secret), body: dcPing,
			wantCode: http.StatusOK,
		},
		{
			name: "bitbucket dc: pull request event", path: "/hooks/bitbucket",
			h: bbDC("pr:opened", "dc-5", dcPR, secret), body: dcPR,
			wantCode: http.StatusAccepted, wantLookup: "bitbucket-server:ACME/demo",
		},
		{
			name: "bitbucket dc: wrong secret", path: "/hooks/bitbucket",
			h: bbDC("repo:refs_changed", "dc-6", dcPush, "guess"), body: dcPush,
			wantCode: http.StatusUnauthorized, wantLookup: "bitbucket-server:ACME/demo",
		},
		{
			name: "bitbucket dc: unsigned", path: "/hooks/bitbucket",
			h: bbDC("repo:refs_changed", "dc-7", dcPush, ""), body: dcPush,
			wantCode: http.StatusUnauthorized, wantLookup: "bitbucket-server:ACME/demo",
		},
		{
			// A Data Center event is not looked up among Cloud repositories.
			name: "bitbucket dc: repository only registered for cloud", path: "/hooks/bitbucket",
			setup: func(e *env) {
				r := e.repos.repos["bitbucket-server:ACME/demo"]
				delete(e.repos.repos, "bitbucket-server:ACME/demo")
				r.Provider = "bitbucket"
				e.repos.repos["bitbucket:ACME/demo"] = r
			},
			h: bbDC("repo:refs_changed", "dc-8", dcPush, secret), body: dcPush,
			wantCode: http.StatusNotFound, wantLookup: "bitbucket-server:ACME/demo",
		},
		// GitLab.
		{
			name: "gitlab: push", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-1", "gl-1", gitlabToken), body: glPush,
			wantCode: http.StatusAccepted, wantLookup: "gitlab:acme/platform/demo",
			want: []wantBuild{{"r-gl", "gl-1", "refs/heads/main", glMain, 0, gitlabClone, "mona"}},
		},
		{
			name: "gitlab: annotated tag builds the commit", path: "/hooks/gitlab",
			h: gitlabReq("Tag Push Hook", "gl-uuid-2", "gl-2", gitlabToken), body: glTag,
			wantCode: http.StatusAccepted, wantLookup: "gitlab:acme/platform/demo",
			want: []wantBuild{{"r-gl", "gl-2", "refs/tags/v1.2.0", glMain, 1, gitlabClone, "release-bot"}},
		},
		{
			name: "gitlab: without Idempotency-Key the event UUID is the delivery", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-3", "", gitlabToken), body: glPush,
			wantCode: http.StatusAccepted, wantLookup: "gitlab:acme/platform/demo",
			want: []wantBuild{{"r-gl", "gl-uuid-3", "refs/heads/main", glMain, 0, gitlabClone, "mona"}},
		},
		{
			name: "gitlab: branch deleted", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-4", "gl-4", gitlabToken), body: glDelete,
			wantCode: http.StatusAccepted, wantLookup: "gitlab:acme/platform/demo",
		},
		{
			name: "gitlab: note event", path: "/hooks/gitlab",
			h: gitlabReq("Note Hook", "gl-uuid-5", "gl-5", gitlabToken), body: glNote,
			wantCode: http.StatusAccepted, wantLookup: "gitlab:acme/platform/demo",
		},
		{
			name: "gitlab: wrong token", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-6", "gl-6", "glwht-guess"), body: glPush,
			wantCode: http.StatusUnauthorized, wantLookup: "gitlab:acme/platform/demo",
		},
		{
			name: "gitlab: no token", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-7", "gl-7", ""), body: glPush,
			wantCode: http.StatusUnauthorized, wantLookup: "gitlab:acme/platform/demo",
		},
		{
			name: "gitlab: body over 25 MB", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-8", "gl-8", gitlabToken), body: glBig,
			wantCode: http.StatusRequestEntityTooLarge,
		},
		{
			name: "gitlab: bad payload", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-9", "gl-9", gitlabToken), body: []byte(`{"ref":`),
			wantCode: http.StatusBadRequest,
		},
		// Gitea and Forgejo.
		{
			name: "gitea: push", path: "/hooks/gitea",
			h: giteaReq("push", "gt-1", gtPush, secret), body: gtPush,
			wantCode: http.StatusAccepted, wantLookup: "gitea:acme/demo",
			want: []wantBuild{{"r-gt", "gt-1", "refs/heads/main", gtMain, 0, giteaClone, "mona"}},
		},
		{
			name: "forgejo: push", path: "/hooks/gitea",
			h: forgejoReq("push", "fj-1", gtForgejo, secret), body: gtForgejo,
			wantCode: http.StatusAccepted, wantLookup: "gitea:acme/demo",
			want: []wantBuild{{"r-gt", "fj-1", "refs/heads/main", gtMain, 0, forgejoClone, "mona"}},
		},
		{
			name: "gitea: annotated tag builds the commit", path: "/hooks/gitea",
			h: giteaReq("push", "gt-2", gtTag, secret), body: gtTag,
			wantCode: http.StatusAccepted, wantLookup: "gitea:acme/demo",
			want: []wantBuild{{"r-gt", "gt-2", "refs/tags/v1.2.0", gtMain, 1, giteaClone, "release-bot"}},
		},
		{
			name: "gitea: tag deleted", path: "/hooks/gitea",
			h: giteaReq("push", "gt-3", gtDelete, secret), body: gtDelete,
			wantCode: http.StatusAccepted, wantLookup: "gitea:acme/demo",
		},
		{
			name: "gitea: delete event", path: "/hooks/gitea",
			h: giteaReq("delete", "gt-4", gtDeleteEvent, secret), body: gtDeleteEvent,
			wantCode: http.StatusAccepted, wantLookup: "gitea:acme/demo",
		},
		{
			// Configured as a GitHub hook, Gitea still says who it is.
			name: "gitea: push to the github endpoint", path: "/hooks/github",
			h: giteaReq("push", "gt-5", gtPush, secret), body: gtPush,
			wantCode: http.StatusAccepted, wantLookup: "gitea:acme/demo",
			want: []wantBuild{{"r-gt", "gt-5", "refs/heads/main", gtMain, 0, giteaClone, "mona"}},
		},
		{
			name: "forgejo: push to the github endpoint", path: "/hooks/github",
			h: forgejoReq("push", "fj-2", gtForgejo, secret), body: gtForgejo,
			wantCode: http.StatusAccepted, wantLookup: "gitea:acme/demo",
			want: []wantBuild{{"r-gt", "fj-2", "refs/heads/main", gtMain, 0, forgejoClone, "mona"}},
		},
		{
			// Handled as Gitea, so GitHub's signature header is not enough.
			name: "gitea: github endpoint, only github's signature", path: "/hooks/github",
			h: func() http.Header {
				h := giteaReq("push", "gt-6", gtPush, secret)
				h.Del("X-Gitea-Signature")
				return h
			}(),
			body:     gtPush,
			wantCode: http.StatusUnauthorized, wantLookup: "gitea:acme/demo",
		},
		{
			name: "gitea: wrong secret", path: "/hooks/gitea",
			h: giteaReq("push", "gt-7", gtPush, "guess"), body: gtPush,
			wantCode: http.StatusUnauthorized, wantLookup: "gitea:acme/demo",
		},
		{
			name: "forgejo: unsigned", path: "/hooks/gitea",
			h: forgejoReq("push", "fj-3", gtForgejo, ""), body: gtForgejo,
			wantCode: http.StatusUnauthorized, wantLookup: "gitea:acme/demo",
		},
		{
			name: "gitea: body over 25 MB", path: "/hooks/gitea",
			h: giteaReq("push", "gt-8", gtBig, secret), body: gtBig,
			wantCode: http.StatusRequestEntityTooLarge,
		},
		{
			name: "gitea: bad payload", path: "/hooks/gitea",
			h: giteaReq("push", "gt-9", []byte(`[]`), secret), body: []byte(`[]`),
			wantCode: http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newHostsEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			code, resp := e.post(t, tt.path, tt.h, tt.body)
			if code != tt.wantCode {
				t.Fatalf("status = %d, want %d: %v", code, tt.wantCode, resp)
			}
			if msg, _ := resp["error"].(string); (code >= 400) != (msg != "") {
				t.Errorf("error = %q for status %d", msg, code)
			}
			var wantLookups []string
			if tt.wantLookup != "" {
				wantLookups = []string{tt.wantLookup}
			}
			if !reflect.DeepEqual(e.repos.lookups, wantLookups) {
				t.Errorf("repository lookups = %q, want %q", e.repos.lookups, wantLookups)
			}
			queued := e.queue.queued()
			if len(queued) != len(tt.want) {
				t.Fatalf("queued %d builds, want %d: %+v", len(queued), len(tt.want), queued)
			}
			var wantIDs []string
			for i, w := range tt.want {
				b := queued[i]
				id := e.idOf(t, w.repo, w.ref, w.commit, w.rule)
				wantIDs = append(wantIDs, id)
				if b.ID != id || b.RepoID != w.repo || b.DeliveryID != w.delivery || b.Ref != w.ref || b.Commit != w.commit ||
					!reflect.DeepEqual(b.Rules, []int{w.rule}) || b.CloneURL != w.cloneURL || b.Pusher != w.pusher ||
					b.Status != model.StatusQueued || b.Trigger != "webhook" {
					t.Errorf("build %d = %+v\nwant %+v (id %s)", i, b, w, id)
				}
			}
			if code == http.StatusAccepted {
				if got := buildIDs(t, resp); len(got) != len(wantIDs) || (len(got) > 0 && !reflect.DeepEqual(got, wantIDs)) {
					t.Errorf("answered builds %v, want %v", got, wantIDs)
				}
			}
		})
	}
}

// A host redelivering a webhook names the same builds; a new delivery of
// the same push names new ones.
func TestHostRedelivery(t *testing.T) {
	bbTag := hostFixture(t, "bitbucket", "cloud-push-tag.json")
	dcPush := hostFixture(t, "bitbucket", "server-refs-changed.json")
	glPush := hostFixture(t, "gitlab", "push.json")
	gtPush := hostFixture(t, "gitea", "push.json")
	gtForgejo := hostFixture(t, "gitea", "push-forgejo.json")
	tests := []struct {
		name       string
		path       string
		body       []byte
		first      http.Header
		redelivery http.Header
		other      http.Header // a new delivery of the same push
	}{
		{"bitbucket cloud", "/hooks/bitbucket", bbTag,
			bbCloud("repo:push", "bb-1", bbTag, secret), bbCloud("repo:push", "bb-1", bbTag, secret), bbCloud("repo:push", "bb-2", bbTag, secret)},
		{"bitbucket dc", "/hooks/bitbucket", dcPush,
			bbDC("repo:refs_changed", "dc-1", dcPush, secret), bbDC("repo:refs_changed", "dc-1", dcPush, secret), bbDC("repo:refs_changed", "dc-2", dcPush, secret)},
		// A retry keeps the Idempotency-Key whatever its event UUID.
		{"gitlab", "/hooks/gitlab", glPush,
			gitlabReq("Push Hook", "uuid-1", "key-1", gitlabToken), gitlabReq("Push Hook", "uuid-2", "key-1", gitlabToken), gitlabReq("Push Hook", "uuid-1", "key-2", gitlabToken)},
		{"gitlab without idempotency key", "/hooks/gitlab", glPush,
			gitlabReq("Push Hook", "uuid-1", "", gitlabToken), gitlabReq("Push Hook", "uuid-1", "", gitlabToken), gitlabReq("Push Hook", "uuid-2", "", gitlabToken)},
		{"gitea", "/hooks/gitea", gtPush,
			giteaReq("push", "gt-1", gtPush, secret), giteaReq("push", "gt-1", gtPush, secret), giteaReq("push", "gt-2", gtPush, secret)},
		{"forgejo", "/hooks/gitea", gtForgejo,
			forgejoReq("push", "fj-1", gtForgejo, secret), forgejoReq("push", "fj-1", gtForgejo, secret), forgejoReq("push", "fj-2", gtForgejo, secret)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newHostsEnv(t)
			code1, resp1 := e.post(t, tt.path, tt.first, tt.body)
			code2, resp2 := e.post(t, tt.path, tt.redelivery, tt.body)
			if code1 != http.StatusAccepted || code2 != http.StatusAccepted {
				t.Fatalf("statuses = %d, %d; want 202 twice: %v %v", code1, code2, resp1, resp2)
			}
			first, second := buildIDs(t, resp1), buildIDs(t, resp2)
			if len(first) != 1 || !reflect.DeepEqual(first, second) {
				t.Errorf("builds = %v then %v, want the same one build", first, second)
			}
			if n := len(e.queue.queued()); n != 1 {
				t.Errorf("queue holds %d builds, want 1", n)
			}
			// Another delivery of the same push is the same build.
			_, resp3 := e.post(t, tt.path, tt.other, tt.body)
			if third := buildIDs(t, resp3); !reflect.DeepEqual(third, first) {
				t.Errorf("new delivery builds = %v, want %v", third, first)
			}
		})
	}
}

// Without the Gitea provider, a Gitea request to /hooks/github is GitHub's
// to read, and a GitHub request is never taken for Gitea's.
func TestGiteaRoutingNeedsGiteaHeaders(t *testing.T) {
	gtPush := hostFixture(t, "gitea", "push.json")

	e := newEnv(t) // GitHub only
	code, _ := e.post(t, "/hooks/github", giteaReq("push", "gt-1", gtPush, secret), gtPush)
	if want := []string{"github:acme/demo"}; !reflect.DeepEqual(e.repos.lookups, want) {
		t.Errorf("lookups = %q, want %q (status %d)", e.repos.lookups, want, code)
	}

	e = newHostsEnv(t)
	if code, resp := e.send(t, delivery{event: "push", id: "d1", body: fixture(t, "push-branch.json")}); code != http.StatusAccepted {
		t.Fatalf("github push status = %d, want 202: %v", code, resp)
	}
	if want := []string{"github:acme/demo"}; !reflect.DeepEqual(e.repos.lookups, want) {
		t.Errorf("lookups = %q, want %q", e.repos.lookups, want)
	}
}

// An event that names no repository is answered without a lookup only when
// it builds nothing.
func TestHandlerEventWithoutRepo(t *testing.T) {
	tests := []struct {
		kind     string
		wantCode int
	}{
		{webhook.KindPing, http.StatusOK},
		{webhook.KindOther, http.StatusAccepted},
		{webhook.KindPush, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			p := fixedProvider{ev: webhook.Event{Kind: tt.kind, RawKind: "x", DeliveryID: "d1",
				Pushes: []webhook.Push{{Ref: "refs/heads/main", After: branchHead}}}}
			e := newEnv(t, p)
			code, resp := e.post(t, "/hooks/fixed", http.Header{}, []byte("{}"))
			if code != tt.wantCode {
				t.Fatalf("status = %d, want %d: %v", code, tt.wantCode, resp)
			}
			if e.repos.calls != 0 || e.queue.calls != 0 {
				t.Errorf("repos looked up %d times, queue called %d times; want neither", e.repos.calls, e.queue.calls)
			}
		})
	}
}

// fixedProvider parses every request into ev and verifies nothing.
type fixedProvider struct{ ev webhook.Event }

func (fixedProvider) Name() string                                       { return "fixed" }
func (fixedProvider) MaxBody() int64                                     { return 1 << 10 }
func (p fixedProvider) Parse(http.Header, []byte) (webhook.Event, error) { return p.ev, nil }
func (fixedProvider) Verify(http.Header, []byte, string) error {
	return errors.New("must not be called")
}
