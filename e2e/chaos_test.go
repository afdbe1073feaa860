package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// branchRepo registers a repository that builds every branch under its own
// name, and returns it.
func branchRepo(t *testing.T, s *rig.Slipway, name, cloneURL string, hooks []model.Hook) model.Repo {
	t.Helper()
	var repo model.Repo
	code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: name, CloneURL: cloneURL, WebhookSecret: webhookSecret,
		Image: s.RegistryAddr + "/" + name, Hooks: hooks,
		Rules: []model.Rule{{SourceType: "branch", Source: "/.*/", Tags: []string{"{branch}"}}},
	}, &repo)
	if code != http.StatusCreated {
		t.Fatalf("register %s: HTTP %d", name, code)
	}
	return repo
}

// pushBranch sends GitHub's webhook for a branch's tip to base.
func pushBranch(t *testing.T, base, repo, branch, commit, delivery string) rig.HookResponse {
	t.Helper()
	body := rig.GitHubPush{Repo: repo, Ref: "refs/heads/" + branch, After: commit}.Payload()
	return rig.SendGitHub(t, base, "push", delivery, webhookSecret, body)
}

func waitFor(t *testing.T, what string, limit time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// 1. Workers killed with kill -9 mid-build, ten times: every build ends
// succeeded exactly once and its tag names its own commit.
func TestChaosWorkerKills(t *testing.T) {
	natsURL, natsCreds, _ := rig.StartNATS(t)
	reg := rig.StartRegistry(t)
	bkd := rig.StartBuildkitd(t)
	shared := []string{"SLIPWAY_BUILDKIT_ADDR=" + bkd, "SLIPWAY_ACK_WAIT=3s", "SLIPWAY_RECONCILE_INTERVAL=0s"}
	front := rig.StartSlipway(t, rig.Options{NATSURL: natsURL, NATSCreds: natsCreds, ExternalRegistry: reg.Addr, Env: append([]string{"SLIPWAY_WORKERS=0"}, shared...)})
	front.PushBusybox()
	recv := rig.StartReceiver(t, 0)
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "killed")
	src.Commit("base", map[string]string{"README": "killed\n"})
	repo := branchRepo(t, front, "acme/killed", src.CloneURL, []model.Hook{{URL: recv.URL, Secret: deploy.GenerateSecret()}})
	startWorker := func() *rig.Slipway {
		return rig.StartSlipway(t, rig.Options{Role: "worker", NATSURL: natsURL, NATSCreds: natsCreds, Env: append([]string{"SLIPWAY_WORKERS=2"}, shared...)})
	}
	const rounds = 10
	commits, builds, killedAt := make([]string, rounds), make([]string, rounds), make([]time.Time, rounds)
	w := startWorker()
	for i := range rounds {
		branch := fmt.Sprintf("k%02d", i)
		rig.Git(t, src.Dir, "checkout", "-q", "-B", branch, "main")
		commits[i] = src.Commit("round "+branch, map[string]string{"Dockerfile": dockerfile(reg.Addr, "echo round "+branch+" && sleep 4")})
		src.Push(branch)
		r := pushBranch(t, front.URL(), repo.FullName, branch, commits[i], "kill-"+branch)
		if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
			t.Fatalf("push %s: %+v", branch, r)
		}
		builds[i] = r.Builds[0]
		waitFor(t, "build "+branch+" running", 2*time.Minute, func() bool { return front.Build(builds[i]).Status == model.StatusRunning })
		w.Kill() // kill -9, mid-build
		killedAt[i] = time.Now()
		w = startWorker()
	}
	var recover []time.Duration
	for i, id := range builds {
		b := front.WaitBuild(id, 4*time.Minute)
		if b.Status != model.StatusSucceeded {
			t.Fatalf("build %d: %s %s", i, b.Status, b.Error)
		}
		if b.Attempts < 2 {
			t.Errorf("build %d was killed mid-build but records %d attempt(s)", i, b.Attempts)
		}
		if rev := labelOf(t, reg.Addr+"/acme/killed:"+fmt.Sprintf("k%02d", i)); rev != commits[i] {
			t.Errorf("tag k%02d names %s, want %s", i, rev, commits[i])
		}
		recover = append(recover, b.FinishedAt.Sub(killedAt[i]))
	}
	// Exactly once: one deploy notification per build, none twice.
	calls := recv.WaitCalls(t, rounds, time.Minute)
	time.Sleep(2 * time.Second)
	seen := map[string]int{}
	for _, c := range recv.Calls() {
		var p deploy.Payload
		_ = json.Unmarshal(c.Body, &p)
		seen[p.Build.ID]++
	}
	dups := 0
	for _, id := range builds {
		if seen[id] != 1 {
			dups += seen[id] - 1
			t.Errorf("build %s notified %d times, want once", id, seen[id])
		}
	}
	worst := slicesMax(recover)
	rig.Report("1. Worker killed with kill -9 mid-build, ten times",
		fmt.Sprintf("- kills: %d (each while its build was running; worker processes share NATS with `SLIPWAY_ACK_WAIT=3s`)", rounds),
		fmt.Sprintf("- builds: %d, succeeded: %d, lost: 0, duplicates: %d", rounds, rounds, dups),
		fmt.Sprintf("- deploy notifications: %d, one per build", len(calls)),
		"- every tag names its own commit (org.opencontainers.image.revision checked in the registry)",
		fmt.Sprintf("- time from kill to the build finished on another worker: worst %s", worst.Round(100*time.Millisecond)))
}

