package telemetry_test

// One push followed through the real parts: the webhook handler, the
// queue and store on an embedded NATS JetStream server, the worker cloning
// from a Git server on loopback (its BuildKit a stand-in that answers a
// digest), the notifier calling a deploy hook on loopback and the reporter
// posting commit statuses to a local GitHub API. Their spans go to a span
// recorder, their logs to one JSON log.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/forge"
	ghforge "github.com/slipway-build/slipway/forge/github"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/store"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/worker"
)

const (
	webhookSecret = "push-test-webhook-secret"
	hookSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	digest        = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
	// The commit's dates are fixed (GIT_*_DATE), so its hash is too, and
	// with it the build's id: trigger.ID of r1, refs/heads/main, this
	// commit and the rule.
	commit  = "a76d7aab2b6be7af4c0ce261064b9a246380521f"
	buildID = "c2ce29d6f2780e519f20"
)

// stand-in BuildKit: every build pushes digest.
type pushed struct{}

func (pushed) Ping(context.Context) error { return nil }
func (pushed) Test(context.Context, builder.Request, io.Writer) error {
	return errors.New("no test stage here")
}
func (pushed) Build(context.Context, builder.Request, io.Writer) (builder.Result, error) {
	return builder.Result{Digest: digest}, nil
}

type tagged struct{}

func (tagged) Tag(context.Context, string, string, string) error { return nil }

// logBuffer collects the JSON log lines of every part.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSuffix(l.buf.String(), "\n"), "\n")
}

// rigged is what one push runs on.
type rigged struct {
	t       *testing.T
	store   *store.Store
	queue   *queue.Queue
	js      jetstream.JetStream
	log     *logBuffer
	logger  *slog.Logger
	spans   *tracetest.SpanRecorder
	tp      trace.TracerProvider
	hooks   *httptest.Server
	mu      sync.Mutex
	calls   int
	git     *rig.Repo
	github  *rig.HostAPI
	handler http.Handler
}

