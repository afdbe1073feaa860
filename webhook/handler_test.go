package webhook_test

// The handler runs here on real parts: an embedded NATS JetStream server per
// test (in-process, its own store directory) with the production
// store.Store as Repos and queue.Queue as Queue, the hosts' own adapters from the hosts
// table, and the fixtures in forge/<host>/testdata. Failures are real too: a
// Store whose NATS connection is closed.

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
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/forge/github"
	"github.com/slipway-build/slipway/forge/hosts"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/store"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

// testKeys seal the repositories of every store the tests open; stores
// sharing one NATS must share their keys.
var testKeys = seal.Ephemeral()

const (
	secret     = "3f9c1e7a-webhook-secret"
	branchHead = "4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5"
	nextHead   = "5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7"
	internal   = "https://git.acme.internal/acme/demo.git"
)

// Build ids are written out, not computed by the code under test. They are
// stable by design: an id is a hash of the repository id, the ref, the
// commit and the rule's settings (see trigger.ID), so the same push names
// the same builds whichever delivery brings it. A change to one of these
// literals is a change every stored build id would see.
const (
	idMain     = "3d2b2f03360fce5e91bd" // r1, refs/heads/main at branchHead, rule 0
	idMainEdge = "eb782c76859f304f5cef" // r1, refs/heads/main at branchHead, rule 4 (edge)
	idNextMain = "a4d4148e6b4d572354c5" // r1, refs/heads/main at nextHead, rule 0
	idNextEdge = "9438301050f475b006eb" // r1, refs/heads/main at nextHead, rule 4 (edge)
	idTag      = "09c72b35a2aaf11e0f43" // r1, refs/tags/v1.2.0 at branchHead, rule 1

	idBBMain    = "90108d74b5409c8e1831" // r-bb, refs/heads/main at bbMain, rule 0
	idBBRelease = "92d89ad2817729a6b188" // r-bb, refs/heads/release at bbRelease, rule 2
	idBBTag     = "38d24f02e3b711951444" // r-bb, refs/tags/v1.2.0 at bbMain, rule 1
	idDCMain    = "dcd81434450442a5d3cf" // r-bbdc, refs/heads/main at dcMain, rule 0
	idDCTag     = "7c4ad8905292c3d83e0f" // r-bbdc, refs/tags/v1.2.0 at dcMain, rule 1
	idGLMain    = "513ef10cef3d106e86de" // r-gl, refs/heads/main at glMain, rule 0
	idGLTag     = "b26c49cd8ab457226579" // r-gl, refs/tags/v1.2.0 at glMain, rule 1
	idGTMain    = "44af85ce5ba127affd03" // r-gt, refs/heads/main at gtMain, rule 0
	idGTTag     = "5b33b57063848c6bdafe" // r-gt, refs/tags/v1.2.0 at gtMain, rule 1
)

var now = time.Date(2024, 3, 4, 9, 17, 42, 0, time.UTC)

// edgeRule is a second rule on main, so one push builds two plans.
var edgeRule = model.Rule{SourceType: "branch", Source: "main", Tags: []string{"edge"}, Dockerfile: "edge.Dockerfile"}

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

// env is a handler on its own embedded NATS server and Store.
type env struct {
	t     *testing.T
	ctx   context.Context
	emb   *natsd.Server
	store *store.Store
	queue *queue.Queue
	js    jetstream.JetStream
	h     *webhook.Handler
	mux   *http.ServeMux
	clock time.Time // what the handler's Now answers
}

// newEnv serves providers (GitHub alone by default) with demoRepo
// registered, unless a repository is passed instead.
func newEnv(t *testing.T, providers []webhook.Provider, repos ...model.Repo) *env {
	t.Helper()
	if providers == nil {
		providers = []webhook.Provider{github.Webhook{}}
	}
	if repos == nil {
		repos = []model.Repo{demoRepo()}
	}
	emb, err := natsd.Start(natsd.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(emb.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, emb: emb, clock: now, mux: http.NewServeMux()}
	live := e.open()
	e.store, e.queue = live.store, live.queue
	if e.js, err = jetstream.New(live.nc); err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	e.h = &webhook.Handler{
		Providers:  providers,
		Repos:      e.store,
		Queue:      e.queue,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:        func() time.Time { return e.clock },
		IsNotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
	}
	e.mux.Handle("POST /hooks/{provider}", e.h)
	for _, r := range repos {
		if err := e.store.CreateRepo(ctx, r); err != nil {
			t.Fatalf("CreateRepo %s: %v", r.ID, err)
		}
	}
	return e
}

// backend is a Store and a Queue on one connection of their own.
type backend struct {
	nc    *nats.Conn
	store *store.Store
	queue *queue.Queue
}

// open opens another Store and Queue on their own connection to the server.
func (e *env) open() backend {
	e.t.Helper()
	nc, err := e.emb.Connect()
	if err != nil {
		e.t.Fatalf("Connect: %v", err)
	}
	e.t.Cleanup(nc.Close)
	st, err := store.Open(e.ctx, nc, store.Options{Replicas: 1, Keys: testKeys})
	if err != nil {
		e.t.Fatalf("store.Open: %v", err)
	}
	q, err := queue.Open(e.ctx, nc, st, queue.Options{})
	if err != nil {
		e.t.Fatalf("queue.Open: %v", err)
	}
	return backend{nc: nc, store: st, queue: q}
}

// broken is a real Store and Queue whose NATS connection is closed: every
// call fails at once, as when the cluster is unreachable.
func (e *env) broken() backend {
	e.t.Helper()
	b := e.open()
	b.nc.Close()
	return b
}

// builds are the ids of every stored build, sorted.
func (e *env) builds() []string {
	e.t.Helper()
	all, err := e.store.ListBuilds(e.ctx, "")
	if err != nil {
		e.t.Fatalf("ListBuilds: %v", err)
	}
	ids := []string{}
	for _, b := range all {
		ids = append(ids, b.ID)
	}
	slices.Sort(ids)
	return ids
}

// build reads a stored build.
func (e *env) build(id string) model.Build {
	e.t.Helper()
	return get(e, e.store.GetBuild, id)
}

// repo reads a stored repository.
func (e *env) repo(id string) model.Repo {
	e.t.Helper()
	return get(e, e.store.GetRepo, id)
}

// get reads record id with one of the Store's getters; the test cannot go
// on without it.
func get[T any](e *env, read func(context.Context, string) (T, error), id string) T {
	e.t.Helper()
	v, err := read(e.ctx, id)
	if err != nil {
		e.t.Fatalf("read %s: %v", id, err)
	}
	return v
}

// jobs counts the build jobs waiting in JetStream for a worker.
func (e *env) jobs() uint64 {
	e.t.Helper()
	st, err := e.js.Stream(e.ctx, queue.JobsStream)
	if err != nil {
		e.t.Fatalf("stream %s: %v", queue.JobsStream, err)
	}
	info, err := st.Info(e.ctx)
	if err != nil {
		e.t.Fatalf("stream %s info: %v", queue.JobsStream, err)
	}
	return info.State.Msgs
}

// recorded checks that the store holds exactly the builds ids (sorted)
// and one queued job for each.
func (e *env) recorded(ids ...string) {
	e.t.Helper()
	want := append([]string{}, ids...)
	slices.Sort(want)
	if got := e.builds(); !reflect.DeepEqual(got, want) {
		e.t.Errorf("stored builds = %v, want %v", got, want)
	}
	if n := e.jobs(); n != uint64(len(ids)) {
		e.t.Errorf("build jobs queued = %d, want %d", n, len(ids))
	}
}

type delivery struct {
	path        string // defaults to /hooks/github
	event       string
	id          string
	contentType string // defaults to application/json
	body        []byte
	sig         *string // X-Hub-Signature-256; nil signs body with secret, "" leaves it out
}

// send posts a GitHub delivery.
func (e *env) send(d delivery) (int, map[string]any) {
	e.t.Helper()
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
	return e.post(d.path, h, d.body)
}

// post sends a webhook request with the headers given and reads the JSON
// answer.
func (e *env) post(path string, h http.Header, body []byte) (int, map[string]any) {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header = h.Clone()
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		e.t.Fatalf("answer %d is not JSON: %v: %s", rec.Code, err, rec.Body)
	}
	return rec.Code, out
}

