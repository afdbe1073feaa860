package worker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/worker"
)

// hookSecret is the example secret of the Standard Webhooks spec.
const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// hookReceiver is a deploy-hook endpoint on loopback that checks every call
// as a Standard Webhooks receiver does: a call whose webhook-id,
// webhook-timestamp and webhook-signature headers do not verify against
// the body is answered 401. It answers 500 to the first failFirst calls
// that verify, then 204.
type hookReceiver struct {
	URL       string
	mu        sync.Mutex
	failFirst int
	calls     []hookCall
}

type hookCall struct {
	ID       string
	Verified error
	Body     []byte
	At       time.Time
}

func startHookReceiver(t *testing.T, failFirst int) *hookReceiver {
	r := &hookReceiver{failFirst: failFirst}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		call := hookCall{
			ID: req.Header.Get(deploy.HeaderID), Body: body, At: time.Now(),
			Verified: deploy.Verify(hookSecret, req.Header, body, 5*time.Minute, time.Now()),
		}
		r.mu.Lock()
		r.calls = append(r.calls, call)
		fail := len(r.calls) <= r.failFirst
		r.mu.Unlock()
		switch {
		case call.Verified != nil:
			http.Error(w, call.Verified.Error(), http.StatusUnauthorized)
		case fail:
			http.Error(w, "receiver is warming up", http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *hookReceiver) received() []hookCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookCall(nil), r.calls...)
}

// notifierRig is a Notifier on an embedded JetStream store and queue,
// calling a hookReceiver, with a build whose deploy hook is to be called.
type notifierRig struct {
	*env
	recv    *hookReceiver
	metrics worker.DeliveryMetrics // nil counts nothing
}

func newNotifierRig(t *testing.T, failFirst int) *notifierRig {
	e := newEnv(t)
	recv := startHookReceiver(t, failFirst)
	e.createRepo(model.Repo{
		ID: "r1", Provider: "github", FullName: "acme/demo", Image: image, CreatedAt: created,
		Hooks: []model.Hook{{URL: recv.URL, Secret: hookSecret}},
	})
	finished := created.Add(3 * time.Minute)
	b := newBuild()
	b.Status, b.Digest, b.FinishedAt = model.StatusSucceeded, "sha256:"+sha+sha[:24], &finished
	// Neither the delivery nor its job names an event, as those made
	// before hooks had events: they are image.pushed.
	b.Deliveries = []model.Delivery{{Hook: 0, URL: recv.URL, MessageID: "msg_b1_0", Status: model.DeliveryPending}}
	e.createBuild(b)
	if err := e.queue.SubmitHook(testCtx(t), queue.HookJob{BuildID: "b1", Hook: 0}); err != nil {
		t.Fatal(err)
	}
	return &notifierRig{env: e, recv: recv}
}

func (r *notifierRig) start(schedule deploy.Schedule) {
	jobs, err := r.queue.HookJobs(testCtx(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	n := &worker.Notifier{
		Builds: r.store, Repos: r.store, Jobs: jobs, Schedule: schedule,
		PublicURL: "http://slipway.test", Logger: r.logger(), RetryDelay: 10 * time.Millisecond, Metrics: r.metrics,
	}
	r.run(func(ctx context.Context) { n.Run(ctx, 1) })
}

// attempt is a recorded attempt without its times.
type attempt struct {
	Code  int
	Error string
}

func (r *notifierRig) delivery() (string, []attempt) {
	d := r.build("b1").Deliveries[0]
	var out []attempt
	for _, a := range d.Attempts {
		out = append(out, attempt{a.StatusCode, a.Error})
	}
	return d.Status, out
}

func TestNotifierRetriesOnTheScheduleAndRecordsEachAttempt(t *testing.T) {
	r := newNotifierRig(t, 2)
	r.start(deploy.Schedule{0, 100 * time.Millisecond, 200 * time.Millisecond, time.Second, time.Second})
	r.drained(queue.HooksStream)

	calls := r.recv.received()
	if len(calls) != 3 {
		t.Fatalf("receiver got %d calls, want 3", len(calls))
	}
	for i, c := range calls {
		if c.Verified != nil || c.ID != "msg_b1_0" {
			t.Errorf("call %d: webhook-id %q, verification %v; want msg_b1_0, verified", i+1, c.ID, c.Verified)
		}
	}
	var body deploy.Payload
	if err := json.Unmarshal(calls[2].Body, &body); err != nil || body.Type != "image.pushed" || body.Build.ID != "b1" || body.Build.Commit != sha {
		t.Errorf("delivered body = %s (%v)", calls[2].Body, err)
	}
	// JetStream hands a job back no sooner than the delay it was given.
	for i, delay := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		if gap := calls[i+1].At.Sub(calls[i].At); gap < delay {
			t.Errorf("try %d came %s after try %d, before the schedule's %s", i+2, gap, i+1, delay)
		}
	}
	status, attempts := r.delivery()
	want := []attempt{{500, "HTTP 500: receiver is warming up"}, {500, "HTTP 500: receiver is warming up"}, {204, ""}}
	if status != model.DeliveryDelivered || !reflect.DeepEqual(attempts, want) {
		t.Errorf("delivery = %s %+v, want delivered %+v", status, attempts, want)
	}
}

func TestNotifierFailsTheDeliveryWhenTheScheduleRunsOut(t *testing.T) {
	r := newNotifierRig(t, 99)
	r.start(deploy.Schedule{0, 10 * time.Millisecond, 10 * time.Millisecond})
	r.drained(queue.HooksStream)

	status, attempts := r.delivery()
	fail := attempt{500, "HTTP 500: receiver is warming up"}
	if want := []attempt{fail, fail, fail}; status != model.DeliveryFailed || !reflect.DeepEqual(attempts, want) {
		t.Errorf("delivery = %s %+v, want failed %+v", status, attempts, want)
	}
}

func TestNotifierGivesUpOnADeletedRepository(t *testing.T) {
	r := newNotifierRig(t, 0)
	if err := r.store.DeleteRepo(testCtx(t), "r1"); err != nil {
		t.Fatal(err)
	}
	r.start(deploy.Schedule{0, time.Second, time.Second})
	r.drained(queue.HooksStream)

	status, attempts := r.delivery()
	if want := []attempt{{0, "repository no longer exists"}}; status != model.DeliveryFailed || !reflect.DeepEqual(attempts, want) {
		t.Errorf("delivery = %s %+v, want failed %+v", status, attempts, want)
	}
	if got := r.recv.received(); len(got) != 0 {
		t.Errorf("receiver got %d calls, want none", len(got))
	}
	if got := r.log.lines("deploy hook given up", "build=b1", `reason="repository no longer exists"`); len(got) != 1 {
		t.Errorf("give-up logged %d times, want once:\n%s", len(got), r.log.String())
	}
}
