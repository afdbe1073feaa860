package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// Fault tests under load: many queued events, an outage of the registry and
// of a deploy-hook receiver, a flood of duplicated webhooks. Each counts what
// it sent and what Slipway recorded, and reports the figures to
// RELIABILITY.md.

// loadBuilds lists the builds of a repository, or every build when repoID is
// empty.
func loadBuilds(t *testing.T, s *rig.Slipway, repoID string) []model.Build {
	t.Helper()
	return s.Builds(repoID)
}

// loadWaitFinal polls the build list until at least want builds are listed
// and every one of them is final.
func loadWaitFinal(t *testing.T, s *rig.Slipway, repoID string, want int, limit, every time.Duration) []model.Build {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		bs := loadBuilds(t, s, repoID)
		counts := loadCount(bs)
		if len(bs) >= want && counts[model.StatusQueued]+counts[model.StatusRunning] == 0 {
			return bs
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d builds listed (want %d), by status %v", limit, len(bs), want, counts)
		}
		time.Sleep(every)
	}
}

func loadCount(bs []model.Build) map[string]int {
	out := map[string]int{}
	for _, b := range bs {
		out[b.Status]++
	}
	return out
}

func loadRegisterBranchRepo(t *testing.T, s *rig.Slipway, fullName, cloneURL string) model.Repo {
	t.Helper()
	var repo model.Repo
	code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: fullName, CloneURL: cloneURL, WebhookSecret: webhookSecret,
		Image: s.RegistryAddr + "/" + fullName,
		Rules: []model.Rule{{SourceType: "branch", Source: "/.*/", Tags: []string{"{branch}"}}},
	}, &repo)
	if code != http.StatusCreated {
		t.Fatalf("register %s: HTTP %d", fullName, code)
	}
	return repo
}

func loadSleepUntil(at time.Time) {
	if d := time.Until(at); d > 0 {
		time.Sleep(d)
	}
}