// fixture reads a host's sample payload from forge/<host>/testdata.
func fixture(t *testing.T, host, name string) []byte {
	return webhooktest.Fixture(t, filepath.Join("..", "forge", host), name)
}

// gh reads a GitHub fixture.
func gh(t *testing.T, name string) []byte { return fixture(t, "github", name) }

func ptr(s string) *string { return &s }

// buildIDs reads {"builds": [...]} from an answer.
func buildIDs(t *testing.T, resp map[string]any) []string {
	t.Helper()
	raw, ok := resp["builds"].([]any)
	if !ok {
		t.Fatalf("answer has no builds list: %v", resp)
	}
	ids := make([]string, len(raw))
	for i, v := range raw {
		ids[i], _ = v.(string)
	}
	return ids
}

// accepted checks the answer is 202 and names exactly ids, in order.
func accepted(t *testing.T, code int, resp map[string]any, ids ...string) {
	t.Helper()
	if code != http.StatusAccepted {
		t.Fatalf("status = %d, want 202: %v", code, resp)
	}
	if got := buildIDs(t, resp); !reflect.DeepEqual(got, append([]string{}, ids...)) {
		t.Errorf("answered builds = %v, want %v", got, ids)
	}
}

func TestHandlerPushBranchQueuesBuild(t *testing.T) {
	e := newEnv(t, nil)
	const delivery1 = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	code, resp := e.send(delivery{event: "push", id: delivery1, body: gh(t, "push-branch.json")})
	accepted(t, code, resp, idMain)
	e.recorded(idMain)
	want := model.Build{
		ID:     idMain,
		RepoID: "r1", Org: "acme", Ref: "refs/heads/main", Commit: branchHead,
		Status: model.StatusQueued, Image: "127.0.0.1:5000/acme/demo",
		Tags:     []string{"latest", "main"},
		Rule:     model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest", "main"}, Dockerfile: "Dockerfile", Context: "."},
		CloneURL: internal, // the repository's own URL beats the payload's
		Pusher:   "mona", Trigger: "webhook", DeliveryID: delivery1, CreatedAt: now,
		Rules: []int{0}, Before: "9b2c6f0a1d4e8b7c3a5f2e1d0c9b8a7f6e5d4c3b",
		Message: "Bump base image to alpine 3.19\n\nThe old one is out of support.", Seq: now.UnixNano(),
	}
	if got := e.build(idMain); !reflect.DeepEqual(got, want) {
		t.Errorf("stored build =\n %+v\nwant\n %+v", got, want)
	}
}

func TestHandlerPushTagBuildsTaggedCommit(t *testing.T) {
	e := newEnv(t, nil)
	code, resp := e.send(delivery{event: "push", id: "d-tag", body: gh(t, "push-tag.json")})
	accepted(t, code, resp, idTag)
	e.recorded(idTag)
	b := e.build(idTag)
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
}

// TestHandlerIgnoresPayloadCloneURL: the payload's clone URL is never
// cloned from, even when the repository has none of its own (one stored
// before registration required it): anyone with the webhook secret could
// otherwise send the repository's token to a URL of their choosing.
func TestHandlerIgnoresPayloadCloneURL(t *testing.T) {
	r := demoRepo()
	r.CloneURL = ""
	e := newEnv(t, nil, r)
	code, resp := e.send(delivery{event: "push", id: "d1", body: gh(t, "push-branch.json")})
	accepted(t, code, resp, idMain)
	if got := e.build(idMain).CloneURL; got != "" {
		t.Errorf("CloneURL = %q, want none: the payload's clone_url must not be used", got)
	}
}

