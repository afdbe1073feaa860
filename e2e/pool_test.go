package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// TestBuilderPoolFailover runs one Slipway over a pool of two buildkitd of
// the test's own (SLIPWAY_BUILDKIT_ADDR="<a>,<b>"): a repository's builds
// stay on the daemon that built it, a build whose daemon is killed with
// SIGKILL is retried on the other and succeeds, and the dead daemon is
// reported down, then healthy once it is started again.
func TestBuilderPoolFailover(t *testing.T) {
	phase := time.Now()
	lap := func(what string) {
		t.Logf("%s took %s", what, time.Since(phase).Round(100*time.Millisecond))
		phase = time.Now()
	}
	a, b := rig.NewBuildkitd(t), rig.NewBuildkitd(t)
	s := rig.StartSlipway(t, rig.Options{Env: []string{
		"SLIPWAY_BUILDKIT_ADDR=" + a.Addr + "," + b.Addr, "SLIPWAY_WORKERS=2", "SLIPWAY_RECONCILE_INTERVAL=0s",
	}})
	s.PushBusybox() // on a, the first of the list
	git := rig.StartGitServer(t)
	pool, other := git.NewRepo(t, "pool"), git.NewRepo(t, "other")
	other.Commit("keeps a busy", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "sleep 60")})
	other.Push("main")
	pool.Commit("readme", map[string]string{"README": "pool\n"})
	pool.Push("main")
	poolRepo := registerRepo(t, s, "acme/pool", pool.CloneURL, nil)
	registerRepo(t, s, "acme/other", other.CloneURL, nil)
	lap("setup (two buildkitd, slipway, busybox base)")

	// Both idle, a tie goes to the first daemon of the list. Keep a busy
	// with another repository's build, so that the first build of
	// acme/pool goes to b; then the second build, with both idle again,
	// can only land on b by affinity.
	busy := pushTip(t, s, "acme/other", other.Head(), "other-1")
	waitFor(t, "the build of acme/other running on a", 60*time.Second, func() bool { return builders(t, s)[a.Addr].Running == 1 })
	first := pushCommit(t, s, pool, "acme/pool", 1, "sleep 1")
	if got := s.WaitBuild(first, 90*time.Second); got.Status != model.StatusSucceeded {
		t.Fatalf("first build: %s (%s)\n%s", got.Status, got.Error, s.Log(first))
	}
	// The registry cache is exported after the deploy hooks are queued,
	// which holds the daemon's slot a little past the build's end.
	waitFor(t, "b idle once the cache export after the first build ended", 30*time.Second, func() bool { return builders(t, s)[b.Addr].Running == 0 })
	wantBuilders(t, "after the first build", builders(t, s), map[string]api.BuilderState{
		a.Addr: {Addr: a.Addr, Healthy: true, Running: 1, LastBuiltRepos: 0},
		b.Addr: {Addr: b.Addr, Healthy: true, Running: 0, LastBuiltRepos: 1},
	})
	wantDaemons(t, s.Log(first), b.Addr)
	if code := s.Do("POST", "/api/v1/builds/"+busy+"/cancel", nil, nil); code != http.StatusAccepted {
		t.Fatalf("cancel the build of acme/other: HTTP %d", code)
	}
	if got := s.WaitBuild(busy, 30*time.Second); got.Status != model.StatusCancelled {
		t.Fatalf("build of acme/other: %s, want cancelled", got.Status)
	}
	waitFor(t, "a idle", 10*time.Second, func() bool { return builders(t, s)[a.Addr].Running == 0 })
	lap("first build, on b while a was busy")

	second := pushCommit(t, s, pool, "acme/pool", 2, "sleep 1")
	if got := s.WaitBuild(second, 90*time.Second); got.Status != model.StatusSucceeded || got.Attempts != 1 {
		t.Fatalf("second build: %s after %d attempts (%s), want succeeded after 1\n%s", got.Status, got.Attempts, got.Error, s.Log(second))
	}
	wantDaemons(t, s.Log(second), b.Addr)
	// The registry cache is exported after the deploy hooks are queued,
	// which holds the daemon's slot a little past the build's end.
	waitFor(t, "b idle once the cache export after the second build ended", 30*time.Second, func() bool { return builders(t, s)[b.Addr].Running == 0 })
	wantBuilders(t, "after the second build", builders(t, s), map[string]api.BuilderState{
		a.Addr: {Addr: a.Addr, Healthy: true, Running: 0, LastBuiltRepos: 0},
		b.Addr: {Addr: b.Addr, Healthy: true, Running: 0, LastBuiltRepos: 1},
	})
	lap("second build, on b again by affinity")

	third := pushCommit(t, s, pool, "acme/pool", 3, "sleep 6")
	waitFor(t, "the third build running on b", 60*time.Second, func() bool { return builders(t, s)[b.Addr].Running == 1 })
	waitFor(t, "the third build's RUN step", 60*time.Second, func() bool { return strings.Contains(s.Log(third), "RUN sleep 6") })
	b.Kill()
	killed := time.Now()
	lap("third build up to its RUN step on b")

	built := s.WaitBuild(third, 90*time.Second)
	t.Logf("third build ended %s, %s after kill -9 of b", built.Status, time.Since(killed).Round(100*time.Millisecond))
	log := s.Log(third)
	if built.Status != model.StatusSucceeded || built.Attempts != 2 || built.Error != "" || built.GaveUp {
		t.Fatalf("third build: %s after %d attempts (error %q, gave up %v), want succeeded after 2\n%s",
			built.Status, built.Attempts, built.Error, built.GaveUp, log)
	}
	wantDaemons(t, log, b.Addr, a.Addr)
	rig.Contains(t, "third build's log", log,
		"==> interrupted, the build will be retried: buildkit went away during the build: buildkit daemon gone: "+b.Addr,
		"==> pushed "+poolRepo.Image+"@"+built.Digest)
	if strings.Contains(log, "==> build failed") {
		t.Errorf("the third build's log says it failed, though it was retried:\n%s", log)
	}
	// Handed back for an immediate retry (the pool already took the dead
	// daemon out), not after the worker's retry delay (5 s) nor left for
	// JetStream to redeliver after the ack wait (30 s).
	retried := built.StartedAt.Sub(killed)
	t.Logf("second attempt started %s after the kill", retried.Round(100*time.Millisecond))
	if retried > 4*time.Second {
		t.Errorf("second attempt started %s after the kill, want within 4s", retried)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ref := range []string{poolRepo.Image + "@" + built.Digest, poolRepo.Image + ":latest"} {
		m, err := rig.FetchManifest(ctx, ref)
		if err != nil || m.Digest != built.Digest {
			t.Errorf("registry: %s is %q (%v), want %s", ref, m.Digest, err, built.Digest)
		}
	}
	// The registry cache is exported after the deploy hooks are queued,
	// which holds the daemon's slot a little past the build's end.
	waitFor(t, "a idle once the cache export after the third build ended", 30*time.Second, func() bool { return builders(t, s)[a.Addr].Running == 0 })
	down := builders(t, s)
	if got := down[b.Addr]; got.Healthy || got.Running != 0 || got.LastError == "" || got.LastBuiltRepos != 0 {
		t.Errorf("killed daemon b: %+v, want unhealthy, running 0, a last_error, 0 repositories", got)
	}
	t.Logf("b's last_error: %s", down[b.Addr].LastError)
	if got, want := down[a.Addr], (api.BuilderState{Addr: a.Addr, Healthy: true, Running: 0, LastBuiltRepos: 1}); got != want {
		t.Errorf("daemon a: %+v, want %+v", got, want)
	}
	code, ready := readyChecks(t, s)
	if code != http.StatusOK || ready["buildkit"] != "ok" || ready["buildkit "+a.Addr] != "ok" || !strings.HasPrefix(ready["buildkit "+b.Addr], "down: ") {
		t.Errorf("/readyz with b down: HTTP %d %v, want 200 with buildkit ok, a ok, b down: <error>", code, ready)
	}
	lap("retry on a and checks")

	b.Start()
	// Only the builders API is read here: /readyz pings every daemon
	// itself, and it is the pool's own health loop (every 5 s) that must
	// bring b back.
	back := waitFor(t, "b healthy again", 15*time.Second, func() bool { return builders(t, s)[b.Addr].Healthy })
	t.Logf("b reported healthy %s after its restart", back.Round(100*time.Millisecond))
	if code, ready := readyChecks(t, s); code != http.StatusOK || ready["buildkit "+b.Addr] != "ok" || ready["buildkit "+a.Addr] != "ok" {
		t.Errorf("/readyz after b's restart: HTTP %d %v, want 200 with both daemons ok", code, ready)
	}
	lap("restart of b until reported healthy")
}

