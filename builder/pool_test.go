package builder_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/e2e/rig"
)

// poolEnv is a pool over two real daemons, first and second in address
// order, sharing one registry for the base image.
type poolEnv struct {
	pool          *builder.Pool
	first, second string
	firstRoot     string
	base, reg     string
}

func newPoolEnv(t *testing.T) *poolEnv {
	d1, o1 := startDaemon(t)
	d2, _ := startDaemon(t)
	reg := startRegistry(t)
	base := strings.TrimSuffix(rig.PushBusybox(t, d1.Addr(), reg.addr), ":latest")
	p, err := builder.NewPool(builder.PoolOptions{Addrs: d1.Addr() + "," + d2.Addr(), Margin: 2})
	if err != nil {
		t.Fatal(err)
	}
	return &poolEnv{pool: p, first: d1.Addr(), second: d2.Addr(), firstRoot: o1.Root, base: base, reg: reg.addr}
}

// build runs a build of repo and returns the daemon it ran on (from the
// log's first line) and its error.
func (e *poolEnv) build(ctx context.Context, t *testing.T, repo, run string) (string, error) {
	t.Helper()
	req := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.base + "\nRUN " + run + "\n"})
	req.Refs, req.Repo = []string{e.reg + "/pool/" + strings.ToLower(repo) + ":v1"}, repo
	var log syncBuffer
	_, err := e.pool.Build(ctx, req, &log)
	first, _, _ := strings.Cut(log.String(), "\n")
	if err != nil && ctx.Err() == nil {
		t.Logf("build of %s: %v\nlog:\n%s", repo, err, log.String())
	}
	return strings.TrimPrefix(first, "==> buildkit "), err
}

func (e *poolEnv) state(t *testing.T, addr string) builder.DaemonState {
	t.Helper()
	for _, s := range e.pool.States() {
		if s.Addr == addr {
			return s
		}
	}
	t.Fatalf("no state for %s in %+v", addr, e.pool.States())
	return builder.DaemonState{}
}

func TestPool(t *testing.T) {
	e := newPoolEnv(t)
	if err := e.pool.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	t.Run("AffinityWithinMargin", e.affinity)
	t.Run("FailoverWhenDaemonKilled", e.failover)
}

// affinity: repo A stays on the daemon that built it; repo B, last built
// there too, moves once that daemon runs more than the margin (2) over
// the other.
func (e *poolEnv) affinity(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	for i, repo := range []string{"A", "A", "B"} {
		addr, err := e.build(ctx, t, repo, "echo "+nonce(t))
		if err != nil || addr != e.first {
			t.Fatalf("build %d of %s ran on %q (%v), want %s", i, repo, addr, err, e.first)
		}
	}
	// Three long builds of A: affinity keeps them all on the first daemon
	// (running 0, 1, 2 against 0: within the margin).
	slow, stop := context.WithCancel(ctx)
	done := make(chan string, 3)
	for range 3 {
		go func() {
			addr, _ := e.build(slow, t, "A", "sleep 60 # "+nonce(t))
			done <- addr
		}()
		// One at a time, so each is picked knowing the others run.
		n := e.state(t, e.first).Running + 1
		waitFor(t, 10*time.Second, "the slow build to start", func() bool { return e.state(t, e.first).Running == n })
	}
	addr, err := e.build(ctx, t, "B", "echo "+nonce(t))
	stop()
	for range 3 {
		if got := <-done; got != e.first {
			t.Errorf("slow build of A ran on %q, want %s", got, e.first)
		}
	}
	if err != nil || addr != e.second {
		t.Fatalf("build of B with its daemon 3 builds busier ran on %q (%v), want %s", addr, err, e.second)
	}
	waitFor(t, 10*time.Second, "the slow builds to be uncounted", func() bool { return e.state(t, e.first).Running == 0 })
	if got := e.state(t, e.first); !got.Healthy || got.LastBuiltRepos != 1 {
		t.Errorf("first daemon: %+v, want healthy with 1 repository (A)", got)
	}
	if got := e.state(t, e.second); !got.Healthy || got.LastBuiltRepos != 1 {
		t.Errorf("second daemon: %+v, want healthy with 1 repository (B)", got)
	}
}

// failover: kill -9 the first daemon under a build of A; the build fails
// with ErrDaemonGone, the next one runs on the second daemon, and once the
// supervisor has restarted the first on its socket the health loop brings
// it back.
func (e *poolEnv) failover(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var addr string
	go func() {
		var err error
		addr, err = e.build(ctx, t, "A", "sleep 20 # "+nonce(t))
		done <- err
	}()
	waitFor(t, 10*time.Second, "the build to start", func() bool { return e.state(t, e.first).Running == 1 })
	time.Sleep(2 * time.Second) // into the RUN step
	pid := atoi(t, daemonPid(t, e.firstRoot))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, builder.ErrDaemonGone) || addr != e.first {
			t.Fatalf("build on %q: err = %v, want one on %s matching builder.ErrDaemonGone", addr, err, e.first)
		}
		t.Logf("Build returned %s after kill -9", time.Since(killed).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("Build still running 30s after kill -9 of its daemon")
	}
	if got := e.state(t, e.first); got.Healthy || got.LastError == "" {
		t.Errorf("killed daemon: %+v, want down with its error", got)
	}
	if addr, err := e.build(ctx, t, "A", "echo "+nonce(t)); err != nil || addr != e.second {
		t.Fatalf("build after the kill ran on %q (%v), want %s", addr, err, e.second)
	}
	watch, stop := context.WithCancel(ctx)
	defer stop()
	go e.pool.Watch(watch, 500*time.Millisecond)
	waitFor(t, 60*time.Second, "the restarted daemon to be healthy", func() bool { return e.state(t, e.first).Healthy })
	if err := e.pool.Ping(ctx); err != nil {
		t.Errorf("Ping after recovery: %v", err)
	}
}