func TestHandlerFormEncodedPush(t *testing.T) {
	e := newEnv(t, nil)
	body := []byte("payload=" + url.QueryEscape(string(gh(t, "push-branch.json"))))
	code, resp := e.send(delivery{event: "push", id: "d-form", contentType: "application/x-www-form-urlencoded", body: body})
	accepted(t, code, resp, idMain)
	e.recorded(idMain)
}

// One build per repository, ref, commit and plan: a redelivery and a new
// delivery of the same push answer the same builds and queue nothing new;
// a push of a new commit builds anew and supersedes the older builds.
func TestHandlerRedeliveryNamesSameBuilds(t *testing.T) {
	r := demoRepo()
	r.Rules = append(r.Rules, edgeRule)
	e := newEnv(t, nil, r)
	d := delivery{event: "push", id: "72d3162e-cc78-11e3-81ab-4c9367dc0958", body: gh(t, "push-branch.json")}

	code, resp := e.send(d)
	accepted(t, code, resp, idMain, idMainEdge)
	code, resp = e.send(d)
	accepted(t, code, resp, idMain, idMainEdge)
	e.recorded(idMain, idMainEdge)

	d.id = "8e4f2a10-cc78-11e3-9b1c-5d2e3f4a5b6c"
	code, resp = e.send(d)
	accepted(t, code, resp, idMain, idMainEdge)
	e.recorded(idMain, idMainEdge)
	if got := e.build(idMain).DeliveryID; got != "72d3162e-cc78-11e3-81ab-4c9367dc0958" {
		t.Errorf("DeliveryID = %q, want the first delivery's", got)
	}

	e.clock = now.Add(time.Minute)
	d.id, d.body = "9f5a3b21-cc79-11e3-8c2d-6e3f4a5b6c7d", bytes.ReplaceAll(d.body, []byte(branchHead), []byte(nextHead))
	code, resp = e.send(d)
	accepted(t, code, resp, idNextMain, idNextEdge)
	e.recorded(idMain, idMainEdge, idNextMain, idNextEdge)
	for _, id := range []string{idMain, idMainEdge} {
		if b := e.build(id); b.Status != model.StatusCancelled || b.SupersededBy != idNextMain {
			t.Errorf("build %s: status %s, superseded by %q; want cancelled by %s", id, b.Status, b.SupersededBy, idNextMain)
		}
	}
}

// A GitHub App's push names its installation; a repository that names none
// remembers it, so builds no webhook starts can use it too.
func TestHandlerLearnsPushInstallation(t *testing.T) {
	body := withInstallation(t, gh(t, "push-branch.json"), 4242)

	e := newEnv(t, nil)
	code, resp := e.send(delivery{event: "push", id: "d-app", body: body})
	accepted(t, code, resp, idMain)
	if got := e.repo("r1").PushInstallationID; got != 4242 {
		t.Errorf("stored push_installation_id = %d, want 4242", got)
	}
	if got := e.build(idMain).InstallationID; got != 4242 {
		t.Errorf("build's installation = %d, want 4242", got)
	}

	// A repository pinned to an installation keeps only that one.
	pinned := demoRepo()
	pinned.InstallationID = 99
	e = newEnv(t, nil, pinned)
	code, resp = e.send(delivery{event: "push", id: "d-app", body: body})
	accepted(t, code, resp, idMain)
	if got := e.repo("r1"); got.PushInstallationID != 0 || got.InstallationID != 99 {
		t.Errorf("stored installation, push installation = %d, %d; want 99, 0", got.InstallationID, got.PushInstallationID)
	}
}

