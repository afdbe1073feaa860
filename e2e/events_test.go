package e2e

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/deploy/cloudeventstest"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// A hook that subscribes to build.failed in CloudEvents form hears of a
// failed build once, signed, and of a good build after it nothing.
func TestCloudEventsHookHearsOfAFailureOnly(t *testing.T) {
	hookSecret := deploy.GenerateSecret()
	recv := rig.StartReceiver(t, 0)
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "events")
	bad := src.Commit("broken build", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo about to fail && exit 3")})
	src.Push("main")
	hook := model.Hook{URL: recv.URL + "/events", Secret: hookSecret, Events: []string{model.EventBuildFailed}, Format: model.FormatCloudEvents}
	repo := registerRepo(t, s, "acme/events", src.CloneURL, []model.Hook{hook})
	if want := []model.Hook{{URL: hook.URL, Events: hook.Events, Format: hook.Format}}; !reflect.DeepEqual(repo.Hooks, want) {
		t.Errorf("registered hooks = %+v, want %+v", repo.Hooks, want)
	}

	r := rig.SendGitHub(t, s.URL(), "push", "events-1", webhookSecret,
		rig.GitHubPush{Repo: "acme/events", Ref: "refs/heads/main", After: bad}.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push: %+v", r)
	}
	fb := s.WaitBuild(r.Builds[0], 3*time.Minute)
	if fb.Status != model.StatusFailed {
		t.Fatalf("build %s: %s (%s), want failed\n%s", fb.ID, fb.Status, fb.Error, s.Log(fb.ID))
	}
	call := recv.WaitCalls(t, 1, time.Minute)[0]
	checkFailedEvent(t, call, hookSecret, repo, fb, s.URL())
	waitDelivered(t, s, fb.ID, model.EventBuildFailed)

	good := src.Commit("fixed build", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo built-by-slipway > /built.txt")})
	src.Push("main")
	r = rig.SendGitHub(t, s.URL(), "push", "events-2", webhookSecret,
		rig.GitHubPush{Repo: "acme/events", Ref: "refs/heads/main", Before: bad, After: good}.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push: %+v", r)
	}
	gb := s.WaitBuild(r.Builds[0], 5*time.Minute)
	if gb.Status != model.StatusSucceeded || len(gb.Deliveries) != 0 {
		t.Fatalf("build %s: %s (%s) with deliveries %+v, want succeeded with none\n%s", gb.ID, gb.Status, gb.Error, gb.Deliveries, s.Log(gb.ID))
	}
	// Hooks are queued before the build's end is acknowledged and sent
	// within a second; a call for the good build would be here by now.
	time.Sleep(3 * time.Second)
	if calls := recv.Calls(); len(calls) != 1 {
		t.Errorf("receiver got %d calls, want only the one of the failed build", len(calls))
	}
}

// checkFailedEvent checks the call announcing failed build b: signed the
// Standard Webhooks way, a CloudEvent that the CloudEvents schema accepts,
// of type build.slipway.build.failed about b.
func checkFailedEvent(t *testing.T, call rig.Received, secret string, repo model.Repo, b model.Build, publicURL string) {
	t.Helper()
	if err := deploy.Verify(secret, call.Header, call.Body, 5*time.Minute, time.Now()); err != nil {
		t.Errorf("signature: %v", err)
	}
	if ct := call.Header.Get("Content-Type"); ct != "application/cloudevents+json" {
		t.Errorf("Content-Type %q, want application/cloudevents+json", ct)
	}
	if err := cloudeventstest.Validate(call.Body); err != nil {
		t.Errorf("body %s: %v", call.Body, err)
	}
	var ev deploy.CloudEvent
	if err := json.Unmarshal(call.Body, &ev); err != nil {
		t.Fatalf("body %s: %v", call.Body, err)
	}
	msgID := "msg_" + b.ID + "_0_build_failed"
	want := deploy.CloudEvent{
		SpecVersion: "1.0", ID: msgID, Source: publicURL + "/api/v1/repos/" + repo.ID,
		Type: "build.slipway.build.failed", Subject: b.ID, Time: b.FinishedAt.UTC().Format(time.RFC3339),
		DataContentType: "application/json",
		Data: deploy.BuildSummary{
			Repo: "acme/events", RepoID: repo.ID, BuildID: b.ID, URL: publicURL + "/api/v1/builds/" + b.ID,
			Ref: "refs/heads/main", Commit: b.Commit, Image: repo.Image, Tags: []string{"latest"},
			Status: "failed", Error: b.Error,
		},
	}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("event\n got %+v\nwant %+v", ev, want)
	}
	if got := call.Header.Get(deploy.HeaderID); got != msgID {
		t.Errorf("webhook-id %q, want %q", got, msgID)
	}
}

// waitDelivered waits until the build records its delivery of event as
// delivered, the only delivery it has.
func waitDelivered(t *testing.T, s *rig.Slipway, buildID, event string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := s.Build(buildID).Deliveries
		if len(d) == 1 && d[0].Event == event && d[0].Status == model.DeliveryDelivered {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of %s: %+v, want one %s delivered", buildID, d, event)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
