package worker_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/store"
)

// testKeys seal the repositories of every store the tests open; stores
// sharing one NATS must share their keys.
var testKeys = seal.Ephemeral()

// env is the real state a worker part runs on: an embedded JetStream server
// on its own t.TempDir() store dir, the production Store and Queue on it,
// and a log the parts write to.
type env struct {
	t     *testing.T
	store *store.Store
	queue *queue.Queue
	js    jetstream.JetStream
	log   *logBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv, err := natsd.Start(natsd.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("natsd.Start: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	ctx := testCtx(t)
	st, err := store.Open(ctx, nc, store.Options{Replicas: 1, Keys: testKeys})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	q, err := queue.Open(ctx, nc, st, queue.Options{})
	if err != nil {
		t.Fatalf("queue.Open: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return &env{t: t, store: st, queue: q, js: js, log: &logBuffer{}}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// logger writes to the test's output and to e.log, for checking what a
// part said.
func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(teeWriter{e.t, e.log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// run runs a part's loop until the test ends.
func (e *env) run(loop func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); loop(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

// drained waits until a work-queue stream holds no job: every job was
// acked.
func (e *env) drained(stream string) {
	e.t.Helper()
	e.waitFor(stream+" drained", func() bool {
		st, err := e.js.Stream(testCtx(e.t), stream)
		if err != nil {
			return false
		}
		info, err := st.Info(testCtx(e.t))
		return err == nil && info.State.Msgs == 0
	})
}

// waitFor polls cond for up to 15 s.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; log:\n%s", what, e.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) build(id string) model.Build {
	e.t.Helper()
	b, err := e.store.GetBuild(testCtx(e.t), id)
	if err != nil {
		e.t.Fatalf("GetBuild(%s): %v", id, err)
	}
	return b
}

func (e *env) createRepo(r model.Repo) {
	e.t.Helper()
	if err := e.store.CreateRepo(testCtx(e.t), r); err != nil {
		e.t.Fatalf("CreateRepo: %v", err)
	}
}

func (e *env) createBuild(b model.Build) {
	e.t.Helper()
	if _, err := e.store.CreateBuild(testCtx(e.t), b); err != nil {
		e.t.Fatalf("CreateBuild: %v", err)
	}
}

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines are the logged lines that contain every one of parts.
func (l *logBuffer) lines(parts ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

// teeWriter writes log lines to the test output and a buffer.
type teeWriter struct {
	t   *testing.T
	buf *logBuffer
}

func (w teeWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return w.buf.Write(p)
}