// withInstallation adds GitHub's installation object to a push payload.
func withInstallation(t *testing.T, body []byte, id int64) []byte {
	return webhooktest.EditJSON(t, body, func(p map[string]any) {
		p["installation"] = map[string]any{"id": id, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg=="}
	})
}

// smallWebhook is GitHub with a small body limit, so the 413 path can be
// tested without 25 MB bodies.
type smallWebhook struct {
	github.Webhook
	max int64
}

func (p smallWebhook) MaxBody() int64 { return p.max }

func TestHandlerResponses(t *testing.T) {
	push := gh(t, "push-branch.json")
	size := int64(len(push))
	tests := []struct {
		name        string
		providers   []webhook.Provider
		d           delivery
		reposDown   bool // the repository lookup fails
		queueDown   bool // storing builds fails
		wantCode    int
		wantBuilds  []string // builds answered and stored
		wantErrText bool     // answer carries {"error": ...}
		wantReason  string   // the one rejection counted, under host github (unknown for the unknown provider)
	}{
		{name: "ping", d: delivery{event: "ping", id: "p1", body: gh(t, "ping.json")}, wantCode: http.StatusOK},
		{name: "ping with bad signature", d: delivery{event: "ping", id: "p1", body: gh(t, "ping.json"), sig: ptr("sha256=" + webhook.SignHMAC(gh(t, "ping.json"), "guess"))}, wantCode: http.StatusUnauthorized, wantErrText: true, wantReason: "bad_signature"},
		{name: "push", d: delivery{event: "push", id: "d1", body: push}, wantCode: http.StatusAccepted, wantBuilds: []string{idMain}},
		{name: "wrong secret", d: delivery{event: "push", id: "d1", body: push, sig: ptr("sha256=" + webhook.SignHMAC(push, "guess"))}, wantCode: http.StatusUnauthorized, wantErrText: true, wantReason: "bad_signature"},
		{name: "unsigned", d: delivery{event: "push", id: "d1", body: push, sig: ptr("")}, wantCode: http.StatusUnauthorized, wantErrText: true, wantReason: "bad_signature"},
		{name: "signature without prefix", d: delivery{event: "push", id: "d1", body: push, sig: ptr(webhook.SignHMAC(push, secret))}, wantCode: http.StatusUnauthorized, wantErrText: true, wantReason: "bad_signature"},
		// Signed for main, replayed with the ref changed to another built branch.
		{name: "tampered body", d: delivery{event: "push", id: "d1", body: bytes.ReplaceAll(push, []byte(`"refs/heads/main"`), []byte(`"refs/heads/release"`)), sig: ptr("sha256=" + webhook.SignHMAC(push, secret))}, wantCode: http.StatusUnauthorized, wantErrText: true, wantReason: "bad_signature"},
		{name: "unknown repo", d: delivery{event: "push", id: "d1", body: bytes.ReplaceAll(push, []byte("acme/demo"), []byte("acme/other"))}, wantCode: http.StatusNotFound, wantErrText: true, wantReason: "not_registered"},
		{name: "repository lookup fails", d: delivery{event: "push", id: "d1", body: push}, reposDown: true, wantCode: http.StatusServiceUnavailable, wantErrText: true, wantReason: "lookup_failed"},
		{name: "branch deleted", d: delivery{event: "push", id: "d1", body: gh(t, "push-delete.json")}, wantCode: http.StatusAccepted},
		{name: "ref matches no rule", d: delivery{event: "push", id: "d1", body: bytes.ReplaceAll(push, []byte(`"refs/heads/main"`), []byte(`"refs/heads/dev"`))}, wantCode: http.StatusAccepted},
		{name: "non-push event", d: delivery{event: "issues", id: "d1", body: gh(t, "issues.json")}, wantCode: http.StatusAccepted},
		{name: "bad payload", d: delivery{event: "push", id: "d1", body: []byte(`{"ref":`)}, wantCode: http.StatusBadRequest, wantErrText: true, wantReason: "malformed"},
		{name: "unknown provider", d: delivery{path: "/hooks/gitlab", event: "push", id: "d1", body: push}, wantCode: http.StatusNotFound, wantErrText: true, wantReason: "unknown_host"},
		{name: "queue down", d: delivery{event: "push", id: "d1", body: push}, queueDown: true, wantCode: http.StatusServiceUnavailable, wantErrText: true, wantReason: "queue_failed"},
		{name: "body at limit", providers: []webhook.Provider{smallWebhook{max: size}}, d: delivery{event: "push", id: "d1", body: push}, wantCode: http.StatusAccepted, wantBuilds: []string{idMain}},
		{name: "body over limit", providers: []webhook.Provider{smallWebhook{max: size - 1}}, d: delivery{event: "push", id: "d1", body: push}, wantCode: http.StatusRequestEntityTooLarge, wantErrText: true, wantReason: "too_large"},
		// GitHub's real limit: 25 MB of JSON (a valid push padded with
		// trailing spaces) plus one byte.
		{name: "github body over 25 MB", d: delivery{event: "push", id: "d1", body: pad(push, 25<<20+1)}, wantCode: http.StatusRequestEntityTooLarge, wantErrText: true, wantReason: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.providers)
			scrape := e.countMetrics()
			if tt.reposDown {
				e.h.Repos = e.broken().store
			}
			if tt.queueDown {
				e.h.Queue = e.broken().queue
			}
			code, resp := e.send(tt.d)
			if code != tt.wantCode {
				t.Fatalf("status = %d, want %d: %v", code, tt.wantCode, resp)
			}
			if msg, _ := resp["error"].(string); tt.wantErrText != (msg != "") {
				t.Errorf("error = %q, want one: %v", msg, tt.wantErrText)
			}
			if code == http.StatusAccepted {
				accepted(t, code, resp, tt.wantBuilds...)
			}
			e.recorded(tt.wantBuilds...)
			host := "github"
			if tt.d.path != "" {
				host = "unknown"
			}
			got := scrape()
			if n := got.Counter("slipway_webhooks_received_total", "host", host); n != 1 {
				t.Errorf("webhooks received from %s = %v, want 1", host, n)
			}
			wantRejected := 0.0
			if tt.wantReason != "" {
				wantRejected = 1
				if n := got.Counter("slipway_webhooks_rejected_total", "host", host, "reason", tt.wantReason); n != 1 {
					t.Errorf("webhooks rejected from %s for %s = %v, want 1", host, tt.wantReason, n)
				}
			}
			if n := got.Sum("slipway_webhooks_rejected_total"); n != wantRejected {
				t.Errorf("webhooks rejected in all = %v, want %v", n, wantRejected)
			}
		})
	}
}

func TestHandlerIgnoredEventSaysWhy(t *testing.T) {
	e := newEnv(t, nil)
	e.h.Queue = e.broken().queue // an ignored event must not reach the queue
	code, resp := e.send(delivery{event: "issues", id: "d1", body: gh(t, "issues.json")})
	accepted(t, code, resp)
	if why, _ := resp["ignored"].(string); !strings.Contains(why, "issues") {
		t.Errorf("ignored = %q, want it to name the issues event", why)
	}
	e.recorded()
}

// A failure after some builds are stored must still not answer 2xx, so the
// host redelivers; the redelivery then completes the set without queueing
// the stored build twice.
func TestHandlerQueueFailsMidway(t *testing.T) {
	r := demoRepo()
	r.Rules = append(r.Rules, edgeRule)
	e := newEnv(t, nil, r)
	e.h.Queue = dropsAfterFirst{e.open()}
	d := delivery{event: "push", id: "d1", body: gh(t, "push-branch.json")}
	if code, resp := e.send(d); code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503: %v", code, resp)
	}
	e.recorded(idMain)

	e.h.Queue = e.queue
	code, resp := e.send(d)
	accepted(t, code, resp, idMain, idMainEdge)
	e.recorded(idMain, idMainEdge)
}

// dropsAfterFirst is a real Store that loses its NATS connection right
// after storing its first build, as when NATS goes away mid-request.
type dropsAfterFirst struct{ backend }

func (q dropsAfterFirst) Enqueue(ctx context.Context, b model.Build, cancelOlder bool) (queue.Queued, error) {
	res, err := q.queue.Enqueue(ctx, b, cancelOlder)
	q.nc.Close()
	return res, err
}

