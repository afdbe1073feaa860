package api_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
)

func TestHookEventsAndFormatAreChecked(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		hook model.Hook
		want string
	}{
		{"unknown event", model.Hook{Events: []string{"image.pushed", "push"}},
			`hooks[0].events: want some of image.pushed, build.failed, build.started, test.failed, pull_request.built, got "push"`},
		{"event twice", model.Hook{Events: []string{"build.failed", "build.failed"}},
			`hooks[0].events: "build.failed" is listed twice`},
		{"empty event", model.Hook{Events: []string{""}},
			`hooks[0].events: want some of image.pushed, build.failed, build.started, test.failed, pull_request.built, got ""`},
		{"unknown format", model.Hook{Format: "CloudEvents"},
			`hooks[0].format: want "dockerhub" (the default) or "cloudevents", got "CloudEvents"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRepo("acme/hooks")
			r.Hooks[0].Events, r.Hooks[0].Format = tt.hook.Events, tt.hook.Format
			code, raw := h.call("POST", "/api/v1/repos", r)
			if code != http.StatusBadRequest {
				t.Fatalf("HTTP %d %s, want 400", code, raw)
			}
			if msg := errorOf(t, raw); msg != tt.want {
				t.Errorf("error = %q, want %q", msg, tt.want)
			}
		})
	}
}

// A hook's events and format are no secret: the API shows them.
func TestHookEventsAndFormatAreShown(t *testing.T) {
	h := newHarness(t)
	r := validRepo("acme/hooks")
	r.Hooks = append(r.Hooks, model.Hook{
		URL: "https://deploy.example/events", Secret: hookSecret,
		Events: []string{"build.failed", "test.failed"}, Format: "cloudevents",
	})
	got := h.createRepo(r)
	want := []model.Hook{
		{URL: "https://deploy.example/hook"},
		{URL: "https://deploy.example/events", Events: []string{"build.failed", "test.failed"}, Format: "cloudevents"},
	}
	if !reflect.DeepEqual(got.Hooks, want) {
		t.Errorf("hooks = %+v, want %+v", got.Hooks, want)
	}
}

// A delivery is redelivered by its index among the build's deliveries; the
// job names its hook and event, which that index no longer tells apart.
func TestRedeliverNamesTheDeliverysEvent(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	b := model.Build{
		ID: "b1", RepoID: repo.ID, Org: "acme", Ref: "refs/heads/main", Commit: tipSHA, Status: model.StatusFailed,
		CreatedAt: base, Deliveries: []model.Delivery{
			{Hook: 0, Event: model.EventBuildStarted, MessageID: "msg_b1_0_build_started", Status: model.DeliveryDelivered},
			{Hook: 0, Event: model.EventBuildFailed, MessageID: "msg_b1_0_build_failed", Status: model.DeliveryFailed},
		},
	}
	if _, err := h.store.CreateBuild(testCtx(t), b); err != nil {
		t.Fatal(err)
	}
	code, raw := h.call("POST", "/api/v1/builds/b1/deliveries/1/redeliver", nil)
	if code != http.StatusAccepted {
		t.Fatalf("redeliver: HTTP %d %s", code, raw)
	}
	jobs, err := h.queue.HookJobs(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	job, ok, err := jobs.Next(testCtx(t), 5*time.Second)
	if err != nil || !ok {
		t.Fatalf("no hook job queued (%v)", err)
	}
	var got queue.HookJob
	if err := json.Unmarshal(job.Data(), &got); err != nil {
		t.Fatal(err)
	}
	if want := (queue.HookJob{BuildID: "b1", Hook: 0, Event: model.EventBuildFailed, Round: 1}); got != want {
		t.Errorf("hook job = %+v, want %+v", got, want)
	}
}
