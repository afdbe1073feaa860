package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// buildsOf lists a repository's builds of one commit.
func buildsOf(s *rig.Slipway, repoID, commit string) []model.Build {
	var all, out []model.Build
	s.Do("GET", "/api/v1/builds?repo="+repoID, nil, &all)
	for _, b := range all {
		if b.Commit == commit {
			out = append(out, b)
		}
	}
	return out
}

// oneBuild waits until the commit's only build has succeeded, then checks
// it stays the only one and that exactly one deploy webhook names it.
func oneBuild(t *testing.T, s *rig.Slipway, recv *rig.Receiver, repoID, commit string, calmFor time.Duration) model.Build {
	t.Helper()
	waitFor(t, "a build of "+commit, time.Minute, func() bool { return len(buildsOf(s, repoID, commit)) > 0 })
	b := s.WaitBuild(buildsOf(s, repoID, commit)[0].ID, 2*time.Minute)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("build %s: %s %s\n%s", b.ID, b.Status, b.Error, s.Log(b.ID))
	}
	recv.WaitCalls(t, 1, 30*time.Second)
	// Long enough for reconcilers and late webhooks to have done their worst.
	time.Sleep(calmFor)
	if got := buildsOf(s, repoID, commit); len(got) != 1 {
		t.Errorf("%d builds of %s, want 1: %+v", len(got), commit, got)
	}
	if calls := recv.Calls(); len(calls) != 1 || !strings.Contains(string(calls[0].Body), b.ID) {
		t.Errorf("deploy webhooks: %d calls, want 1 naming build %s", len(calls), b.ID)
	}
	return b
}

func repoWithReceiver(t *testing.T, s *rig.Slipway, name, cloneURL string) (model.Repo, *rig.Receiver) {
	recv := rig.StartReceiver(t, 0)
	repo := registerRepo(t, s, name, cloneURL, []model.Hook{{URL: recv.URL, Secret: deploy.GenerateSecret()}})
	return repo, recv
}