// A queue that is down before the request stores nothing; the host's
// redelivery then stores the builds.
func TestHandlerQueueDownThenRedelivered(t *testing.T) {
	e := newEnv(t, nil)
	e.h.Queue = e.broken().queue
	d := delivery{event: "push", id: "d1", body: gh(t, "push-branch.json")}
	if code, resp := e.send(d); code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503: %v", code, resp)
	}
	e.recorded()
	e.h.Queue = e.queue
	code, resp := e.send(d)
	accepted(t, code, resp, idMain)
	e.recorded(idMain)
}

// The repositories are down too: a lookup would answer 503.
func TestHandlerUnknownProviderSkipsLookup(t *testing.T) {
	e := newEnv(t, nil)
	e.h.Repos = e.broken().store
	code, resp := e.send(delivery{path: "/hooks/bitbucket", event: "push", id: "d1", body: gh(t, "push-branch.json")})
	if code != http.StatusNotFound {
		t.Fatalf("status = %d, want 404: %v", code, resp)
	}
}

func TestHandlerOnlyPOST(t *testing.T) {
	e := newEnv(t, nil)
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hooks/github", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET status = %d, want 405", rec.Code)
	}
}

// The other hosts' webhooks, each fixture sent through the handler with the
// host's real headers and signatures or tokens.

const (
	gitlabToken = "glwht-3f9c1e7a0b2d4c6e"
	// The clone URLs the repositories were registered with; the payloads
	// name others (bitbucket.org, gitlab.acme.internal, …), which must
	// never be cloned from.
	bbCloudClone = "https://registered.example/r-bb.git"
	bbDCClone    = "https://registered.example/r-bbdc.git"
	gitlabClone  = "https://registered.example/r-gl.git"
	giteaClone   = "https://registered.example/r-gt.git"
	forgejoClone = giteaClone // Forgejo's webhooks go to the Gitea repository
)

// hostRepos are acme/demo registered on each host but GitHub, each with
// its own clone URL.
func hostRepos() []model.Repo {
	add := func(id, provider, fullName, secret string) model.Repo {
		r := demoRepo()
		r.ID, r.Provider, r.FullName, r.WebhookSecret, r.Image = id, provider, fullName, secret, "127.0.0.1:5000/acme/demo-"+id
		r.CloneURL = "https://registered.example/" + id + ".git"
		return r
	}
	return []model.Repo{
		demoRepo(),
		add("r-bb", "bitbucket", "acme/demo", secret),
		add("r-bbdc", "bitbucket-server", "ACME/demo", secret),
		add("r-gl", "gitlab", "acme/platform/demo", gitlabToken),
		add("r-gt", "gitea", "acme/demo", secret),
	}
}

// newHostsEnv serves every host of the hosts table, with hostRepos.
func newHostsEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, hosts.Webhooks(), hostRepos()...)
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

// wantBuild is a stored build a webhook must make.
type wantBuild struct {
	id, repo, delivery, ref, commit string
	rule                            int
	cloneURL, pusher                string
}

// check compares the stored build with w.
func (w wantBuild) check(e *env) {
	e.t.Helper()
	b := e.build(w.id)
	if b.RepoID != w.repo || b.DeliveryID != w.delivery || b.Ref != w.ref || b.Commit != w.commit ||
		!reflect.DeepEqual(b.Rules, []int{w.rule}) || b.CloneURL != w.cloneURL || b.Pusher != w.pusher ||
		b.Status != model.StatusQueued || b.Trigger != "webhook" {
		e.t.Errorf("build %s = %+v\nwant %+v", w.id, b, w)
	}
}

