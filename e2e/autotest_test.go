package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// A rule's failing test stage ends the build failed before anything is
// pushed: no tag, no deploy hook, a failure status on the host.
func TestFailingTestStagePushesNothing(t *testing.T) {
	recv := rig.StartReceiver(t, 0)
	host := rig.StartHostAPI(t)
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "tested")
	base := s.RegistryAddr + "/library/busybox:latest"
	commit := src.Commit("a failing test", map[string]string{
		"Dockerfile": "FROM " + base + " AS app\nRUN echo app > /app.txt\n" +
			"FROM app AS test\nRUN echo unit-test-says-no && exit 7\n" +
			"FROM app\nCMD [\"cat\", \"/app.txt\"]\n",
	})
	src.Push("main")
	var repo model.Repo
	code := s.Do("POST", "/api/v1/repos", model.Repo{Provider: "github", FullName: "acme/tested", CloneURL: src.CloneURL,
		WebhookSecret: webhookSecret, Image: s.RegistryAddr + "/acme/tested", APIURL: host.URL + "/", Token: "ghp_x",
		Hooks: []model.Hook{{URL: recv.URL + "/deploy", Secret: deploy.GenerateSecret()}},
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}, Test: &model.Test{Target: "test"}}}}, &repo)
	if code != http.StatusCreated {
		t.Fatalf("register repo: HTTP %d %+v", code, repo)
	}

	r := rig.SendGitHub(t, s.URL(), "push", "tested-1", webhookSecret, rig.GitHubPush{Repo: "acme/tested", Ref: "refs/heads/main", After: commit}.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push: %+v", r)
	}
	b := s.WaitBuild(r.Builds[0], 3*time.Minute)
	const wantPrefix = `test stage "test" failed: `
	if b.Status != model.StatusFailed || !strings.HasPrefix(b.Error, wantPrefix) || !strings.Contains(b.Error, "exit code: 7") {
		t.Fatalf("build %s: %s %q, want failed with an error starting %q and naming exit code: 7", b.ID, b.Status, b.Error, wantPrefix)
	}
	log := s.Log(b.ID)
	rig.Contains(t, "build log", log, `==> test stage "test" of Dockerfile`, "unit-test-says-no", "==> build failed: "+wantPrefix)
	if strings.Contains(log, "==> build Dockerfile") {
		t.Errorf("the image was built after a failing test:\n%s", log)
	}
	if m, err := rig.FetchManifest(context.Background(), repo.Image+":latest"); err == nil {
		t.Errorf("a failed test must push nothing, latest is %s", m.Digest)
	}
	deadline := time.Now().Add(time.Minute)
	for !slices.Contains(host.States(commit), "failure") {
		if time.Now().After(deadline) {
			t.Fatalf("host saw statuses %v, want a failure", host.States(commit))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Hooks are queued before the build's job is acknowledged: by now a
	// hook would have been called.
	time.Sleep(2 * time.Second)
	if calls := recv.Calls(); len(calls) != 0 {
		t.Errorf("a failed test called the deploy hook %d times, want 0", len(calls))
	}
	if d := s.Build(b.ID).Deliveries; len(d) != 0 {
		t.Errorf("a failed test recorded deliveries %+v, want none", d)
	}
}

// composeRepo is a repository whose docker-compose.test.yml runs web (busybox
// httpd serving www/file, built from Dockerfile.web) and sut (the busybox
// image, pulled) that fetches web:8080/file by service name and compares
// it with want.
func composeRepo(registry, file, sut string) map[string]string {
	base := registry + "/library/busybox:latest"
	return map[string]string{
		"Dockerfile":     "FROM " + base + "\nCOPY www /www\n",
		"Dockerfile.web": "FROM " + base + "\nCOPY www /www\n",
		"www/file":       file,
		"docker-compose.test.yml": `services:
  web:
    build:
      context: .
      dockerfile: Dockerfile.web
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
  sut:
    image: ` + base + `
    environment:
      WANT: hello-from-web
    command: ["sh", "-c", '` + sut + `']
    depends_on: [web]
`,
	}
}

// fetchAndCompare retries while httpd starts, then compares; $$ is a
// literal $ in a compose file.
const fetchAndCompare = `test "$$(ls /sys/class/net)" = lo || { echo "sut sees interfaces: $$(ls /sys/class/net)"; exit 9; }; for i in $$(seq 1 50); do got=$$(wget -qO- http://web:8080/file) && break; sleep 0.2; done; echo "got $$got"; test "$$got" = "$$WANT"`

func composeSlipway(t *testing.T, env ...string) (*rig.Slipway, *rig.Repo, model.Repo) {
	t.Helper()
	s := rig.StartSlipway(t, rig.Options{Env: env})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "composed")
	src.Commit("base", map[string]string{"README": "composed\n"})
	src.Push("main")
	var repo model.Repo
	code := s.Do("POST", "/api/v1/repos", model.Repo{Provider: "github", FullName: "acme/composed", CloneURL: src.CloneURL,
		WebhookSecret: webhookSecret, Image: s.RegistryAddr + "/acme/composed", TestTimeout: "3m",
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}}}, &repo)
	if code != http.StatusCreated {
		t.Fatalf("register repo: HTTP %d %+v", code, repo)
	}
	return s, src, repo
}

func pushMain(t *testing.T, s *rig.Slipway, src *rig.Repo, delivery, commit string) string {
	t.Helper()
	src.Push("main")
	r := rig.SendGitHub(t, s.URL(), "push", delivery, webhookSecret, rig.GitHubPush{Repo: "acme/composed", Ref: "refs/heads/main", After: commit}.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push: %+v", r)
	}
	return r.Builds[0]
}

