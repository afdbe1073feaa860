package worker_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/source"
	"github.com/slipway-build/slipway/worker"
)

// laterBuilder pushes every build and records what the world looked like
// when the registry cache export came.
type laterBuilder struct {
	e         *env
	mu        sync.Mutex
	built     []builder.Request
	exported  []builder.Request
	atExport  model.Build // the build's record when the export started
	hooksAt   uint64      // deploy-hook jobs queued when the export started
	dirAt     bool        // the checkout was still there for the export
	probe     func() string
	probedAt  string // what probe answered during the export
	exportErr error
	done      chan struct{}
}

func (l *laterBuilder) Ping(context.Context) error { return nil }
func (l *laterBuilder) Test(context.Context, builder.Request, io.Writer) error {
	return errors.New("no test stage here")
}
func (l *laterBuilder) Build(_ context.Context, req builder.Request, _ io.Writer) (builder.Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.built = append(l.built, req)
	return builder.Result{Digest: "sha256:" + sha + sha[:24], Steps: builder.Steps{Total: 9, Cached: 6}}, nil
}
func (l *laterBuilder) ExportCache(ctx context.Context, req builder.Request, _ io.Writer) error {
	defer close(l.done)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.exported = append(l.exported, req)
	l.atExport = l.e.build("b1")
	st, err := l.e.js.Stream(ctx, queue.HooksStream)
	if err == nil {
		if info, err := st.Info(ctx); err == nil {
			l.hooksAt = info.State.Msgs
		}
	}
	_, err = os.Stat(filepath.Join(req.ContextDir, "Dockerfile"))
	l.dirAt = err == nil
	if l.probe != nil {
		l.probedAt = l.probe()
	}
	return l.exportErr
}

type okTagger struct{}

func (okTagger) Tag(context.Context, string, string, string) error { return nil }

// runPushedBuild runs one build of a real commit on a worker whose builder
// can export the cache later, and waits for that export.
func runPushedBuild(t *testing.T, exportErr error) (*laterBuilder, string) {
	return runPushedBuildWith(t, exportErr, nil, nil)
}