// loadShort cuts a long error for a report line.
func loadShort(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func loadRound(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }

// 2. 200 push events accepted by a Slipway without workers, then kill -9:
// the restarted process builds every one of them exactly once.
func TestChaosRestart200(t *testing.T) {
	const n = 200
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_WORKERS=0"}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "fanout")
	commit := src.Commit("one commit on 200 branches", map[string]string{
		"Dockerfile": dockerfile(s.RegistryAddr, "echo fanout > /built.txt"),
		"app.txt":    "fan out\n",
	})
	branches := make([]string, n)
	for i := range branches {
		branches[i] = fmt.Sprintf("b%03d", i+1)
		rig.Git(t, src.Dir, "branch", branches[i])
	}
	// Only the 200 announced branches reach the server: a main branch no
	// webhook named would rightly be built by reconciliation after the
	// restart, and this test counts webhook events.
	rig.Git(t, src.Dir, "checkout", "-q", branches[0])
	rig.Git(t, src.Dir, "branch", "-q", "-D", "main")
	rig.Git(t, src.Dir, "push", "-q", "origin", "--all")
	repo := loadRegisterBranchRepo(t, s, "acme/fanout", src.CloneURL)

	answered := make([]rig.HookResponse, n)
	errs := make([]error, n)
	sendStart := time.Now()
	rig.InParallel(20, n, func(i int) {
		body := rig.GitHubPush{Repo: repo.FullName, CloneURL: src.CloneURL, Ref: "refs/heads/" + branches[i],
			After: commit, Message: "one commit on 200 branches", Files: []string{"Dockerfile", "app.txt"}}.Payload()
		answered[i], errs[i] = rig.PostGitHub(s.URL(), "push", "fanout-"+branches[i], webhookSecret, body)
	})
	sendTime := time.Since(sendStart)
	buildOf := map[string]string{} // build id → branch
	for i, r := range answered {
		if errs[i] != nil {
			t.Fatalf("webhook %s: %v", branches[i], errs[i])
		}
		if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
			t.Fatalf("webhook %s: %+v", branches[i], r)
		}
		if prev, dup := buildOf[r.Builds[0]]; dup {
			t.Fatalf("branches %s and %s got the same build %s", prev, branches[i], r.Builds[0])
		}
		buildOf[r.Builds[0]] = branches[i]
	}
	queued := loadBuilds(t, s, repo.ID)
	if c := loadCount(queued); len(queued) != n || c[model.StatusQueued] != n {
		t.Fatalf("before the kill: %d builds, by status %v; want %d queued", len(queued), c, n)
	}

	s.Kill() // kill -9 with 200 events queued
	restartAt := time.Now()
	s.Restart("SLIPWAY_WORKERS=4")
	readyAfter := time.Since(restartAt)
	final := loadWaitFinal(t, s, repo.ID, n, 10*time.Minute, 2*time.Second)

	counts := loadCount(final)
	seenBranch := map[string]int{}
	var lastFinish time.Time
	attempts, extra := 0, 0
	for _, b := range final {
		branch, ok := buildOf[b.ID]
		if !ok {
			extra++
			t.Errorf("build %s (%s %s, trigger %s) was not answered to any webhook", b.ID, b.Ref, b.Status, b.Trigger)
			continue
		}
		seenBranch[branch]++
		if b.Ref != "refs/heads/"+branch || b.Commit != commit {
			t.Errorf("build %s: ref %s commit %s, want refs/heads/%s %s", b.ID, b.Ref, b.Commit, branch, commit)
		}
		if b.Status != model.StatusSucceeded {
			t.Errorf("build %s (%s): %s %s", b.ID, branch, b.Status, b.Error)
		}
		if b.FinishedAt != nil && b.FinishedAt.After(lastFinish) {
			lastFinish = *b.FinishedAt
		}
		attempts += b.Attempts
	}
	lost, dups := 0, 0
	for _, br := range branches {
		switch c := seenBranch[br]; {
		case c == 0:
			lost++
			t.Errorf("branch %s: its build is lost", br)
		case c > 1:
			dups += c - 1
			t.Errorf("branch %s: %d builds", br, c)
		}
	}
	if len(final) != n || counts[model.StatusSucceeded] != n {
		t.Errorf("after the restart: %d builds, by status %v; want %d succeeded", len(final), counts, n)
	}
	// Every tag, in the registry, at the digest the API reports.
	tagged := 0
	ctx := context.Background()
	for _, b := range final {
		branch := buildOf[b.ID]
		if branch == "" {
			continue
		}
		m, err := rig.FetchManifest(ctx, repo.Image+":"+branch)
		if err != nil {
			t.Errorf("tag %s: %v", branch, err)
			continue
		}
		if m.Digest != b.Digest {
			t.Errorf("tag %s at %s, build %s reports %s", branch, m.Digest, b.ID, b.Digest)
			continue
		}
		tagged++
	}
	if t.Failed() {
		return
	}
	allDone := lastFinish.Sub(restartAt)
	rig.Report("2. slipway serve killed with 200 events queued",
		fmt.Sprintf("- events: %d signed GitHub push webhooks (one commit, branches b001…b200), sent 20 at a time in %s, all answered 202 by a `slipway serve` with `SLIPWAY_WORKERS=0`", n, loadRound(sendTime)),
		fmt.Sprintf("- builds queued before the kill: %d", len(queued)),
		"- kills: 1 (`kill -9` of `slipway serve` with its embedded NATS, registry and buildkitd), restarted on the same data dir with `SLIPWAY_WORKERS=4`",
		fmt.Sprintf("- builds after the restart: %d, succeeded: %d, lost: %d, duplicates: %d, unexpected: %d", len(final), counts[model.StatusSucceeded], lost, dups, extra),
		fmt.Sprintf("- build attempts: %d for %d builds", attempts, n),
		fmt.Sprintf("- registry: %d of %d tags bNNN present at the digest the API reports", tagged, n),
		fmt.Sprintf("- time from restart to ready: %s; from restart to all %d builds done: %s", loadRound(readyAfter), n, loadRound(allDone)))
}

