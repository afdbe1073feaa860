package worker_test

import (
	"context"
	"encoding/json"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/deploy/cloudeventstest"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/worker"
)

// noTags moves no tag anywhere: the registry is not the point here.
type noTags struct{}

func (noTags) Tag(context.Context, string, string, string) error { return nil }

type discard struct{ io.Writer }

func (discard) Close() error { return nil }

// startBuilder runs one build loop on e that can finish a build whose image
// an earlier attempt pushed (it only moves tags then), and a Notifier.
func (e *env) startBuilder() {
	jobs, err := e.queue.BuildJobs(testCtx(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	w := &worker.Worker{
		Builds: e.store, Repos: e.store, Tags: e.store, Slots: e.store, Queue: e.queue, Jobs: jobs,
		Tagger: func(builder.Credentials) worker.Tagger { return noTags{} },
		Logs:   func(string) io.WriteCloser { return discard{io.Discard} },
		Logger: e.logger(), RetryDelay: time.Millisecond, WorkDir: e.t.TempDir(),
	}
	e.run(func(ctx context.Context) { w.Run(ctx, 1) })
	hooks, err := e.queue.HookJobs(testCtx(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	n := &worker.Notifier{
		Builds: e.store, Repos: e.store, Jobs: hooks, Schedule: deploy.Schedule{0, time.Second, time.Second},
		PublicURL: "http://slipway.test", Logger: e.logger(), RetryDelay: 10 * time.Millisecond,
	}
	e.run(func(ctx context.Context) { n.Run(ctx, 1) })
}

// pushedBuild is a queued build whose image an earlier attempt pushed: it
// succeeds without a builder.
func pushedBuild() model.Build {
	b := newBuild()
	b.Digest = "sha256:" + sha + sha[:24]
	return b
}

// delivery is a recorded delivery without its attempts.
type delivery struct {
	Hook                     int
	Event, MessageID, Status string
}

func deliveriesOf(b model.Build) []delivery {
	var out []delivery
	for _, d := range b.Deliveries {
		out = append(out, delivery{d.Hook, d.Event, d.MessageID, d.Status})
	}
	return out
}

// failedOnly is a repository with one CloudEvents hook that hears of
// failures only.
func failedOnly(e *env, recv *hookReceiver) {
	e.createRepo(model.Repo{
		ID: "r1", Provider: "github", FullName: "acme/demo", Image: image, CreatedAt: created,
		Hooks: []model.Hook{{URL: recv.URL, Secret: hookSecret, Events: []string{model.EventBuildFailed}, Format: model.FormatCloudEvents}},
	})
}

func TestBuildFailedHookHearsOfAFailureOnce(t *testing.T) {
	e := newEnv(t)
	recv := startHookReceiver(t, 0)
	failedOnly(e, recv)
	e.submit(exhausted("r1"))
	e.startBuilder()
	e.drained(queue.JobsStream)
	e.drained(queue.HooksStream)

	want := []delivery{{0, model.EventBuildFailed, "msg_b1_0_build_failed", model.DeliveryDelivered}}
	if got := deliveriesOf(e.build("b1")); !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries = %+v, want %+v", got, want)
	}
	calls := recv.received()
	if len(calls) != 1 {
		t.Fatalf("receiver got %d calls, want 1", len(calls))
	}
	if calls[0].Verified != nil || calls[0].ID != "msg_b1_0_build_failed" {
		t.Errorf("call: webhook-id %q, verification %v", calls[0].ID, calls[0].Verified)
	}
	if err := cloudeventstest.Validate(calls[0].Body); err != nil {
		t.Errorf("body %s: %v", calls[0].Body, err)
	}
	var ev deploy.CloudEvent
	if err := json.Unmarshal(calls[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "build.slipway.build.failed" || ev.ID != "msg_b1_0_build_failed" || ev.Subject != "b1" ||
		ev.Source != "http://slipway.test/api/v1/repos/r1" || ev.Data.Status != "failed" ||
		ev.Data.Error != "gave up after 10 attempts: retrying: buildkit unavailable: connection refused" {
		t.Errorf("event = %s", calls[0].Body)
	}
}

func TestBuildFailedHookHearsNothingOfASuccess(t *testing.T) {
	e := newEnv(t)
	recv := startHookReceiver(t, 0)
	failedOnly(e, recv)
	e.submit(pushedBuild())
	e.startBuilder()
	e.drained(queue.JobsStream)

	b := e.build("b1")
	if b.Status != model.StatusSucceeded || len(b.Deliveries) != 0 {
		t.Errorf("build %s with deliveries %+v, want succeeded with none", b.Status, b.Deliveries)
	}
	e.drained(queue.HooksStream)
	if got := recv.received(); len(got) != 0 {
		t.Errorf("receiver got %d calls, want none", len(got))
	}
}

// A hook that subscribes to the start and the push hears both, each under
// its own message id; a hook without events hears of the push, as before
// hooks had events.
func TestHooksHearTheStartAndThePush(t *testing.T) {
	e := newEnv(t)
	recv := startHookReceiver(t, 0)
	e.createRepo(model.Repo{
		ID: "r1", Provider: "github", FullName: "acme/demo", Image: image, CreatedAt: created,
		Hooks: []model.Hook{
			{URL: recv.URL, Secret: hookSecret},
			{URL: recv.URL, Secret: hookSecret, Events: []string{model.EventImagePushed, model.EventBuildStarted}},
		},
	})
	e.submit(pushedBuild())
	e.startBuilder()
	e.drained(queue.JobsStream)
	e.drained(queue.HooksStream)

	want := []delivery{
		{1, model.EventBuildStarted, "msg_b1_1_build_started", model.DeliveryDelivered},
		{0, model.EventImagePushed, "msg_b1_0", model.DeliveryDelivered},
		{1, model.EventImagePushed, "msg_b1_1", model.DeliveryDelivered},
	}
	if got := deliveriesOf(e.build("b1")); !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries = %+v, want %+v", got, want)
	}
	types := map[string]string{}
	for _, c := range recv.received() {
		var p deploy.Payload
		if err := json.Unmarshal(c.Body, &p); err != nil {
			t.Fatal(err)
		}
		types[c.ID] = p.Type + " " + p.Build.Status
	}
	wantTypes := map[string]string{
		"msg_b1_1_build_started": "build.started running",
		"msg_b1_0":               "image.pushed succeeded",
		"msg_b1_1":               "image.pushed succeeded",
	}
	if !reflect.DeepEqual(types, wantTypes) {
		t.Errorf("calls = %v, want %v", types, wantTypes)
	}
}