func TestHostWebhooks(t *testing.T) {
	bbPush := fixture(t, "bitbucket", "cloud-push-branch.json")
	bbTag := fixture(t, "bitbucket", "cloud-push-tag.json")
	bbDelete := fixture(t, "bitbucket", "cloud-push-delete.json")
	dcPush := fixture(t, "bitbucket", "server-refs-changed.json")
	dcTag := fixture(t, "bitbucket", "server-tag-add.json")
	dcDelete := fixture(t, "bitbucket", "server-delete.json")
	dcPing := fixture(t, "bitbucket", "server-ping.json")
	glPush := fixture(t, "gitlab", "push.json")
	glTag := fixture(t, "gitlab", "tag-push.json")
	glDelete := fixture(t, "gitlab", "push-delete.json")
	glNote := fixture(t, "gitlab", "note.json")
	gtPush := fixture(t, "gitea", "push.json")
	gtForgejo := fixture(t, "gitea", "push-forgejo.json")
	gtTag := fixture(t, "gitea", "push-tag.json")
	gtDelete := fixture(t, "gitea", "push-delete.json")
	gtDeleteEvent := fixture(t, "gitea", "delete-branch.json")
	bbBig := pad(bbTag, 256<<10+1)
	bbAtLimit := pad(bbTag, 256<<10)
	glBig := pad(glPush, 25<<20+1)
	gtBig := pad(gtPush, 25<<20+1)
	bbBad := []byte(`{"push": {"changes": [`)
	bbOther := []byte(`{"repository": {"full_name": "acme/demo"}}`)
	dcPR := []byte(`{"eventKey": "pr:opened", "pullRequest": {"id": 7, "toRef": {"id": "refs/heads/main", "repository": {"slug": "demo", "project": {"key": "ACME"}}}}}`)
	const (
		bbMain    = "11acffe8a01f38ff6c91ec4ac7960db25f9267a5"
		bbRelease = "584764b7ebee6c3b664d6662e2e27cd05daa9bc8"
		dcMain    = "a86a176724a147f9a0d8a7bdc232efef3b3218f5"
		glMain    = "ceac7ba0748011632bdf90ae77cb72d000d3a41e"
		gtMain    = "c490155e19b789dfcc86c2ed12d81eb6e88cb9d9"
	)

	tests := []struct {
		name  string
		path  string
		setup func(e *env)
		h     http.Header
		body  []byte
		// noLookup runs the case with the repositories down: the answer
		// must come before any lookup, which would be a 503.
		noLookup bool
		wantCode int
		want     []wantBuild // stored, and answered in this order
	}{
		// Bitbucket Cloud.
		{
			name: "bitbucket cloud: two branches in one push", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-1", bbPush, secret), body: bbPush,
			wantCode: http.StatusAccepted,
			want: []wantBuild{
				{idBBMain, "r-bb", "bb-1", "refs/heads/main", bbMain, 0, bbCloudClone, "Mona Lisa"},
				{idBBRelease, "r-bb", "bb-1", "refs/heads/release", bbRelease, 2, bbCloudClone, "Mona Lisa"},
			},
		},
		{
			name: "bitbucket cloud: tag", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-2", bbTag, secret), body: bbTag,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idBBTag, "r-bb", "bb-2", "refs/tags/v1.2.0", bbMain, 1, bbCloudClone, "Release Bot"}},
		},
		{
			name: "bitbucket cloud: branch deleted", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-3", bbDelete, secret), body: bbDelete,
			wantCode: http.StatusAccepted,
		},
		{
			name: "bitbucket cloud: other event", path: "/hooks/bitbucket",
			h: bbCloud("pullrequest:comment_created", "bb-4", bbOther, secret), body: bbOther,
			wantCode: http.StatusAccepted,
		},
		{
			name: "bitbucket cloud: wrong secret", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-5", bbPush, "guess"), body: bbPush,
			wantCode: http.StatusUnauthorized,
		},
		{
			name: "bitbucket cloud: unsigned", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-6", bbPush, ""), body: bbPush,
			wantCode: http.StatusUnauthorized,
		},
		{
			name: "bitbucket cloud: body at 256 KB", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-7", bbAtLimit, secret), body: bbAtLimit,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idBBTag, "r-bb", "bb-7", "refs/tags/v1.2.0", bbMain, 1, bbCloudClone, "Release Bot"}},
		},
		{
			name: "bitbucket cloud: body over 256 KB", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-8", bbBig, secret), body: bbBig,
			noLookup: true, wantCode: http.StatusRequestEntityTooLarge,
		},
		{
			name: "bitbucket cloud: bad payload", path: "/hooks/bitbucket",
			h: bbCloud("repo:push", "bb-9", bbBad, secret), body: bbBad,
			noLookup: true, wantCode: http.StatusBadRequest,
		},
		// Bitbucket Data Center: same endpoint, its own repositories.
		{
			name: "bitbucket dc: branch push", path: "/hooks/bitbucket",
			h: bbDC("repo:refs_changed", "dc-1", dcPush, secret), body: dcPush,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idDCMain, "r-bbdc", "dc-1", "refs/heads/main", dcMain, 0, bbDCClone, "mona"}},
		},
		{
			name: "bitbucket dc: tag", path: "/hooks/bitbucket",
			h: bbDC("repo:refs_changed", "dc-2", dcTag, secret), body: dcTag,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idDCTag, "r-bbdc", "dc-2", "refs/tags/v1.2.0", dcMain, 1, bbDCClone, "release-bot"}},
		},
		{
			name: "bitbucket dc: branch deleted", path: "/hooks/bitbucket",
			h: bbDC("repo:refs_changed", "dc-3", dcDelete, secret), body: dcDelete,
			wantCode: http.StatusAccepted,
		},
		{
			// "Test connection" names no repository: nothing to verify
			// against, nothing to build.
			name: "bitbucket dc: ping", path: "/hooks/bitbucket",
			h: bbDC("diagnostics:ping", "dc-4", dcPing, secret), body: dcPing,
			noLookup: true, wantCode: http.StatusOK,
		},
		{
			name: "bitbucket dc: pull request comment", path: "/hooks/bitbucket",
			h: bbDC("pr:comment:added", "dc-5", dcPR, secret), body: dcPR,
			wantCode: http.StatusAccepted,
		},
		{
			name: "bitbucket dc: wrong secret", path: "/hooks/bitbucket",
			h: bbDC("repo:refs_changed", "dc-6", dcPush, "guess"), body: dcPush,
			wantCode: http.StatusUnauthorized,
		},
		{
			name: "bitbucket dc: unsigned", path: "/hooks/bitbucket",
			h: bbDC("repo:refs_changed", "dc-7", dcPush, ""), body: dcPush,
			wantCode: http.StatusUnauthorized,
		},
		{
			// A Data Center event is not looked up among Cloud
			// repositories, where acme/demo (names match in any case) is.
			name: "bitbucket dc: repository only registered for cloud", path: "/hooks/bitbucket",
			setup: func(e *env) {
				if err := e.store.DeleteRepo(e.ctx, "r-bbdc"); err != nil {
					e.t.Fatal(err)
				}
			},
			h: bbDC("repo:refs_changed", "dc-8", dcPush, secret), body: dcPush,
			wantCode: http.StatusNotFound,
		},
		// GitLab.
		{
			name: "gitlab: push", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-1", "gl-1", gitlabToken), body: glPush,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idGLMain, "r-gl", "gl-1", "refs/heads/main", glMain, 0, gitlabClone, "mona"}},
		},
		{
			name: "gitlab: annotated tag builds the commit", path: "/hooks/gitlab",
			h: gitlabReq("Tag Push Hook", "gl-uuid-2", "gl-2", gitlabToken), body: glTag,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idGLTag, "r-gl", "gl-2", "refs/tags/v1.2.0", glMain, 1, gitlabClone, "release-bot"}},
		},
		{
			name: "gitlab: without Idempotency-Key the event UUID is the delivery", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-3", "", gitlabToken), body: glPush,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idGLMain, "r-gl", "gl-uuid-3", "refs/heads/main", glMain, 0, gitlabClone, "mona"}},
		},
		{
			name: "gitlab: branch deleted", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-4", "gl-4", gitlabToken), body: glDelete,
			wantCode: http.StatusAccepted,
		},
		{
			name: "gitlab: note event", path: "/hooks/gitlab",
			h: gitlabReq("Note Hook", "gl-uuid-5", "gl-5", gitlabToken), body: glNote,
			wantCode: http.StatusAccepted,
		},
		{
			name: "gitlab: wrong token", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-6", "gl-6", "glwht-guess"), body: glPush,
			wantCode: http.StatusUnauthorized,
		},
		{
			name: "gitlab: no token", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-7", "gl-7", ""), body: glPush,
			wantCode: http.StatusUnauthorized,
		},
		{
			name: "gitlab: body over 25 MB", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-8", "gl-8", gitlabToken), body: glBig,
			noLookup: true, wantCode: http.StatusRequestEntityTooLarge,
		},
		{
			name: "gitlab: bad payload", path: "/hooks/gitlab",
			h: gitlabReq("Push Hook", "gl-uuid-9", "gl-9", gitlabToken), body: []byte(`{"ref":`),
			noLookup: true, wantCode: http.StatusBadRequest,
		},
		// Gitea and Forgejo.
		{
			name: "gitea: push", path: "/hooks/gitea",
			h: giteaReq("push", "gt-1", gtPush, secret), body: gtPush,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idGTMain, "r-gt", "gt-1", "refs/heads/main", gtMain, 0, giteaClone, "mona"}},
		},
		{
			name: "forgejo: push", path: "/hooks/gitea",
			h: forgejoReq("push", "fj-1", gtForgejo, secret), body: gtForgejo,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idGTMain, "r-gt", "fj-1", "refs/heads/main", gtMain, 0, forgejoClone, "mona"}},
		},
		{
			name: "gitea: annotated tag builds the commit", path: "/hooks/gitea",
			h: giteaReq("push", "gt-2", gtTag, secret), body: gtTag,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idGTTag, "r-gt", "gt-2", "refs/tags/v1.2.0", gtMain, 1, giteaClone, "release-bot"}},
		},
		{
			name: "gitea: tag deleted", path: "/hooks/gitea",
			h: giteaReq("push", "gt-3", gtDelete, secret), body: gtDelete,
			wantCode: http.StatusAccepted,
		},
		{
			name: "gitea: delete event", path: "/hooks/gitea",
			h: giteaReq("delete", "gt-4", gtDeleteEvent, secret), body: gtDeleteEvent,
			wantCode: http.StatusAccepted,
		},
		{
			// Configured as a GitHub hook, Gitea still says who it is.
			name: "gitea: push to the github endpoint", path: "/hooks/github",
			h: giteaReq("push", "gt-5", gtPush, secret), body: gtPush,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idGTMain, "r-gt", "gt-5", "refs/heads/main", gtMain, 0, giteaClone, "mona"}},
		},
		{
			name: "forgejo: push to the github endpoint", path: "/hooks/github",
			h: forgejoReq("push", "fj-2", gtForgejo, secret), body: gtForgejo,
			wantCode: http.StatusAccepted,
			want:     []wantBuild{{idGTMain, "r-gt", "fj-2", "refs/heads/main", gtMain, 0, forgejoClone, "mona"}},
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
			wantCode: http.StatusUnauthorized,
		},
		{
			name: "gitea: wrong secret", path: "/hooks/gitea",
			h: giteaReq("push", "gt-7", gtPush, "guess"), body: gtPush,
			wantCode: http.StatusUnauthorized,
		},
		{
			name: "forgejo: unsigned", path: "/hooks/gitea",
			h: forgejoReq("push", "fj-3", gtForgejo, ""), body: gtForgejo,
			wantCode: http.StatusUnauthorized,
		},
		{
			name: "gitea: body over 25 MB", path: "/hooks/gitea",
			h: giteaReq("push", "gt-8", gtBig, secret), body: gtBig,
			noLookup: true, wantCode: http.StatusRequestEntityTooLarge,
		},
		{
			name: "gitea: bad payload", path: "/hooks/gitea",
			h: giteaReq("push", "gt-9", []byte(`[]`), secret), body: []byte(`[]`),
			noLookup: true, wantCode: http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newHostsEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			if tt.noLookup {
				e.h.Repos = e.broken().store
			}
			code, resp := e.post(tt.path, tt.h, tt.body)
			if code != tt.wantCode {
				t.Fatalf("status = %d, want %d: %v", code, tt.wantCode, resp)
			}
			if msg, _ := resp["error"].(string); (code >= 400) != (msg != "") {
				t.Errorf("error = %q for status %d", msg, code)
			}
			var ids []string
			for _, w := range tt.want {
				ids = append(ids, w.id)
				w.check(e)
			}
			if code == http.StatusAccepted {
				accepted(t, code, resp, ids...)
			}
			e.recorded(ids...)
		})
	}
}

