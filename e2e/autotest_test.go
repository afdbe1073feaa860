package e2e

import (
	"context"
	"net/http"
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