// pushTip sends GitHub's push webhook for main at commit and returns the one
// build it queued.
func pushTip(t *testing.T, s *rig.Slipway, repo, commit, delivery string) string {
	t.Helper()
	r := rig.SendGitHub(t, s.URL(), "push", delivery, webhookSecret, rig.GitHubPush{Repo: repo, Ref: "refs/heads/main", After: commit}.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push %s of %s: %+v, want 202 with one build", commit, repo, r)
	}
	return r.Builds[0]
}

// pushCommit commits a Dockerfile whose RUN step is run and writes n to
// /x, so that no two commits share a cache entry, pushes it and sends the
// webhook.
func pushCommit(t *testing.T, s *rig.Slipway, src *rig.Repo, repo string, n int, run string) string {
	t.Helper()
	commit := src.Commit(fmt.Sprintf("commit %d", n), map[string]string{
		"Dockerfile": dockerfile(s.RegistryAddr, fmt.Sprintf("%s && echo %d > /x", run, n)),
	})
	src.Push("main")
	return pushTip(t, s, repo, commit, fmt.Sprintf("%s-%d", repo, n))
}

// builders reads GET /api/v1/builders by address; it fails unless it lists
// exactly the two daemons.
func builders(t *testing.T, s *rig.Slipway) map[string]api.BuilderState {
	t.Helper()
	var list []api.BuilderState
	if code := s.Do("GET", "/api/v1/builders", nil, &list); code != http.StatusOK || len(list) != 2 {
		t.Fatalf("GET /api/v1/builders: HTTP %d %+v, want 200 with two daemons", code, list)
	}
	out := map[string]api.BuilderState{}
	for _, d := range list {
		out[d.Addr] = d
	}
	return out
}

func wantBuilders(t *testing.T, when string, got, want map[string]api.BuilderState) {
	t.Helper()
	for addr, w := range want {
		if got[addr] != w {
			t.Errorf("%s: builder %+v, want %+v", when, got[addr], w)
		}
	}
}

// wantDaemons checks the daemons a build's log names, one "==> buildkit"
// line per attempt, in order.
func wantDaemons(t *testing.T, log string, want ...string) {
	t.Helper()
	var got []string
	for _, line := range strings.Split(log, "\n") {
		if addr, ok := strings.CutPrefix(line, "==> buildkit "); ok {
			got = append(got, addr)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("build ran on %v, want %v; log:\n%s", got, want, log)
	}
}

// readyChecks answers /readyz's code and its checks.
func readyChecks(t *testing.T, s *rig.Slipway) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(s.URL() + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]string{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("/readyz body %q: %v", raw, err)
	}
	return resp.StatusCode, out
}