// One build per repository, ref, commit and rule, whichever path sees the
// commit first.
func TestOneBuildPerCommit(t *testing.T) {
	git := rig.StartGitServer(t)
	t.Run("reconciliation first and its webhook 5 s later", func(t *testing.T) {
		s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_RECONCILE_INTERVAL=1s"}})
		s.PushBusybox()
		src := git.NewRepo(t, "late-hook")
		src.Commit("before registration", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo old")})
		src.Push("main")
		repo, recv := repoWithReceiver(t, s, "acme/late-hook", src.CloneURL)
		commit := src.Commit("delayed webhook", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo new")})
		src.Push("main")
		waitFor(t, "reconciliation to find the push", 30*time.Second, func() bool { return len(buildsOf(s, repo.ID, commit)) > 0 })
		found := buildsOf(s, repo.ID, commit)[0]
		if found.Trigger != "reconcile" {
			t.Fatalf("first build's trigger = %q, want reconcile", found.Trigger)
		}
		time.Sleep(5 * time.Second)
		r := pushBranch(t, s.URL(), repo.FullName, "main", commit, "late-delivery-1")
		if r.Code != http.StatusAccepted || !slices.Equal(r.Builds, []string{found.ID}) {
			t.Fatalf("late webhook: HTTP %d builds %v, want 202 naming %s", r.Code, r.Builds, found.ID)
		}
		oneBuild(t, s, recv, repo.ID, commit, 3*time.Second)
	})
	t.Run("webhook first then reconciliation", func(t *testing.T) {
		s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_RECONCILE_INTERVAL=1s"}})
		s.PushBusybox()
		src := git.NewRepo(t, "hook-first")
		src.Commit("before registration", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo old")})
		src.Push("main")
		repo, recv := repoWithReceiver(t, s, "acme/hook-first", src.CloneURL)
		commit := src.Commit("announced", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo new")})
		src.Push("main")
		r := pushBranch(t, s.URL(), repo.FullName, "main", commit, "first-delivery-1")
		if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
			t.Fatalf("webhook: HTTP %d builds %v", r.Code, r.Builds)
		}
		b := oneBuild(t, s, recv, repo.ID, commit, 3*time.Second)
		if b.ID != r.Builds[0] || b.Trigger != "webhook" {
			t.Errorf("the build is %s (trigger %s), want the webhook's %s", b.ID, b.Trigger, r.Builds[0])
		}
		// Another delivery of the same push, as a host's redelivery or
		// retry sends it, names that build and queues nothing.
		again := pushBranch(t, s.URL(), repo.FullName, "main", commit, "first-delivery-2")
		if again.Code != http.StatusAccepted || !slices.Equal(again.Builds, r.Builds) {
			t.Errorf("second delivery: HTTP %d builds %v, want 202 naming %v", again.Code, again.Builds, r.Builds)
		}
	})
	t.Run("webhooks and reconcilers at once in two processes sharing NATS", func(t *testing.T) {
		natsURL, natsCreds, _ := rig.StartNATS(t)
		env := []string{"SLIPWAY_RECONCILE_INTERVAL=1s"}
		// b's workers push to a's embedded registry, whose passes only a
		// can mint (its key is in a's data dir): a's registry stays open.
		a := rig.StartSlipway(t, rig.Options{NATSURL: natsURL, NATSCreds: natsCreds, Env: append([]string{"SLIPWAY_REGISTRY_AUTH=none"}, env...)})
		b := rig.StartSlipway(t, rig.Options{NATSURL: natsURL, NATSCreds: natsCreds, Env: env, ExternalRegistry: a.RegistryAddr})
		a.PushBusybox()
		src := git.NewRepo(t, "two-procs")
		src.Commit("before registration", map[string]string{"Dockerfile": dockerfile(a.RegistryAddr, "echo old")})
		src.Push("main")
		repo, recv := repoWithReceiver(t, a, "acme/two-procs", src.CloneURL)
		commit := src.Commit("everyone at once", map[string]string{"Dockerfile": dockerfile(a.RegistryAddr, "echo new")})
		src.Push("main")
		var wg sync.WaitGroup
		answers := make([]rig.HookResponse, 4)
		for i, s := range []*rig.Slipway{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = pushBranch(t, s.URL(), repo.FullName, "main", commit, "both-"+string(rune('a'+i)))
			}()
		}
		wg.Wait()
		built := oneBuild(t, a, recv, repo.ID, commit, 3*time.Second)
		for i, r := range answers {
			if r.Code != http.StatusAccepted || !slices.Equal(r.Builds, []string{built.ID}) {
				t.Errorf("webhook %d: HTTP %d builds %v, want 202 naming %s", i, r.Code, r.Builds, built.ID)
			}
		}
	})
}

// Registering a repository builds nothing that was pushed before; asking
// for it with build_now builds each watched tip once.
func TestRegistrationBuildsOnlyNewPushes(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_RECONCILE_INTERVAL=1s"}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "existing")
	mainTip := src.Commit("main before", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo main")})
	src.Push("main")
	rig.Git(t, src.Dir, "checkout", "-q", "-b", "dev")
	src.Commit("dev before", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo dev")})
	src.Push("dev")
	register := func(name string, buildNow bool) (model.Repo, []string) {
		var out struct {
			model.Repo
			Builds []string `json:"builds"`
		}
		code := s.Do("POST", "/api/v1/repos", map[string]any{
			"provider": "github", "full_name": name, "clone_url": src.CloneURL, "webhook_secret": webhookSecret,
			"image": s.RegistryAddr + "/" + name, "build_now": buildNow,
			"rules": []model.Rule{{SourceType: "branch", Source: "/.*/", Tags: []string{"{branch}"}}},
		}, &out)
		if code != http.StatusCreated {
			t.Fatalf("register %s: HTTP %d", name, code)
		}
		return out.Repo, out.Builds
	}

	quiet, none := register("acme/quiet", false)
	if len(none) != 0 {
		t.Errorf("registration without build_now answered builds %v", none)
	}
	time.Sleep(4 * time.Second) // four reconcile intervals
	var builds []model.Build
	s.Do("GET", "/api/v1/builds?repo="+quiet.ID, nil, &builds)
	if len(builds) != 0 {
		t.Fatalf("%d builds of tips that existed before registration, want 0: %+v", len(builds), builds)
	}
	newTip := src.Commit("dev after", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo dev2")})
	src.Push("dev")
	r := pushBranch(t, s.URL(), quiet.FullName, "dev", newTip, "quiet-1")
	if b := s.WaitBuild(r.Builds[0], 2*time.Minute); b.Status != model.StatusSucceeded || b.Commit != newTip {
		t.Fatalf("push after registration: %s of %s", b.Status, b.Commit)
	}

	eager, ids := register("acme/eager", true)
	if len(ids) != 2 {
		t.Fatalf("build_now answered builds %v, want one per branch", ids)
	}
	got := map[string]string{}
	for _, id := range ids {
		b := s.WaitBuild(id, 2*time.Minute)
		if b.Status != model.StatusSucceeded || b.Trigger != "register" {
			t.Errorf("build_now build %s: %s trigger=%s %s", id, b.Status, b.Trigger, b.Error)
		}
		got[b.Ref] = b.Commit
	}
	if got["refs/heads/main"] != mainTip || got["refs/heads/dev"] != newTip {
		t.Errorf("build_now built %v, want main at %s and dev at %s", got, mainTip, newTip)
	}
	time.Sleep(3 * time.Second)
	s.Do("GET", "/api/v1/builds?repo="+eager.ID, nil, &builds)
	if len(builds) != 2 {
		t.Errorf("%d builds after build_now and three reconcile intervals, want 2", len(builds))
	}
}

// statusesOf lists the states posted for one build, and whether each call
// carried the installation token.
func statusesOf(host *rig.HostAPI, commit, buildID, token string) (states []string, authed bool) {
	authed = true
	for _, r := range host.Requests() {
		url, _ := r.Body["target_url"].(string)
		if r.Method != "POST" || !strings.Contains(r.Path, commit) || !strings.HasSuffix(url, "/"+buildID) {
			continue
		}
		states = append(states, r.Body["state"].(string))
		authed = authed && strings.Contains(r.Header.Get("Authorization"), token)
	}
	return states, authed
}

// A repository that relies on the GitHub App installation its pushes come
// from: builds no webhook started clone with its token and post statuses.
func TestPushInstallationServesEveryTrigger(t *testing.T) {
	const token = "ghs_installation_token"
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, []byte(testAppKey(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	host := rig.StartHostAPI(t)
	host.AppToken = token
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_RECONCILE_INTERVAL=1s",
		"SLIPWAY_GITHUB_APP_ID=4242", "SLIPWAY_GITHUB_APP_KEY_FILE=" + keyFile, "SLIPWAY_GITHUB_API_URL=" + host.URL + "/"}})
	s.PushBusybox()
	git := rig.StartPrivateGitServer(t, "x-access-token", token)
	src := git.NewRepo(t, "appmade")
	first := src.Commit("first", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo one")})
	src.Push("main")
	var repo model.Repo
	code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: "acme/appmade", CloneURL: src.CloneURL, APIURL: host.URL + "/",
		WebhookSecret: webhookSecret, Image: s.RegistryAddr + "/acme/appmade",
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}},
	}, &repo)
	if code != http.StatusCreated {
		t.Fatalf("register: HTTP %d", code)
	}
	body := rig.GitHubPush{Repo: repo.FullName, Ref: "refs/heads/main", After: first, Installation: 77}.Payload()
	pushed := rig.SendGitHub(t, s.URL(), "push", "app-1", webhookSecret, body)
	want := []string{"pending", "pending", "success"} // GitHub has no "running"
	check := func(what string, b model.Build) {
		t.Helper()
		b = s.WaitBuild(b.ID, 2*time.Minute)
		if b.Status != model.StatusSucceeded {
			t.Fatalf("%s build: %s %s\n%s", what, b.Status, b.Error, s.Log(b.ID))
		}
		var states []string
		var authed bool
		waitFor(t, what+" statuses", 30*time.Second, func() bool {
			states, authed = statusesOf(host, b.Commit, b.ID, token)
			return len(states) >= 3
		})
		if !slices.Equal(states, want) || !authed {
			t.Errorf("%s build: statuses %v (installation token on each: %v), want %v with it", what, states, authed, want)
		}
	}
	check("webhook", model.Build{ID: pushed.Builds[0]})

	var rebuilt, triggered model.Build
	if code := s.Do("POST", "/api/v1/builds/"+pushed.Builds[0]+"/rebuild", nil, &rebuilt); code != http.StatusAccepted {
		t.Fatalf("rebuild: HTTP %d", code)
	}
	check("rebuild", rebuilt)
	if code := s.Do("POST", "/api/v1/repos/"+repo.ID+"/builds", map[string]string{"ref": "refs/heads/main"}, &triggered); code != http.StatusAccepted {
		t.Fatalf("trigger: HTTP %d", code)
	}
	if triggered.Commit != first {
		t.Errorf("trigger resolved main to %s, want %s", triggered.Commit, first)
	}
	check("trigger", triggered)

	second := src.Commit("second, no webhook", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo two")})
	src.Push("main")
	waitFor(t, "reconciliation to find the push", time.Minute, func() bool { return len(buildsOf(s, repo.ID, second)) > 0 })
	reconciled := buildsOf(s, repo.ID, second)[0]
	if reconciled.Trigger != "reconcile" || reconciled.InstallationID != 77 {
		t.Errorf("reconciled build: trigger %s installation %d, want reconcile and 77", reconciled.Trigger, reconciled.InstallationID)
	}
	check("reconciled", reconciled)
}

// `slipway repo connect --build` builds the default branch's tip at once.
func TestConnectWithBuildBuildsTheTip(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "connect-now")
	commit := src.Commit("first", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo now > /built.txt")})
	src.Push("main")
	host := rig.StartHostAPI(t)
	host.Repo = map[string]any{"full_name": "acme/connect-now", "default_branch": "main", "clone_url": src.CloneURL, "private": false}
	out, err := s.CLI("repo", "connect", "github", "acme/connect-now", "--build", "--token", "host-token",
		"--api-url", host.URL+"/", "--image", s.RegistryAddr+"/acme/connect-now")
	if err != nil {
		t.Fatalf("connect --build: %v\n%s", err, out)
	}
	var connected struct {
		model.Repo
		Builds []string `json:"builds"`
	}
	if err := json.Unmarshal([]byte(out), &connected); err != nil || len(connected.Builds) != 1 {
		t.Fatalf("connect --build printed %s, want the repository with one build", out)
	}
	b := s.WaitBuild(connected.Builds[0], 2*time.Minute)
	if b.Status != model.StatusSucceeded || b.Commit != commit || b.Trigger != "register" || b.Ref != "refs/heads/main" {
		t.Errorf("build: %s of %s %s trigger=%s, want succeeded of main at %s by register", b.Status, b.Ref, b.Commit, b.Trigger, commit)
	}
}