// A docker-compose.test.yml decides whether the image is pushed: sut
// reaches web by its service name, and only its exit code 0 pushes.
func TestComposeTestGatesPush(t *testing.T) {
	s, src, repo := composeSlipway(t)
	good := src.Commit("serve the right file", composeRepo(s.RegistryAddr, "hello-from-web", fetchAndCompare))
	b := s.WaitBuild(pushMain(t, s, src, "compose-1", good), 4*time.Minute)
	log := s.Log(b.ID)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("build %s: %s %q\n%s", b.ID, b.Status, b.Error, log)
	}
	// fetchAndCompare exits 9 if the namespace has any interface but lo.
	rig.Contains(t, "build log", log, "==> test docker-compose.test.yml (2 services", "sut | got hello-from-web",
		"==> test docker-compose.test.yml passed", "==> pushed")
	m, err := rig.FetchManifest(context.Background(), repo.Image+":latest")
	if err != nil || m.Digest != b.Digest {
		t.Fatalf("latest = %s (%v), want the build's %s", m.Digest, err, b.Digest)
	}

	bad := src.Commit("serve the wrong file", map[string]string{"www/file": "something-else"})
	fb := s.WaitBuild(pushMain(t, s, src, "compose-2", bad), 4*time.Minute)
	if fb.Status != model.StatusFailed || fb.Error != `test "sut" failed: exit code 1` {
		t.Fatalf("build %s: %s %q, want failed %q\n%s", fb.ID, fb.Status, fb.Error, `test "sut" failed: exit code 1`, s.Log(fb.ID))
	}
	rig.Contains(t, "failed build log", s.Log(fb.ID), "sut | got something-else")
	if m, err := rig.FetchManifest(context.Background(), repo.Image+":latest"); err != nil || m.Digest != b.Digest {
		t.Errorf("a failed test moved latest to %s (%v), want %s", m.Digest, err, b.Digest)
	}
	noLeftovers(t, s)
}

// Killing Slipway while web runs leaves containers behind; the restarted
// process removes them, and the build runs again to its end.
func TestComposeTestLeftoversRemovedAfterKill(t *testing.T) {
	s, src, _ := composeSlipway(t, "SLIPWAY_ACK_WAIT=3s", "SLIPWAY_RECONCILE_INTERVAL=0s")
	slow := src.Commit("a slow test", composeRepo(s.RegistryAddr, "hello-from-web", "wget -qO- http://web:8080/file; sleep 15"))
	id := pushMain(t, s, src, "compose-kill", slow)
	waitFor(t, "sut running", 3*time.Minute, func() bool { return strings.Contains(s.Log(id), "==> test: run sut") })
	time.Sleep(time.Second)
	s.Kill()
	if got := testContainers(t, s); len(got) == 0 {
		t.Fatalf("no test container ran when Slipway was killed: the test proves nothing")
	}
	s.Restart()
	noLeftovers(t, s)
	b := s.WaitBuild(id, 4*time.Minute)
	if b.Status != model.StatusSucceeded || b.Attempts < 2 {
		t.Fatalf("build %s: %s %q after %d attempts, want succeeded after 2 or more\n%s", b.ID, b.Status, b.Error, b.Attempts, s.Log(b.ID))
	}
	noLeftovers(t, s)
}

// testContainers lists the test containers runc knows under s's data dir.
func testContainers(t *testing.T, s *rig.Slipway) []string {
	t.Helper()
	out, err := exec.Command(filepath.Join(rig.Root(t), "bin", "runc"), "--root", filepath.Join(s.DataDir, "testruns", "runc"), "list", "--quiet").CombinedOutput()
	if err != nil {
		t.Fatalf("runc list: %v: %s", err, out)
	}
	var ids []string
	for _, id := range strings.Fields(string(out)) {
		if strings.HasPrefix(id, "slipway-test-") {
			ids = append(ids, id)
		}
	}
	return ids
}

// noLeftovers checks that no test container, namespace or run dir is left.
func noLeftovers(t *testing.T, s *rig.Slipway) {
	t.Helper()
	if got := testContainers(t, s); len(got) != 0 {
		t.Errorf("test containers left: %v", got)
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	if strings.Contains(string(out), "slipway-test-") {
		t.Errorf("test network namespaces left:\n%s", out)
	}
	if runs, _ := os.ReadDir(filepath.Join(s.DataDir, "testruns", "runs")); len(runs) != 0 {
		t.Errorf("test run dirs left: %d", len(runs))
	}
}

// Cancelling a build while its test runs kills and removes the test's
// containers at once.
func TestComposeTestCancelCleansUp(t *testing.T) {
	s, src, _ := composeSlipway(t)
	slow := src.Commit("a test that never ends", composeRepo(s.RegistryAddr, "hello-from-web", "sleep 600"))
	id := pushMain(t, s, src, "compose-cancel", slow)
	waitFor(t, "sut running", 3*time.Minute, func() bool { return strings.Contains(s.Log(id), "==> test: run sut") })
	waitFor(t, "containers running", 30*time.Second, func() bool { return len(testContainers(t, s)) == 2 })
	if code := s.Do("POST", "/api/v1/builds/"+id+"/cancel", nil, nil); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("cancel: HTTP %d", code)
	}
	b := s.WaitBuild(id, time.Minute)
	if b.Status != model.StatusCancelled {
		t.Fatalf("build %s: %s %q, want cancelled\n%s", b.ID, b.Status, b.Error, s.Log(b.ID))
	}
	noLeftovers(t, s)
}