func slicesMax(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func labelOf(t *testing.T, ref string) string {
	t.Helper()
	labels, err := rig.Labels(context.Background(), ref, "linux/amd64")
	if err != nil {
		t.Fatalf("labels of %s: %v", ref, err)
	}
	return labels["org.opencontainers.image.revision"]
}

// 3. buildkitd killed mid-build: Slipway restarts it, reports unready
// meanwhile, and the build is retried and succeeds.
func TestChaosBuildkitdKilled(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_RECONCILE_INTERVAL=0s"}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "bkcrash")
	commit := src.Commit("slow", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo slow && sleep 5")})
	src.Push("main")
	repo := registerRepo(t, s, "acme/bkcrash", src.CloneURL, nil)
	r := pushBranch(t, s.URL(), repo.FullName, "main", commit, "bk-1")
	waitFor(t, "build running", time.Minute, func() bool { return s.Build(r.Builds[0]).Status == model.StatusRunning })
	time.Sleep(time.Second) // inside the RUN step
	old := buildkitdPid(t, s)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	unready := waitFor(t, "/readyz unready", 10*time.Second, func() bool { return readyz(s) == http.StatusServiceUnavailable })
	back := waitFor(t, "/readyz ready again", time.Minute, func() bool { return readyz(s) == http.StatusOK })
	b := s.WaitBuild(r.Builds[0], 3*time.Minute)
	if b.Status != model.StatusSucceeded || b.Attempts < 2 {
		t.Fatalf("build after buildkitd crash: %s attempts=%d %s\n%s", b.Status, b.Attempts, b.Error, s.Log(b.ID))
	}
	if now := buildkitdPid(t, s); now == old {
		t.Errorf("buildkitd pid unchanged (%d)", now)
	}
	rig.Report("3. buildkitd killed mid-build",
		"- buildkitd (supervised by `slipway serve`) killed with SIGKILL during a RUN step",
		fmt.Sprintf("- /readyz answered 503 after %s and 200 again %s later", unready.Round(10*time.Millisecond), back.Round(10*time.Millisecond)),
		fmt.Sprintf("- the build was retried (attempts: %d) and succeeded %s after the kill; lost: 0", b.Attempts, b.FinishedAt.Sub(killed).Round(100*time.Millisecond)))
}

func readyz(s *rig.Slipway) int {
	resp, err := http.Get(s.URL() + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func buildkitdPid(t *testing.T, s *rig.Slipway) int {
	t.Helper()
	var pid int
	waitFor(t, "buildkitd process", 30*time.Second, func() bool {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			n, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			raw, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			cmd := string(raw)
			if strings.Contains(cmd, "buildkitd") && strings.Contains(cmd, filepath.Join(s.DataDir, "buildkit")) {
				pid = n
				return true
			}
		}
		return false
	})
	return pid
}

// 6. A 3-node JetStream cluster (R3) with two webhook processes, two
// workers and an API process; the meta leader is killed mid-run and every
// accepted event is still built.
func TestChaosNATSNodeKilled(t *testing.T) {
	c := rig.StartNATSCluster(t, 3)
	reg := rig.StartRegistry(t)
	bkd := rig.StartBuildkitd(t)
	env := []string{"SLIPWAY_NATS_REPLICAS=3", "SLIPWAY_ACK_WAIT=5s", "SLIPWAY_BUILDKIT_ADDR=" + bkd, "SLIPWAY_RECONCILE_INTERVAL=0s"}
	start := func(role string, extra ...string) *rig.Slipway {
		return rig.StartSlipway(t, rig.Options{Role: role, NATSURL: c.URL(), ExternalRegistry: reg.Addr, Env: append(append([]string{}, env...), extra...)})
	}
	apiProc := start("api")
	hooks := []*rig.Slipway{start("webhook"), start("webhook")}
	start("worker", "SLIPWAY_WORKERS=2")
	start("worker", "SLIPWAY_WORKERS=2")
	apiProc.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "clustered")
	commit := src.Commit("one image", map[string]string{"Dockerfile": dockerfile(reg.Addr, "echo clustered")})
	const events = 30
	for i := range events {
		rig.Git(t, src.Dir, "branch", "-f", fmt.Sprintf("c%02d", i), "main")
	}
	rig.Git(t, src.Dir, "push", "-q", "origin", "--all")
	repo := branchRepo(t, apiProc, "acme/clustered", src.CloneURL, nil)

	var killedNode string
	var worstRetry time.Duration
	accepted := map[string]string{} // build id → branch
	for i := range events {
		if i == events/2 {
			for _, srv := range c.Servers {
				if srv.JetStreamIsLeader() {
					killedNode = srv.Name()
					srv.Shutdown()
					break
				}
			}
		}
		branch := fmt.Sprintf("c%02d", i)
		// Like a Git host's redelivery, the same delivery is sent again
		// until it is accepted.
		began := time.Now()
		for {
			r := pushBranch(t, hooks[i%2].URL(), repo.FullName, branch, commit, "cluster-"+branch)
			if r.Code == http.StatusAccepted && len(r.Builds) == 1 {
				accepted[r.Builds[0]] = branch
				break
			}
			if time.Since(began) > time.Minute {
				t.Fatalf("event %s not accepted within a minute: %+v", branch, r)
			}
			time.Sleep(250 * time.Millisecond)
		}
		worstRetry = max(worstRetry, time.Since(began))
	}
	if killedNode == "" {
		t.Fatal("no meta leader found to kill")
	}
	built := 0
	for id, branch := range accepted {
		b := apiProc.WaitBuild(id, 4*time.Minute)
		if b.Status != model.StatusSucceeded {
			t.Errorf("build of %s: %s %s", branch, b.Status, b.Error)
			continue
		}
		built++
	}
	if built != events {
		t.Fatalf("built %d of %d accepted events", built, events)
	}
	rig.Report("6. 3-node JetStream cluster, one node killed",
		"- topology: 3 NATS nodes (R3 streams and buckets), 2 `slipway webhook`, 2 `slipway worker`, 1 `slipway api`, all on loopback",
		fmt.Sprintf("- meta leader %s shut down after %d of %d events", killedNode, events/2, events),
		fmt.Sprintf("- events accepted: %d, built: %d, lost: 0", len(accepted), built),
		fmt.Sprintf("- longest wait for a 2xx while the cluster elected a new leader: %s", worstRetry.Round(10*time.Millisecond)))
}

// 8. A webhook that never arrives: reconciliation finds the new tip and
// builds it.
func TestChaosLostWebhookReconciled(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_RECONCILE_INTERVAL=2s"}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "missed")
	first := src.Commit("announced", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo one")})
	src.Push("main")
	repo := registerRepo(t, s, "acme/missed", src.CloneURL, nil)
	r := pushBranch(t, s.URL(), repo.FullName, "main", first, "missed-1")
	if b := s.WaitBuild(r.Builds[0], 2*time.Minute); b.Status != model.StatusSucceeded {
		t.Fatalf("first build: %s", b.Status)
	}
	missed := src.Commit("never announced", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo two")})
	src.Push("main") // and no webhook
	pushed := time.Now()
	var found model.Build
	waitFor(t, "a build of the missed commit", time.Minute, func() bool {
		var builds []model.Build
		s.Do("GET", "/api/v1/builds?repo="+repo.ID, nil, &builds)
		for _, b := range builds {
			if b.Commit == missed {
				found = b
				return true
			}
		}
		return false
	})
	b := s.WaitBuild(found.ID, 2*time.Minute)
	if b.Status != model.StatusSucceeded || b.Trigger != "reconcile" {
		t.Fatalf("reconciled build: %s trigger=%s %s", b.Status, b.Trigger, b.Error)
	}
	if rev := labelOf(t, repo.Image+":latest"); rev != missed {
		t.Errorf("latest names %s, want the missed tip %s", rev, missed)
	}
	var builds []model.Build
	s.Do("GET", "/api/v1/builds?repo="+repo.ID, nil, &builds)
	per := map[string]int{}
	for _, b := range builds {
		per[b.Commit]++
	}
	if per[missed] != 1 {
		t.Errorf("%d builds of the missed commit, want 1 (reconcilers must not repeat)", per[missed])
	}
	rig.Report("8. A webhook lost on purpose",
		"- a commit pushed to main with no webhook; `SLIPWAY_RECONCILE_INTERVAL=2s`",
		fmt.Sprintf("- reconciliation built it (trigger `reconcile`, one build) and `latest` named it %s after the push", b.FinishedAt.Sub(pushed).Round(100*time.Millisecond)),
		"- missed pushes: 1, built: 1, lost: 0")
}

// SIGTERM lets a running build finish within the grace period; past it the
// build is handed back and finishes after the restart.
func TestChaosGracefulShutdown(t *testing.T) {
	for _, tc := range []struct {
		grace    string
		finishes bool
	}{{"60s", true}, {"1s", false}} {
		t.Run("grace "+tc.grace, func(t *testing.T) {
			s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_SHUTDOWN_GRACE=" + tc.grace, "SLIPWAY_RECONCILE_INTERVAL=0s"}})
			s.PushBusybox()
			git := rig.StartGitServer(t)
			src := git.NewRepo(t, "graceful")
			commit := src.Commit("slow", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo slow && sleep 4")})
			src.Push("main")
			repo := registerRepo(t, s, "acme/graceful", src.CloneURL, nil)
			r := pushBranch(t, s.URL(), repo.FullName, "main", commit, "grace-1")
			waitFor(t, "build running", time.Minute, func() bool { return s.Build(r.Builds[0]).Status == model.StatusRunning })
			began := time.Now()
			s.Stop()
			stopped := time.Since(began)
			s.Restart("SLIPWAY_RECONCILE_INTERVAL=0s")
			b := s.Build(r.Builds[0])
			if tc.finishes && b.Status != model.StatusSucceeded {
				t.Fatalf("with grace %s the running build must finish before exit, it is %s (%s)\n%s", tc.grace, b.Status, b.Error, s.Log(b.ID))
			}
			if !tc.finishes && model.Terminal(b.Status) {
				t.Fatalf("with grace %s the build must be handed back, it is %s", tc.grace, b.Status)
			}
			b = s.WaitBuild(r.Builds[0], 2*time.Minute)
			if b.Status != model.StatusSucceeded {
				t.Fatalf("%s %s", b.Status, b.Error)
			}
			mu.Lock()
			graceNotes = append(graceNotes, fmt.Sprintf("- `SLIPWAY_SHUTDOWN_GRACE=%s`: SIGTERM during a build, exit after %s, build %s, attempts %d",
				tc.grace, stopped.Round(100*time.Millisecond), map[bool]string{true: "finished before exit", false: "handed back and finished after the restart"}[tc.finishes], b.Attempts))
			mu.Unlock()
		})
	}
	rig.Report("9. Graceful shutdown", graceNotes...)
}

var (
	mu         sync.Mutex
	graceNotes []string
)

// A webhook that arrives while NATS cannot store it is answered 503, never
// 2xx, and fast enough for the Git host to see the failure.
func TestChaosNATSDownAnswers503(t *testing.T) {
	natsURL, natsCreds, stopNATS := rig.StartNATS(t)
	s := rig.StartSlipway(t, rig.Options{NATSURL: natsURL, NATSCreds: natsCreds, Env: []string{"SLIPWAY_WORKERS=0", "SLIPWAY_RECONCILE_INTERVAL=0s"}})
	repo := registerRepo(t, s, "acme/natsdown", "http://127.0.0.1:1/natsdown.git", nil)
	stopNATS()
	began := time.Now()
	r := pushBranch(t, s.URL(), repo.FullName, "main", strings.Repeat("a", 40), "natsdown-1")
	took := time.Since(began)
	if r.Code != http.StatusServiceUnavailable {
		t.Fatalf("with NATS down the webhook must be refused with 503, got %+v", r)
	}
	if took > 10*time.Second {
		t.Errorf("answered after %s; GitHub gives up after 10s", took)
	}
	rig.Report("10. NATS unreachable when a webhook arrives",
		fmt.Sprintf("- the webhook was answered 503 after %s (GitHub waits 10 s), never 2xx: nothing was accepted that could be lost", took.Round(10*time.Millisecond)))
}
