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
	return builder.Result{Digest: "sha256:" + sha + sha[:24]}, nil
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
	return l.exportErr
}

type okTagger struct{}

func (okTagger) Tag(context.Context, string, string, string) error { return nil }

// runPushedBuild runs one build of a real commit on a worker whose builder
// can export the cache later, and waits for that export.
func runPushedBuild(t *testing.T, exportErr error) (*laterBuilder, string) {
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
	work := t.TempDir()
	w := &worker.Worker{
		Builds: e.store, Repos: e.store, Tags: e.store, Slots: e.store, Queue: e.queue, Jobs: jobs,
		Logger: e.logger(), RetryDelay: time.Millisecond, Builder: lb, WorkDir: work,
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

// A failed cache export leaves the pushed build succeeded.
func TestFailedCacheExportLeavesTheBuildSucceeded(t *testing.T) {
	lb, _ := runPushedBuild(t, errors.New("registry said no"))
	if got := lb.e.build("b1"); got.Status != model.StatusSucceeded || got.Error != "" {
		t.Errorf("build ended %s (%q) after a failed cache export; want succeeded", got.Status, got.Error)
	}
}
