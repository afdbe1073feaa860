package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// rssMB reads a process's resident memory (VmRSS) or its peak so far
// (VmHWM) from /proc, in MB.
func rssMB(t *testing.T, pid int, field string) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc/%d/status: %v", pid, err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatalf("parse %s %q: %v", field, line, err)
			}
			return kb / 1024
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// floodBody is a 23 MB payload that names a registered repository, so
// every request gets as far as its signature check.
func floodBody(repo string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"ref":"refs/heads/main","repository":{"full_name":"` + repo + `"},"pad":"`)
	b.Write(bytes.Repeat([]byte("x"), 23<<20))
	b.WriteString(`"}`)
	return b.Bytes()
}

// postForged posts body to /hooks/github signed with the wrong secret and
// answers the status, or 0 when the server closed the connection on a body
// it would not read.
func postForged(url string, body []byte, delivery string) int {
	req, err := http.NewRequest("POST", url+"/hooks/github", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("ab", 32))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Sixteen clients posting 23 MB bodies with bad signatures, four times
// each, neither exhaust memory nor keep webhooks from being answered.
func TestIngestFloodOfForgedBodies(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_RECONCILE_INTERVAL=0s"}})
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "flood")
	commit := src.Commit("flood", map[string]string{"README": "flood\n"})
	src.Push("main")
	registerRepo(t, s, "acme/flood", src.CloneURL, nil)
	pid := s.Pid()
	before := rssMB(t, pid, "VmRSS")
	body := floodBody("acme/flood")

	var mu sync.Mutex
	codes := map[int]int{}
	var flooding atomic.Bool
	flooding.Store(true)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer flooding.Store(false)
		rig.InParallel(16, 64, func(i int) {
			code := postForged(s.URL(), body, fmt.Sprintf("forged-%d", i))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}()
	// A genuine webhook is answered while the flood goes on: a push of a
	// branch no rule builds is accepted with no builds.
	var during []int
	for i := 0; flooding.Load() && i < 20; i++ {
		start := time.Now()
		r := pushBranch(t, s.URL(), "acme/flood", "side", commit, fmt.Sprintf("genuine-%d", i))
		if r.Code != http.StatusAccepted && r.Code != http.StatusServiceUnavailable {
			t.Errorf("genuine webhook during the flood: HTTP %d %s", r.Code, r.Error)
		}
		during = append(during, r.Code)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("genuine webhook during the flood took %s", d)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	peak := rssMB(t, pid, "VmHWM")
	if !slices.Contains(during, http.StatusAccepted) {
		t.Errorf("no genuine webhook was accepted during the flood: %v", during)
	}
	if codes[http.StatusAccepted] != 0 || codes[http.StatusOK] != 0 {
		t.Errorf("forged bodies were accepted: %v", codes)
	}
	after := pushBranch(t, s.URL(), "acme/flood", "side", commit, "genuine-after")
	if after.Code != http.StatusAccepted {
		t.Errorf("genuine webhook after the flood: HTTP %d %s", after.Code, after.Error)
	}
	settled := 0
	took := waitFor(t, "resident memory below 300 MB", time.Minute, func() bool {
		settled = rssMB(t, pid, "VmRSS")
		return settled < 300
	})
	// Freed heap goes back to the system a second after the last large
	// body (webhook/body.go); this shows how far.
	time.Sleep(5 * time.Second)
	later := rssMB(t, pid, "VmRSS")
	t.Logf("flood of 64 forged 23 MB bodies, 16 at once: answers %v; genuine answers during it %v", codes, during)
	t.Logf("resident memory: %d MB before, peak %d MB, %d MB %s after the flood, %d MB 5 s later", before, peak, settled, took.Round(time.Second), later)
}

// A push's body replayed under a new delivery id, after a newer push of the
// ref, builds nothing, cancels nothing, and `latest` stays at the newer
// commit.
func TestIngestReplayedOldPush(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_RECONCILE_INTERVAL=0s"}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "replay")
	commitA := src.Commit("A", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo A > /built.txt")})
	src.Push("main")
	repo := registerRepo(t, s, "acme/replay", src.CloneURL, nil)
	bodyA := rig.GitHubPush{Repo: repo.FullName, Ref: "refs/heads/main", After: commitA}.Payload()
	a := rig.SendGitHub(t, s.URL(), "push", "replay-a", webhookSecret, bodyA)
	if a.Code != http.StatusAccepted || len(a.Builds) != 1 {
		t.Fatalf("push A: %+v", a)
	}
	if b := s.WaitBuild(a.Builds[0], 3*time.Minute); b.Status != model.StatusSucceeded {
		t.Fatalf("build of A: %s %s", b.Status, b.Error)
	}
	commitB := src.Commit("B", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo B > /built.txt && sleep 6")})
	src.Push("main")
	b := pushBranch(t, s.URL(), repo.FullName, "main", commitB, "replay-b")
	if b.Code != http.StatusAccepted || len(b.Builds) != 1 {
		t.Fatalf("push B: %+v", b)
	}
	waitFor(t, "build of B running", 2*time.Minute, func() bool { return s.Build(b.Builds[0]).Status == model.StatusRunning })

	// A's signed body again, under a delivery id never seen, while B builds.
	replay := rig.SendGitHub(t, s.URL(), "push", "replay-a-again", webhookSecret, bodyA)
	if replay.Code != http.StatusAccepted || !slices.Equal(replay.Builds, a.Builds) {
		t.Fatalf("replayed A: HTTP %d builds %v, want 202 naming %v", replay.Code, replay.Builds, a.Builds)
	}
	built := s.WaitBuild(b.Builds[0], 3*time.Minute)
	if built.Status != model.StatusSucceeded || built.CancelRequested {
		t.Fatalf("build of B after the replay: %s (cancel requested %v) %s", built.Status, built.CancelRequested, built.Error)
	}
	if old := s.Build(a.Builds[0]); old.Status != model.StatusSucceeded || old.Attempts != 1 {
		t.Errorf("build of A after the replay: %s, %d attempts; want succeeded once", old.Status, old.Attempts)
	}
	var all []model.Build
	s.Do("GET", "/api/v1/builds?repo="+repo.ID, nil, &all)
	if len(all) != 2 {
		t.Errorf("%d builds, want 2 (A and B): %+v", len(all), all)
	}
	if rev := labelOf(t, repo.Image+":latest"); rev != commitB {
		t.Errorf("latest names %s, want B %s", rev, commitB)
	}
}

// An older commit of the ref that Slipway never saw pushed, announced after
// a newer push was built (a delivery that failed during an outage and is
// redelivered days later): it builds, but moves no tag back.
func TestIngestLateAncestorPushMovesNoTag(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_RECONCILE_INTERVAL=0s"}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "late")
	w := src.Commit("W", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo W > /built.txt")})
	x := src.Commit("X", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo X > /built.txt")})
	y := src.Commit("Y", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo Y > /built.txt")})
	src.Push("main")
	var repo model.Repo
	if code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: "acme/late", CloneURL: src.CloneURL, WebhookSecret: webhookSecret,
		Image: s.RegistryAddr + "/acme/late",
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest", "{short_sha}"}}},
	}, &repo); code != http.StatusCreated {
		t.Fatalf("register: HTTP %d", code)
	}
	newer := rig.SendGitHub(t, s.URL(), "push", "late-y", webhookSecret,
		rig.GitHubPush{Repo: repo.FullName, Ref: "refs/heads/main", Before: w, After: y}.Payload())
	if by := s.WaitBuild(newer.Builds[0], 3*time.Minute); by.Status != model.StatusSucceeded {
		t.Fatalf("build of Y: %s %s", by.Status, by.Error)
	}

	// X's push, W → X, arrives only now.
	late := rig.SendGitHub(t, s.URL(), "push", "late-x", webhookSecret,
		rig.GitHubPush{Repo: repo.FullName, Ref: "refs/heads/main", Before: w, After: x}.Payload())
	if late.Code != http.StatusAccepted || len(late.Builds) != 1 || late.Builds[0] == newer.Builds[0] {
		t.Fatalf("late push of X: %+v", late)
	}
	bx := s.WaitBuild(late.Builds[0], 3*time.Minute)
	if bx.Status != model.StatusSucceeded || !slices.Equal(bx.SkippedTags, []string{"latest"}) {
		t.Fatalf("build of X: %s, skipped tags %v; want succeeded with latest left alone\n%s", bx.Status, bx.SkippedTags, s.Log(bx.ID))
	}
	rig.Contains(t, "X's log", s.Log(bx.ID), "left "+repo.Image+":latest alone: it names "+y[:7]+", which "+x[:7]+" is an ancestor of")
	if rev := labelOf(t, repo.Image+":latest"); rev != y {
		t.Errorf("latest names %s, want Y %s", rev, y)
	}
	if rev := labelOf(t, repo.Image+":"+x[:7]); rev != x {
		t.Errorf("%s names %s, want X itself", x[:7], rev)
	}

	// A forced push back to W, Y → W: the push itself says the branch went
	// back, so latest follows it although W is Y's ancestor.
	back := rig.SendGitHub(t, s.URL(), "push", "late-back", webhookSecret,
		rig.GitHubPush{Repo: repo.FullName, Ref: "refs/heads/main", Before: y, After: w}.Payload())
	if back.Code != http.StatusAccepted || len(back.Builds) != 1 {
		t.Fatalf("forced push back to W: %+v", back)
	}
	if bw := s.WaitBuild(back.Builds[0], 3*time.Minute); bw.Status != model.StatusSucceeded || len(bw.SkippedTags) != 0 {
		t.Fatalf("build of W: %s, skipped tags %v; want succeeded with every tag moved\n%s", bw.Status, bw.SkippedTags, s.Log(bw.ID))
	}
	if rev := labelOf(t, repo.Image+":latest"); rev != w {
		t.Errorf("after the forced push back, latest names %s, want W %s", rev, w)
	}
}