// A host redelivering a webhook, or delivering the same push again under a
// new id, names the same build and queues nothing new.
func TestHostRedelivery(t *testing.T) {
	bbTag := fixture(t, "bitbucket", "cloud-push-tag.json")
	dcPush := fixture(t, "bitbucket", "server-refs-changed.json")
	glPush := fixture(t, "gitlab", "push.json")
	gtPush := fixture(t, "gitea", "push.json")
	gtForgejo := fixture(t, "gitea", "push-forgejo.json")
	tests := []struct {
		name       string
		path       string
		body       []byte
		first      http.Header
		redelivery http.Header
		other      http.Header // a new delivery of the same push
		want       string
	}{
		{"bitbucket cloud", "/hooks/bitbucket", bbTag,
			bbCloud("repo:push", "bb-1", bbTag, secret), bbCloud("repo:push", "bb-1", bbTag, secret), bbCloud("repo:push", "bb-2", bbTag, secret), idBBTag},
		{"bitbucket dc", "/hooks/bitbucket", dcPush,
			bbDC("repo:refs_changed", "dc-1", dcPush, secret), bbDC("repo:refs_changed", "dc-1", dcPush, secret), bbDC("repo:refs_changed", "dc-2", dcPush, secret), idDCMain},
		// A retry keeps the Idempotency-Key whatever its event UUID.
		{"gitlab", "/hooks/gitlab", glPush,
			gitlabReq("Push Hook", "uuid-1", "key-1", gitlabToken), gitlabReq("Push Hook", "uuid-2", "key-1", gitlabToken), gitlabReq("Push Hook", "uuid-1", "key-2", gitlabToken), idGLMain},
		{"gitlab without idempotency key", "/hooks/gitlab", glPush,
			gitlabReq("Push Hook", "uuid-1", "", gitlabToken), gitlabReq("Push Hook", "uuid-1", "", gitlabToken), gitlabReq("Push Hook", "uuid-2", "", gitlabToken), idGLMain},
		{"gitea", "/hooks/gitea", gtPush,
			giteaReq("push", "gt-1", gtPush, secret), giteaReq("push", "gt-1", gtPush, secret), giteaReq("push", "gt-2", gtPush, secret), idGTMain},
		{"forgejo", "/hooks/gitea", gtForgejo,
			forgejoReq("push", "fj-1", gtForgejo, secret), forgejoReq("push", "fj-1", gtForgejo, secret), forgejoReq("push", "fj-2", gtForgejo, secret), idGTMain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newHostsEnv(t)
			for _, h := range []http.Header{tt.first, tt.redelivery, tt.other} {
				code, resp := e.post(tt.path, h, tt.body)
				accepted(t, code, resp, tt.want)
			}
			e.recorded(tt.want)
		})
	}
}