// runPushedBuildWith is runPushedBuild on a worker that keeps mirrors
// (nil: none); set, probe runs during the cache export. counts, when
// set, are the worker's metrics.
func runPushedBuildWith(t *testing.T, exportErr error, mirrors *source.Mirrors, counts worker.BuildMetrics) (*laterBuilder, string) {
	e := newEnv(t)
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "demo")
	commit := src.Commit("first", map[string]string{"Dockerfile": "FROM scratch\nCOPY . /\n"})
	src.Push("main")
	e.createRepo(model.Repo{ID: "r1", Provider: "github", FullName: "acme/demo", CloneURL: src.CloneURL, Image: image, CreatedAt: created,
		Hooks: []model.Hook{{URL: "http://127.0.0.1:1/deploy", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}})
	b := newBuild()
	b.Commit, b.CloneURL = commit, src.CloneURL
	b.Rule = model.Rule{Dockerfile: "Dockerfile", Context: "."}
	e.submit(b)
	jobs, err := e.queue.BuildJobs(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	lb := &laterBuilder{e: e, exportErr: exportErr, done: make(chan struct{})}
	if mirrors != nil {
		lb.probe = func() string { return probeTree(t, mirrors, src.CloneURL, commit) }
	}
	work := t.TempDir()
	w := &worker.Worker{
		Mirrors: mirrors,
		Builds:  e.store, Repos: e.store, Tags: e.store, Slots: e.store, Queue: e.queue, Jobs: jobs,
		Logger: e.logger(), RetryDelay: time.Millisecond, Builder: lb, WorkDir: work, Metrics: counts,
		Logs:   func(string) io.WriteCloser { return nopLog{io.Discard} },
		Tagger: func(builder.Credentials) worker.Tagger { return okTagger{} },
	}
	e.run(func(ctx context.Context) { w.Run(ctx, 1) })
	select {
	case <-lb.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("no cache export within 15 s; build %+v", e.build("b1"))
	}
	e.waitFor("checkout removed", func() bool {
		_, err := os.Stat(filepath.Join(work, "b1"))
		return os.IsNotExist(err)
	})
	return lb, commit
}

// The registry cache is exported after the build's end is stored and its
// deploy hook queued, from the checkout kept until then; the build itself
// reads the cache but does not write it.
func TestCacheExportedAfterTheHooksAreQueued(t *testing.T) {
	lb, _ := runPushedBuild(t, nil)
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if len(lb.built) != 1 || !lb.built[0].CacheLater || lb.built[0].CacheRef != image+":buildcache" {
		t.Fatalf("builds %+v; want one, reading %s:buildcache with the export left for later", lb.built, image)
	}
	if len(lb.exported) != 1 || lb.exported[0].CacheRef != image+":buildcache" {
		t.Fatalf("cache exports %+v; want one to %s:buildcache", lb.exported, image)
	}
	if lb.atExport.Status != model.StatusSucceeded || len(lb.atExport.Deliveries) != 1 {
		t.Errorf("when the export started the build was %s with %d deliveries; want succeeded with its image.pushed delivery", lb.atExport.Status, len(lb.atExport.Deliveries))
	}
	if lb.hooksAt != 1 {
		t.Errorf("%d deploy-hook jobs queued when the export started, want 1", lb.hooksAt)
	}
	if !lb.dirAt {
		t.Error("the checkout was gone when the cache export needed it")
	}
}

// probeTree is the working tree a build of commit gets now.
func probeTree(t *testing.T, m *source.Mirrors, url, commit string) string {
	wt, err := m.Tree(testCtx(t), "r1", "probe", source.Checkout{URL: url, Commit: commit, Dir: filepath.Join(t.TempDir(), "probe")})
	wt.Release()
	if err != nil {
		return err.Error()
	}
	return wt.Dir
}

// With mirrors the build's context is the repository's kept working tree,
// named by its key in the build and the export alike, and the build holds
// it until the export after the deploy hooks ends: a build meanwhile gets
// another tree, one after it the same.
func TestCacheExportHoldsTheKeptTree(t *testing.T) {
	m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 30, CLI: true}
	lb, commit := runPushedBuildWith(t, nil, m, nil)
	lb.mu.Lock()
	defer lb.mu.Unlock()
	tree := filepath.Join(m.Dir, "r1", "slipway-trees", "0")
	real, err := filepath.EvalSymlinks(tree)
	if err != nil {
		t.Fatal(err)
	}
	if len(lb.built) != 1 || len(lb.exported) != 1 {
		t.Fatalf("builds %d, exports %d; want 1 and 1", len(lb.built), len(lb.exported))
	}
	for what, req := range map[string]builder.Request{"build": lb.built[0], "export": lb.exported[0]} {
		if req.ContextDir != real || req.ContextKey != "slipway-tree/r1/0" {
			t.Errorf("%s: context %s (key %q), want %s (key slipway-tree/r1/0)", what, req.ContextDir, req.ContextKey, real)
		}
	}
	if want := filepath.Join(m.Dir, "r1", "slipway-trees", "1"); lb.probedAt != want {
		t.Errorf("a build during the export got %s, want the second tree %s", lb.probedAt, want)
	}
	// The worker lets the tree go just after the export returns, which
	// the test cannot see happen: a build after that gets the first tree
	// again (the wait fails the test if it never does).
	url := lb.e.build("b1").CloneURL
	lb.e.waitFor("a build after the export to get the first tree "+tree+" again", func() bool {
		return probeTree(t, m, url, commit) == tree
	})
}

// A failed cache export leaves the pushed build succeeded.
func TestFailedCacheExportLeavesTheBuildSucceeded(t *testing.T) {
	lb, _ := runPushedBuild(t, errors.New("registry said no"))
	if got := lb.e.build("b1"); got.Status != model.StatusSucceeded || got.Error != "" {
		t.Errorf("build ended %s (%q) after a failed cache export; want succeeded", got.Status, got.Error)
	}
}