// 4. The registry goes away while a build runs: the build waits it out
// within SLIPWAY_REGISTRY_RETRY and succeeds; when the outage outlasts the
// budget the build fails with an error naming the registry, and is kept.
func TestChaosRegistry(t *testing.T) {
	reg := rig.StartRegistry(t)
	regDown := false
	t.Cleanup(func() {
		if regDown {
			reg.Start()
		}
	})
	s := rig.StartSlipway(t, rig.Options{ExternalRegistry: reg.Addr,
		Env: []string{"SLIPWAY_REGISTRY_RETRY=90s", "SLIPWAY_RECONCILE_INTERVAL=0s"}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "regout")
	repo := registerRepo(t, s, "acme/regout", src.CloneURL, nil)

	// (a) A 30 s outage in the middle of a build.
	c1 := src.Commit("slow build", map[string]string{"Dockerfile": dockerfile(reg.Addr, "echo building && sleep 3")})
	src.Push("main")
	r := rig.SendGitHub(t, s.URL(), "push", "regout-1", webhookSecret,
		rig.GitHubPush{Repo: repo.FullName, Ref: "refs/heads/main", After: c1, Message: "slow build"}.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push: %+v", r)
	}
	id := r.Builds[0]
	deadline := time.Now().Add(3 * time.Minute)
	for s.Build(id).Status != model.StatusRunning {
		if b := s.Build(id); model.Terminal(b.Status) || time.Now().After(deadline) {
			t.Fatalf("build never seen running: %s %s", b.Status, b.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
	reg.Stop()
	regDown = true
	downAt := time.Now()
	const outage = 30 * time.Second
	var retrying *time.Time
	retryErr := ""
	for time.Since(downAt) < outage {
		b := s.Build(id)
		if model.Terminal(b.Status) {
			t.Fatalf("build ended %s during a %s outage with a 90s budget: %s", b.Status, outage, b.Error)
		}
		if b.RetryingSince != nil {
			retrying = b.RetryingSince
		}
		if strings.Contains(b.Error, "unreachable") {
			retryErr = b.Error
		}
		time.Sleep(500 * time.Millisecond)
	}
	reg.Start()
	regDown = false
	upAt := time.Now()
	b := s.WaitBuild(id, 4*time.Minute)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("after the registry came back: %s %s\n%s", b.Status, b.Error, s.Log(id))
	}
	if retrying == nil || retryErr == "" {
		t.Errorf("the wait for the registry was not visible in the API: retrying_since %v, error %q", retrying, retryErr)
	} else if !strings.HasPrefix(retryErr, "retrying: registry "+reg.Addr+" unreachable") {
		t.Errorf("retry error %q does not name the registry", retryErr)
	}
	log := s.Log(id)
	tries := strings.Count(log, "==> clone ")
	if tries < 2 {
		t.Errorf("the log shows %d tries, want the build retried:\n%s", tries, log)
	}
	rig.Contains(t, "build log", log, "unreachable", "==> pushed")
	m, err := rig.FetchManifest(context.Background(), repo.Image+":latest")
	if err != nil || m.Digest != b.Digest {
		t.Fatalf("registry latest %s (%v), build digest %s", m.Digest, err, b.Digest)
	}
	recoverAfter := b.FinishedAt.Sub(upAt)
	outageLen := upAt.Sub(downAt)

	// (b) The registry is down for the whole build and the budget is 10 s.
	s.Stop()
	s.Restart("SLIPWAY_REGISTRY_RETRY=10s", "SLIPWAY_RECONCILE_INTERVAL=0s")
	reg.Stop()
	regDown = true
	down2 := time.Now()
	c2 := src.Commit("the registry is gone", map[string]string{"Dockerfile": dockerfile(reg.Addr, "echo second > /built.txt")})
	src.Push("main")
	r2 := rig.SendGitHub(t, s.URL(), "push", "regout-2", webhookSecret,
		rig.GitHubPush{Repo: repo.FullName, Ref: "refs/heads/main", Before: c1, After: c2, Message: "the registry is gone"}.Payload())
	if r2.Code != http.StatusAccepted || len(r2.Builds) != 1 {
		t.Fatalf("push: %+v", r2)
	}
	fb := s.WaitBuild(r2.Builds[0], 4*time.Minute)
	failedAfter := fb.FinishedAt.Sub(down2)
	if fb.Status != model.StatusFailed || !strings.Contains(fb.Error, "registry") || !strings.Contains(fb.Error, "unreachable") {
		t.Errorf("with the registry down for good: %s %q, want failed naming the unreachable registry", fb.Status, fb.Error)
	}
	listed := loadBuilds(t, s, repo.ID)
	byID := map[string]model.Build{}
	for _, lb := range listed {
		byID[lb.ID] = lb
	}
	if len(listed) != 2 || byID[id].Status != model.StatusSucceeded || byID[fb.ID].Status != model.StatusFailed {
		t.Errorf("build list: %d builds %v, want the succeeded and the failed one", len(listed), loadCount(listed))
	}
	reg.Start()
	regDown = false
	// The registry is back with what it held; the failed build moved nothing.
	m, err = rig.FetchManifest(context.Background(), repo.Image+":latest")
	if err != nil || m.Digest != b.Digest {
		t.Errorf("after the second outage latest is %s (%v), want %s", m.Digest, err, b.Digest)
	}
	if t.Failed() {
		return
	}
	rig.Report("4. Registry unreachable during a push",
		fmt.Sprintf("- (a) registry stopped while the build was running, kept down %s, `SLIPWAY_REGISTRY_RETRY=90s`", loadRound(outageLen)),
		fmt.Sprintf("- the build was run %d times (clones in its log) while it waited, counted as %d attempt; the API showed it waiting: `retrying_since` set, error %q", tries, b.Attempts, loadShort(retryErr, 110)),
		fmt.Sprintf("- result: succeeded, digest %s is `latest` in the registry; %s from the registry's return to the build finished", b.Digest[:19]+"…", loadRound(recoverAfter)),
		fmt.Sprintf("- (b) registry down for the whole build after a restart with `SLIPWAY_REGISTRY_RETRY=10s`: failed after %s with %q", loadRound(failedAfter), loadShort(fb.Error, 110)),
		"- builds: 2, succeeded: 1, failed: 1 (the outage outlived its budget), lost: 0; the failed build is listed and final, and `latest` stayed at the last good image")
}

// 5. A deploy-hook receiver away for minutes, with a Slipway restart in
// between: the delivery is retried on schedule across the restart and
// arrives once the receiver is back; a manual redelivery sends it once more
// under the same webhook-id.
func TestChaosDeployReceiver(t *testing.T) {
	const schedule = "SLIPWAY_HOOK_SCHEDULE=0s,5s,10s,20s,30s,30s,30s,30s,30s,30s,30s"
	const downFor = 150 * time.Second // from the build's end, so from the first attempt
	recv := rig.NewSwitchReceiver(t)  // down from the start
	s := rig.StartSlipway(t, rig.Options{Env: []string{schedule}})
	s.PushBusybox()
	secret := deploy.GenerateSecret()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "hookdown")
	commit := src.Commit("deploy me", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo deploy-me > /built.txt")})
	src.Push("main")
	repo := registerRepo(t, s, "acme/hookdown", src.CloneURL, []model.Hook{{URL: recv.URL + "/deploy", Secret: secret}})
	r := rig.SendGitHub(t, s.URL(), "push", "hookdown-1", webhookSecret,
		rig.GitHubPush{Repo: repo.FullName, Ref: "refs/heads/main", After: commit, Message: "deploy me"}.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push: %+v", r)
	}
	id := r.Builds[0]
	b := s.WaitBuild(id, 5*time.Minute)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("build: %s %s", b.Status, b.Error)
	}
	builtAt := *b.FinishedAt

	attemptsOf := func() model.Delivery {
		t.Helper()
		d := s.Build(id).Deliveries
		if len(d) != 1 {
			t.Fatalf("build has %d deliveries, want 1", len(d))
		}
		return d[0]
	}
	// Restart Slipway about a minute into the outage.
	loadSleepUntil(builtAt.Add(60 * time.Second))
	beforeStop := len(attemptsOf().Attempts)
	if beforeStop < 2 {
		t.Fatalf("a minute into the outage only %d attempts are recorded", beforeStop)
	}
	stopAt := time.Now()
	s.Stop()
	restartAt := time.Now()
	s.Restart(schedule)
	stopTook, restartTook := restartAt.Sub(stopAt), time.Since(restartAt)

	loadSleepUntil(builtAt.Add(downFor))
	if n := len(recv.Calls()); n != 0 {
		t.Fatalf("a receiver that is down got %d calls", n)
	}
	recv.Up()
	upAt := time.Now()
	calls := recv.WaitCalls(t, 1, 2*time.Minute)
	first := calls[0]
	if err := deploy.Verify(secret, first.Header, first.Body, 5*time.Minute, time.Now()); err != nil {
		t.Errorf("deploy webhook signature: %v", err)
	}
	var d model.Delivery
	deadline := time.Now().Add(30 * time.Second)
	for d = attemptsOf(); d.Status != "delivered"; d = attemptsOf() {
		if time.Now().After(deadline) {
			t.Fatalf("delivery not recorded as delivered: %+v", d)
		}
		time.Sleep(200 * time.Millisecond)
	}
	failed, afterRestart := 0, 0
	for i, a := range d.Attempts {
		last := i == len(d.Attempts)-1
		switch {
		case last && (a.Error != "" || a.StatusCode != http.StatusNoContent):
			t.Errorf("the delivering attempt: %+v", a)
		case !last && a.Error == "":
			t.Errorf("failed attempt %d records no error: %+v", i+1, a)
		case !last:
			failed++
			if a.At.After(restartAt) {
				afterRestart++
			}
		}
	}
	var offsets []string
	for _, a := range d.Attempts {
		offsets = append(offsets, "+"+a.At.Sub(d.Attempts[0].At).Round(time.Second).String())
	}
	if afterRestart == 0 {
		t.Errorf("no failed attempt after the restart: the delivery job did not survive it (%d attempts)", len(d.Attempts))
	}
	time.Sleep(3 * time.Second)
	if n := len(recv.Calls()); n != 1 {
		t.Fatalf("receiver got %d calls for one delivery", n)
	}
	delay := first.At.Sub(upAt)

	// A manual redelivery: one more call, same webhook-id, one more attempt.
	var rd model.Delivery
	if code := s.Do("POST", "/api/v1/builds/"+id+"/deliveries/0/redeliver", nil, &rd); code != http.StatusAccepted {
		t.Fatalf("redeliver: HTTP %d", code)
	}
	calls = recv.WaitCalls(t, 2, time.Minute)
	again := calls[1]
	if again.Header.Get(deploy.HeaderID) != first.Header.Get(deploy.HeaderID) || again.Header.Get(deploy.HeaderID) == "" {
		t.Errorf("redelivery webhook-id %q, first %q", again.Header.Get(deploy.HeaderID), first.Header.Get(deploy.HeaderID))
	}
	if err := deploy.Verify(secret, again.Header, again.Body, 5*time.Minute, time.Now()); err != nil {
		t.Errorf("redelivered webhook signature: %v", err)
	}
	var d2 model.Delivery
	deadline = time.Now().Add(30 * time.Second)
	for d2 = attemptsOf(); d2.Status != "delivered" || len(d2.Attempts) != len(d.Attempts)+1; d2 = attemptsOf() {
		if time.Now().After(deadline) || len(d2.Attempts) > len(d.Attempts)+1 {
			t.Fatalf("after redelivery: %s with %d attempts, want delivered with %d", d2.Status, len(d2.Attempts), len(d.Attempts)+1)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	if n := len(recv.Calls()); n != 2 {
		t.Errorf("receiver got %d calls, want 2 (delivery and one redelivery)", n)
	}
	if t.Failed() {
		return
	}
	rig.Report("5. Deploy-hook receiver down for minutes",
		"- schedule: `SLIPWAY_HOOK_SCHEDULE=0s,5s,10s,20s,30s,30s,30s,30s,30s,30s,30s` (11 tries over about 4 minutes)",
		fmt.Sprintf("- receiver down from before the build until %s after the first attempt; `slipway serve` stopped (SIGTERM, %s) and restarted (%s to ready) a minute in, with %d failed attempts recorded", loadRound(upAt.Sub(builtAt)), loadRound(stopTook), loadRound(restartTook), beforeStop),
		fmt.Sprintf("- attempts: %d failed (each with its error, %d of them after the restart), then 1 delivered (204); signature verified with `deploy.Verify`", failed, afterRestart),
		fmt.Sprintf("- attempt times after the first: %s", strings.Join(offsets, ", ")),
		fmt.Sprintf("- delay from the receiver's return to the delivery: %s", loadRound(delay)),
		fmt.Sprintf("- calls received: %d for the delivery, lost: 0, duplicates: 0", 1),
		fmt.Sprintf("- manual redelivery (`POST …/deliveries/0/redeliver`): 202, one more call with the same webhook-id, attempts %d → %d", len(d.Attempts), len(d2.Attempts)))
}

// 7. 1,000 pushes for 100 repositories, each webhook delivered twice in a
// random order: one build per push, none twice, none lost.
func TestChaosFlood(t *testing.T) {
	const (
		repos    = 100
		commits  = 10
		parallel = 50
	)
	// Reconciliation is off: with pushes arriving out of order a branch's
	// newest push is not always its tip, and reconciliation would rightly
	// build the tip once more. This test counts webhook builds.
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_WORKERS=4", "SLIPWAY_RECONCILE_INTERVAL=0s"}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "flood")
	shas := make([]string, commits)
	for i := range shas {
		files := map[string]string{"n.txt": fmt.Sprintf("%d\n", i)}
		if i == 0 {
			files["Dockerfile"] = dockerfile(s.RegistryAddr, "echo flood > /built.txt")
		}
		shas[i] = src.Commit(fmt.Sprintf("commit %d", i), files)
	}
	src.Push("main")
	names := make([]string, repos)
	ids := make([]string, repos)
	images := map[string]string{}
	for r := range names {
		names[r] = fmt.Sprintf("acme/flood-%03d", r)
		var repo model.Repo
		code := s.Do("POST", "/api/v1/repos", model.Repo{
			Provider: "github", FullName: names[r], CloneURL: src.CloneURL, WebhookSecret: webhookSecret,
			Image: s.RegistryAddr + "/" + names[r],
			Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}},
		}, &repo)
		if code != http.StatusCreated {
			t.Fatalf("register %s: HTTP %d", names[r], code)
		}
		ids[r] = repo.ID
		images[repo.ID] = repo.Image
	}

	type send struct{ repo, commit int }
	var sends []send
	for r := range repos {
		for c := range commits {
			sends = append(sends, send{r, c}, send{r, c})
		}
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>7))
	rng.Shuffle(len(sends), func(i, j int) { sends[i], sends[j] = sends[j], sends[i] })
	t.Logf("%d webhooks in random order (seed %d)", len(sends), seed)

	answers := make([]rig.HookResponse, len(sends))
	errs := make([]error, len(sends))
	sendStart := time.Now()
	rig.InParallel(parallel, len(sends), func(i int) {
		sd := sends[i]
		before := ""
		if sd.commit > 0 {
			before = shas[sd.commit-1]
		}
		body := rig.GitHubPush{Repo: names[sd.repo], CloneURL: src.CloneURL, Ref: "refs/heads/main", Before: before,
			After: shas[sd.commit], Message: fmt.Sprintf("commit %d", sd.commit), Files: []string{"n.txt"}}.Payload()
		delivery := fmt.Sprintf("flood-%03d-%02d", sd.repo, sd.commit)
		answers[i], errs[i] = rig.PostGitHub(s.URL(), "push", delivery, webhookSecret, body)
	})
	sendTime := time.Since(sendStart)

	type push struct{ repo, commit int }
	buildOf := map[push]string{}
	pushOf := map[string]push{}
	not202, sameID := 0, 0
	for i, a := range answers {
		sd := sends[i]
		if errs[i] != nil {
			t.Fatalf("webhook %d: %v", i, errs[i])
		}
		if a.Code != http.StatusAccepted || len(a.Builds) != 1 {
			not202++
			t.Errorf("webhook for %s commit %d: %+v", names[sd.repo], sd.commit, a)
			continue
		}
		p := push(sd)
		if prev, ok := buildOf[p]; ok {
			if prev != a.Builds[0] {
				t.Errorf("the two deliveries of %s commit %d named builds %s and %s", names[sd.repo], sd.commit, prev, a.Builds[0])
			} else {
				sameID++
			}
			continue
		}
		buildOf[p] = a.Builds[0]
		pushOf[a.Builds[0]] = p
	}
	if not202 > 0 || len(pushOf) != repos*commits {
		t.Fatalf("%d answers were not 202 with one build; %d distinct builds answered, want %d", not202, len(pushOf), repos*commits)
	}

	final := loadWaitFinal(t, s, "", repos*commits, 6*time.Minute, 5*time.Second)
	duration := time.Since(sendStart)
	counts := loadCount(final)
	perPush := map[string]int{} // repo/ref/commit → builds
	newest := map[string]model.Build{}
	// Tags follow the history, not the arrival: latest ends at the newest
	// commit a build succeeded for, which a late push of an older commit
	// never moves back (its before is not the tag's commit).
	commitIndex := map[string]int{}
	for i, sha := range shas {
		commitIndex[sha] = i
	}
	topBuilt := map[string]model.Build{}
	unexpected, supersededRunning := 0, 0
	for _, b := range final {
		perPush[b.RepoID+" "+b.Ref+" "+b.Commit]++
		if _, ok := pushOf[b.ID]; !ok {
			unexpected++
			t.Errorf("build %s (%s %s %s) was answered to no webhook", b.ID, b.RepoID, b.Commit, b.Status)
		}
		switch b.Status {
		case model.StatusSucceeded:
		case model.StatusCancelled:
			if b.SupersededBy == "" {
				t.Errorf("build %s cancelled without superseded_by: %s", b.ID, b.Reason)
			}
			if b.StartedAt != nil {
				supersededRunning++
			}
		default:
			t.Errorf("build %s: %s %s %s", b.ID, b.Status, b.Error, b.Reason)
		}
		if cur, ok := newest[b.RepoID]; !ok || b.Seq > cur.Seq {
			newest[b.RepoID] = b
		}
		if cur, ok := topBuilt[b.RepoID]; b.Status == model.StatusSucceeded && (!ok || commitIndex[b.Commit] > commitIndex[cur.Commit]) {
			topBuilt[b.RepoID] = b
		}
	}
	dups, lost := 0, 0
	for p, id := range buildOf {
		n := perPush[ids[p.repo]+" refs/heads/main "+shas[p.commit]]
		switch {
		case n == 0:
			lost++
			t.Errorf("push %s commit %d (build %s): no build record", names[p.repo], p.commit, id)
		case n > 1:
			dups += n - 1
			t.Errorf("push %s commit %d: %d build records", names[p.repo], p.commit, n)
		}
	}
	if len(final) != repos*commits {
		t.Errorf("%d build records, want %d", len(final), repos*commits)
	}
	// A build cancelled while queued must never run: no clone in its log.
	ranCancelled := 0
	for _, b := range final {
		if b.Status == model.StatusCancelled && b.StartedAt == nil {
			if log := s.Log(b.ID); strings.Contains(log, "==> clone") {
				ranCancelled++
				t.Errorf("build %s was cancelled while queued (%s) but ran:\n%s", b.ID, b.Reason, log)
			}
		}
	}
	// For every repository the newest push was built, and latest is the
	// newest commit built.
	notTip, heldBack := 0, 0
	ctx := context.Background()
	for r, id := range ids {
		nb, ok := newest[id]
		if !ok {
			t.Errorf("%s has no builds", names[r])
			continue
		}
		if nb.Status != model.StatusSucceeded {
			t.Errorf("%s: the newest push (commit %s) ended %s %s %s", names[r], nb.Commit[:7], nb.Status, nb.Reason, nb.Error)
			continue
		}
		if nb.Commit != shas[commits-1] {
			notTip++
		}
		m, err := rig.FetchManifest(ctx, images[id]+":latest")
		if err != nil {
			t.Errorf("%s:latest: %v", names[r], err)
			continue
		}
		top := topBuilt[id]
		if top.ID != nb.ID {
			heldBack++
		}
		if m.Digest != top.Digest {
			t.Errorf("%s:latest is %s, want %s of build %s, the newest commit built (%d of %d; the newest push's build %s is of commit %d)",
				names[r], m.Digest, top.Digest, top.ID, commitIndex[top.Commit], commits-1, nb.ID, commitIndex[nb.Commit])
		}
	}
	if t.Failed() {
		return
	}
	statuses := make([]string, 0, len(counts))
	for st, n := range counts {
		statuses = append(statuses, fmt.Sprintf("%s %d", st, n))
	}
	sort.Strings(statuses)
	rig.Report("7. 1,000 webhooks for 100 repositories, each delivered twice",
		fmt.Sprintf("- webhooks sent: %d (%d repositories × %d commits on main, each delivery id twice, random order, %d at a time) in %s, all answered 202", len(sends), repos, commits, parallel, loadRound(sendTime)),
		fmt.Sprintf("- distinct pushes: %d; the second delivery of each id named the same build: %d of %d", len(buildOf), sameID, len(buildOf)),
		fmt.Sprintf("- builds: %d records (%s), duplicates: %d, lost: %d, unexpected: %d", len(final), strings.Join(statuses, ", "), dups, lost, unexpected),
		fmt.Sprintf("- superseded by design (`cancelled`, `superseded_by` set): %d, of them %d stopped while running, %d cancelled while queued yet run; built: %d; failed: %d", counts[model.StatusCancelled], supersededRunning, ranCancelled, counts[model.StatusSucceeded], counts[model.StatusFailed]),
		fmt.Sprintf("- every repository's newest push (by arrival) was built, and its `latest` is the image of the newest commit built; for %d of %d repositories the newest push was not the branch tip, because the pushes arrived out of order, and for %d a newer commit built before it kept `latest`", notTip, repos, heldBack),
		fmt.Sprintf("- duration from the first webhook to every build final: %s (`SLIPWAY_WORKERS=4`)", loadRound(duration)))
}