// newRig starts NATS, a Git server with one commit on main, a deploy-hook
// receiver that answers 500 to its first failHooks calls, and a GitHub
// API, and registers acme/demo. traced says whether the parts get a tracer
// provider (a recorder) or none.
func newRig(t *testing.T, traced bool, failHooks int) *rigged {
	// Fixed dates make the commit, and so the build id, the same every run.
	t.Setenv("GIT_AUTHOR_DATE", "2026-03-04T09:00:00Z")
	t.Setenv("GIT_COMMITTER_DATE", "2026-03-04T09:00:00Z")
	r := &rigged{t: t, log: &logBuffer{}}
	r.logger = slog.New(slog.NewJSONHandler(io.MultiWriter(r.log, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if traced {
		r.spans = tracetest.NewSpanRecorder()
		r.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	}
	srv, err := natsd.Start(natsd.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := t.Context()
	if r.store, err = store.Open(ctx, nc, store.Options{Replicas: 1, Keys: seal.Ephemeral()}); err != nil {
		t.Fatal(err)
	}
	if r.queue, err = queue.Open(ctx, nc, r.store, queue.Options{}); err != nil {
		t.Fatal(err)
	}
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	r.hooks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		r.calls++
		fail := r.calls <= failHooks
		r.mu.Unlock()
		if fail {
			http.Error(w, "deploy target warming up", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.hooks.Close)
	r.github = rig.StartHostAPI(t)
	git := rig.StartGitServer(t)
	r.git = git.NewRepo(t, "demo")
	if got := r.git.Commit("first", map[string]string{"Dockerfile": "FROM scratch\nCOPY . /\n"}); got != commit {
		t.Fatalf("commit %s, want %s: the fixed dates did not hold", got, commit)
	}
	r.git.Push("main")
	err = r.store.CreateRepo(ctx, model.Repo{
		ID: "r1", Provider: "github", FullName: "acme/demo", CloneURL: r.git.CloneURL, APIURL: r.github.URL,
		WebhookSecret: webhookSecret, Image: "registry.test/acme/demo", Token: "ghp_pushtest",
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}, Dockerfile: "Dockerfile", Context: "."}},
		Hooks: []model.Hook{{URL: r.hooks.URL + "/deploy", Secret: hookSecret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /hooks/{provider}", &webhook.Handler{
		Providers: []webhook.Provider{ghforge.Webhook{}}, Repos: r.store, Queue: r.queue, Logger: r.logger,
		IsNotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) }, Deliveries: r.store, Traces: r.tp,
	})
	r.handler = mux
	return r
}

// testWriter shows the log in the test's output.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startParts runs a worker, a notifier and a reporter until the test ends.
func (r *rigged) startParts() {
	ctx, cancel := context.WithCancel(context.Background())
	jobs, err := r.queue.BuildJobs(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	hooks, err := r.queue.HookJobs(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	statuses, err := r.queue.StatusJobs(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	w := &worker.Worker{
		Builds: r.store, Repos: r.store, Tags: r.store, Slots: r.store, Queue: r.queue, Jobs: jobs,
		Builder: pushed{}, WorkDir: r.t.TempDir(), Logger: r.logger, RetryDelay: time.Millisecond, Traces: r.tp,
		Logs:   func(string) io.WriteCloser { return nopCloser{io.Discard} },
		Tagger: func(builder.Credentials) worker.Tagger { return tagged{} },
	}
	n := &worker.Notifier{Builds: r.store, Repos: r.store, Jobs: hooks, Sender: deploy.Sender{}, PublicURL: "http://slipway.test", Logger: r.logger, Traces: r.tp,
		Schedule: deploy.Schedule{0, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}}
	rep := &worker.Reporter{
		Builds: r.store, Repos: r.store, Jobs: statuses, Forges: map[string]forge.Forge{"github": ghforge.Forge{}},
		Token:     func(_ context.Context, repo model.Repo) (string, error) { return repo.Token, nil },
		PublicURL: "http://slipway.test", Logger: r.logger, Traces: r.tp,
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); w.Run(ctx, 1) }()
	go func() { defer wg.Done(); n.Run(ctx, 1) }()
	go func() { defer wg.Done(); rep.Run(ctx) }()
	r.t.Cleanup(func() { cancel(); wg.Wait() })
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// push sends GitHub's push of the commit to main and answers the builds
// the webhook queued.
func (r *rigged) push() []string {
	r.t.Helper()
	srv := httptest.NewServer(r.handler)
	defer srv.Close()
	body := rig.GitHubPush{Repo: "acme/demo", CloneURL: "http://invalid.example/ignored.git", Ref: "refs/heads/main", After: commit, Message: "first"}.Payload()
	got := rig.SendGitHub(r.t, srv.URL, "push", "delivery-1", webhookSecret, body)
	if got.Code != http.StatusAccepted {
		r.t.Fatalf("webhook answered %+v", got)
	}
	return got.Builds
}

// waitFor polls cond for up to 20 s.
func (r *rigged) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// delivered waits until the build succeeded, its deploy hook was called and
// its three commit statuses were posted.
func (r *rigged) delivered() {
	r.waitFor("build succeeded, hook delivered, statuses posted", func() bool {
		b, err := r.store.GetBuild(r.t.Context(), buildID)
		return err == nil && b.Status == model.StatusSucceeded && len(b.Deliveries) == 1 &&
			b.Deliveries[0].Status == model.DeliveryDelivered && len(b.Statuses) == 3
	})
}

// span is what the test reads of a recorded span.
type span struct {
	name, kind      string
	trace, id, from string // trace id, span id, parent span id
	remote          bool   // the parent came over NATS
	attrs           map[string]string
}

func (r *rigged) recorded() []span {
	var out []span
	for _, s := range r.spans.Ended() {
		a := map[string]string{}
		for _, kv := range s.Attributes() {
			a[string(kv.Key)] = kv.Value.String()
		}
		out = append(out, span{
			name: s.Name(), kind: s.SpanKind().String(), trace: s.SpanContext().TraceID().String(), id: s.SpanContext().SpanID().String(),
			from: parentOf(s), remote: s.Parent().IsRemote(), attrs: a,
		})
	}
	return out
}

func parentOf(s sdktrace.ReadOnlySpan) string {
	if !s.Parent().IsValid() {
		return ""
	}
	return s.Parent().SpanID().String()
}

// The push's trace: the webhook's span, its enqueue span, and across the
// NATS hop the worker's build span with its clone, solve and tags, the
// deploy hook's delivery and the commit statuses, one trace, every span
// naming the build, its repository and organization.
func TestOnePushIsOneTrace(t *testing.T) {
	r := newRig(t, true, 0)
	r.startParts()
	if got := r.push(); len(got) != 1 || got[0] != buildID {
		t.Fatalf("webhook queued %v, want [%s]", got, buildID)
	}
	r.delivered()
	var spans []span
	r.waitFor("8 spans ended", func() bool { spans = r.recorded(); return len(spans) >= 8 })

	byName := map[string][]span{}
	for _, s := range spans {
		byName[s.name] = append(byName[s.name], s)
	}
	counts := map[string]int{}
	for name, ss := range byName {
		counts[name] = len(ss)
	}
	want := map[string]int{"webhook": 1, "enqueue": 1, "build": 1, "clone": 1, "solve": 1, "tags": 1, "deliver": 1, "status": 3}
	if len(counts) != len(want) {
		t.Fatalf("spans by name %v, want %v", counts, want)
	}
	for name, n := range want {
		if counts[name] != n {
			t.Fatalf("spans by name %v, want %v", counts, want)
		}
	}
	root, enq, build := byName["webhook"][0], byName["enqueue"][0], byName["build"][0]
	for _, s := range spans {
		if s.trace != root.trace {
			t.Errorf("span %s in trace %s, the webhook's is %s", s.name, s.trace, root.trace)
		}
		if s.attrs["slipway.repository"] != "acme/demo" || s.attrs["slipway.organization"] != "acme" {
			t.Errorf("span %s names repository %q, organization %q; want acme/demo, acme", s.name, s.attrs["slipway.repository"], s.attrs["slipway.organization"])
		}
		key, want := "slipway.build.id", buildID
		if s.name == "webhook" {
			key, want = "slipway.build.ids", `["`+buildID+`"]`
		}
		if s.attrs[key] != want {
			t.Errorf("span %s has %s %q, want %s", s.name, key, s.attrs[key], want)
		}
	}
	if root.from != "" || root.kind != "server" || root.attrs["slipway.host"] != "github" || root.attrs["slipway.delivery"] != "delivery-1" ||
		root.attrs["http.response.status_code"] != "202" {
		t.Errorf("webhook span %+v; want a root server span of host github, delivery delivery-1, answered 202", root)
	}
	if enq.from != root.id || enq.kind != "producer" {
		t.Errorf("enqueue span %+v; want a producer under the webhook span %s", enq, root.id)
	}
	if build.from != enq.id || !build.remote || build.kind != "consumer" || build.attrs["slipway.build.status"] != "succeeded" || build.attrs["slipway.digest"] != digest {
		t.Errorf("build span %+v; want a consumer whose parent is the enqueue span %s, come over NATS, succeeded with %s", build, enq.id, digest)
	}
	for _, name := range []string{"clone", "solve", "tags", "deliver"} {
		if s := byName[name][0]; s.from != build.id {
			t.Errorf("%s span's parent is %s, want the build span %s", name, s.from, build.id)
		}
	}
	if d := byName["deliver"][0]; !d.remote || d.attrs["http.response.status_code"] != "204" || d.attrs["slipway.event"] != "image.pushed" {
		t.Errorf("deliver span %+v; want one come over NATS, for image.pushed, answered 204", d)
	}
	// The pending status is queued with the job, the others by the worker.
	parents := map[string]string{}
	for _, s := range byName["status"] {
		parents[s.attrs["slipway.state"]] = s.from
	}
	if parents["pending"] != enq.id || parents["running"] != build.id || parents["success"] != build.id {
		t.Errorf("status spans' parents %v; want pending under enqueue %s, running and success under build %s", parents, enq.id, build.id)
	}
}

// Every log line that names the build, from the webhook, the worker, the
// notifier and the reporter, names it as build (builds for the webhook's
// answer), with its repository's full name as repo and its organization
// as org.
func TestEveryLogLineOfABuildNamesItsRepoAndOrg(t *testing.T) {
	r := newRig(t, false, 1)
	r.startParts()
	r.push()
	r.delivered()
	// The reporter logs its last line after the status is recorded.
	time.Sleep(200 * time.Millisecond)
	about := 0
	msgs := map[string]bool{}
	for _, line := range r.log.lines() {
		if !strings.Contains(line, buildID) {
			continue
		}
		about++
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is no JSON object: %v\n%s", err, line)
		}
		msgs[rec["msg"].(string)] = true
		named := rec["build"] == buildID
		if builds, ok := rec["builds"].([]any); ok && len(builds) == 1 && builds[0] == buildID {
			named = true
		}
		if !named || rec["repo"] != "acme/demo" || rec["org"] != "acme" {
			t.Errorf("line names build %v (builds %v), repo %v, org %v; want %s, acme/demo, acme:\n%s", rec["build"], rec["builds"], rec["repo"], rec["org"], buildID, line)
		}
	}
	for _, msg := range []string{"webhook accepted", "build finished", "deploy hook failed; will retry", "deploy hook done"} {
		if !msgs[msg] {
			t.Errorf("no line %q about the build among %d: %v", msg, about, msgs)
		}
	}
}

// Without a tracer provider nothing is recorded and no job carries a
// trace context: the NATS messages have no traceparent header.
func TestNoProviderNoTraceContextInJobs(t *testing.T) {
	r := newRig(t, false, 0)
	r.push()
	st, err := r.js.Stream(t.Context(), queue.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(msg.Data), buildID) {
		t.Fatalf("first job %s is not the build's", msg.Data)
	}
	if h := msg.Header.Get("traceparent"); h != "" || msg.Header.Get("Traceparent") != "" {
		t.Errorf("job carries traceparent %q without a tracer provider", h)
	}
}