// Gitea's and Forgejo's GitHub-style requests go to the Gitea adapter only
// when it is served, and a GitHub request is never taken for theirs.
func TestGiteaRoutingNeedsGiteaHeaders(t *testing.T) {
	// Gitea's push of branchHead, so that GitHub's repository r1 builds
	// idMain from it.
	gtPush := bytes.ReplaceAll(fixture(t, "gitea", "push.json"), []byte("c490155e19b789dfcc86c2ed12d81eb6e88cb9d9"), []byte(branchHead))

	// GitHub only: the request is GitHub's to read, under GitHub's
	// repository (Gitea sends X-Hub-Signature-256 too).
	e := newEnv(t, nil, hostRepos()...)
	code, resp := e.post("/hooks/github", giteaReq("push", "gt-1", gtPush, secret), gtPush)
	accepted(t, code, resp, idMain)
	if b := e.build(idMain); b.RepoID != "r1" {
		t.Errorf("built repository %s, want GitHub's r1", b.RepoID)
	}

	e = newHostsEnv(t)
	code, resp = e.send(delivery{event: "push", id: "d1", body: gh(t, "push-branch.json")})
	accepted(t, code, resp, idMain)
	e.recorded(idMain)
}

// An event that names no repository is answered without a lookup only when
// it builds nothing; the repositories and the queue are down, so touching
// either would answer 503.
func TestHandlerEventWithoutRepo(t *testing.T) {
	tests := []struct {
		kind     string
		wantCode int
	}{
		{webhook.KindPing, http.StatusOK},
		{webhook.KindOther, http.StatusAccepted},
		{webhook.KindPullRequest, http.StatusAccepted},
		{webhook.KindPush, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			p := fixedProvider{ev: webhook.Event{Kind: tt.kind, RawKind: "x", DeliveryID: "d1",
				Pushes: []webhook.Push{{Ref: "refs/heads/main", After: branchHead}}}}
			e := newEnv(t, []webhook.Provider{p})
			e.h.Repos, e.h.Queue = e.broken().store, e.broken().queue
			code, resp := e.post("/hooks/fixed", http.Header{}, []byte("{}"))
			if code != tt.wantCode {
				t.Fatalf("status = %d, want %d: %v", code, tt.wantCode, resp)
			}
			e.recorded()
		})
	}
}

// fixedProvider peeks and parses every request into ev and verifies nothing.
type fixedProvider struct{ ev webhook.Event }

func (fixedProvider) Name() string                                       { return "fixed" }
func (fixedProvider) MaxBody() int64                                     { return 1 << 10 }
func (p fixedProvider) Peek(http.Header, []byte) (webhook.Event, error)  { return p.ev, nil }
func (p fixedProvider) Parse(http.Header, []byte) (webhook.Event, error) { return p.ev, nil }
func (fixedProvider) Verify(http.Header, []byte, string) error {
	return errors.New("must not be called")
}

// staleRepos answers FindRepo from an out-of-date copy, as a cache may for
// a moment after the secret changed, and FindRepoFresh from the store.
type staleRepos struct {
	*store.Store
	stale model.Repo
}

func (s staleRepos) FindRepo(context.Context, string, string) (model.Repo, error) {
	return s.stale, nil
}

func (s staleRepos) FindRepoFresh(ctx context.Context, provider, fullName string) (model.Repo, error) {
	return s.Store.FindRepo(ctx, provider, fullName)
}

// A webhook signed with a repository's new secret is accepted although the
// cached repository still has the old one; a wrong signature still is not.
func TestHandlerChecksAStaleCachedSecretAgainstTheStoredOne(t *testing.T) {
	e := newEnv(t, nil)
	old := demoRepo()
	old.WebhookSecret = "the-secret-before-rotation"
	e.h.Repos = staleRepos{e.store, old}
	code, resp := e.send(delivery{event: "push", id: "after-rotation", body: gh(t, "push-branch.json")})
	accepted(t, code, resp, idMain)
	wrong := "sha256=" + webhook.SignHMAC(gh(t, "push-branch.json"), "not-the-secret")
	code, resp = e.send(delivery{event: "push", id: "forged", body: gh(t, "push-branch.json"), sig: &wrong})
	if code != http.StatusUnauthorized {
		t.Errorf("wrongly signed webhook: HTTP %d %v, want 401", code, resp)
	}
}
