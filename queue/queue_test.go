package queue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/store"
)

// testKeys seal the repositories of every store the tests open; stores
// sharing one NATS must share their keys.
var testKeys = seal.Ephemeral()

// startServer runs a real embedded JetStream server on dir; it is shut down
// when the test ends (after every connection made through open).
func startServer(t *testing.T, dir string) *natsd.Server {
	t.Helper()
	e, err := natsd.Start(natsd.Options{StoreDir: dir})
	if err != nil {
		t.Fatalf("natsd.Start: %v", err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// open connects to e and opens the records and the queue on them, as
// slipway serve does; js is the same connection's JetStream, for looking at
// the streams.
func open(t *testing.T, e *natsd.Server) (*store.Store, *queue.Queue, jetstream.JetStream) {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	st, err := store.Open(testCtx(t), nc, store.Options{Replicas: 1, Keys: testKeys})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	q, err := queue.Open(testCtx(t), nc, st, queue.Options{})
	if err != nil {
		t.Fatalf("queue.Open: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return st, q, js
}

// newQueue is a Queue and its Store on a fresh embedded server with its own
// store dir.
func newQueue(t *testing.T) (*store.Store, *queue.Queue, jetstream.JetStream) {
	t.Helper()
	return open(t, startServer(t, t.TempDir()))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func newBuild(id, repoID string, age int) model.Build {
	return model.Build{
		ID:        id,
		RepoID:    repoID,
		Ref:       "refs/heads/main",
		Commit:    strings.Repeat("a", 40),
		Status:    model.StatusQueued,
		Image:     "registry.example/app",
		Tags:      []string{"latest"},
		CloneURL:  "https://git.example/app.git",
		Trigger:   "push",
		CreatedAt: base.Add(time.Duration(age) * time.Minute),
	}
}

func TestSubmitBuildTwiceQueuesOneJob(t *testing.T) {
	st, q, _ := newQueue(t)
	ctx := testCtx(t)

	b := newBuild("b1", "r1", 0)
	dup, err := q.SubmitBuild(ctx, b)
	if err != nil || dup {
		t.Fatalf("first SubmitBuild = %v, %v; want not duplicate", dup, err)
	}
	dup, err = q.SubmitBuild(ctx, b)
	if err != nil || !dup {
		t.Fatalf("second SubmitBuild = %v, %v; want duplicate", dup, err)
	}
	if got, err := st.GetBuild(ctx, "b1"); err != nil || got.Status != model.StatusQueued {
		t.Fatalf("build record after submit = %+v, %v", got, err)
	}

	jobs, err := q.BuildJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := jobs.Pending(ctx); err != nil || n != 1 {
		t.Fatalf("Pending = %d, %v; want 1", n, err)
	}
	job, ok, err := jobs.Next(ctx, 2*time.Second)
	if err != nil || !ok {
		t.Fatalf("Next = %v, %v; want a job", ok, err)
	}
	var got model.Build
	if err := json.Unmarshal(job.Data(), &got); err != nil {
		t.Fatalf("job payload: %v", err)
	}
	if got.ID != "b1" || got.CloneURL != b.CloneURL || got.Commit != b.Commit {
		t.Fatalf("job payload = %+v", got)
	}
	if job.Delivered() != 1 {
		t.Fatalf("Delivered = %d, want 1", job.Delivered())
	}
	if _, ok, err := jobs.Next(ctx, 300*time.Millisecond); err != nil || ok {
		t.Fatalf("second Next = %v, %v; want no job (duplicate must not queue)", ok, err)
	}
	if err := job.Ack(ctx); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	// The job is done, but a redelivered webhook still must not build again.
	dup, err = q.SubmitBuild(ctx, b)
	if err != nil || !dup {
		t.Fatalf("SubmitBuild after Ack = %v, %v; want duplicate", dup, err)
	}
	if _, ok, err := jobs.Next(ctx, 300*time.Millisecond); err != nil || ok {
		t.Fatalf("Next after resubmitting an acked job = %v, %v; want none", ok, err)
	}
}

func TestUnackedJobIsRedeliveredAndAckRemovesIt(t *testing.T) {
	_, q, js := newQueue(t)
	ctx := testCtx(t)

	if _, err := q.SubmitBuild(ctx, newBuild("b1", "r1", 0)); err != nil {
		t.Fatal(err)
	}
	jobs, err := q.BuildJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	job, ok, err := jobs.Next(ctx, 2*time.Second)
	if err != nil || !ok {
		t.Fatalf("Next = %v, %v", ok, err)
	}
	first := bytes.Clone(job.Data())
	if err := job.Extend(); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	retried := time.Now()
	if err := job.Retry(100 * time.Millisecond); err != nil {
		t.Fatalf("Retry: %v", err)
	}

	again, ok, err := jobs.Next(ctx, 3*time.Second)
	if err != nil || !ok {
		t.Fatalf("Next after Retry = %v, %v; want the job again", ok, err)
	}
	if waited := time.Since(retried); waited < 90*time.Millisecond {
		t.Fatalf("job came back after %v, before its retry delay", waited)
	}
	if !bytes.Equal(again.Data(), first) {
		t.Fatalf("redelivered payload differs:\n%s\n%s", again.Data(), first)
	}
	if again.Delivered() != 2 {
		t.Fatalf("Delivered after one retry = %d, want 2", again.Delivered())
	}
	if err := again.Ack(ctx); err != nil {
		t.Fatalf("Ack: %v", err)
	}

	if _, ok, err := jobs.Next(ctx, 300*time.Millisecond); err != nil || ok {
		t.Fatalf("Next after Ack = %v, %v; want none", ok, err)
	}
	st, err := js.Stream(ctx, queue.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Fatalf("jobs stream holds %d messages after Ack, want 0", info.State.Msgs)
	}
}

func TestJobsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)

	e1, err := natsd.Start(natsd.Options{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, q1, _ := open(t, e1)
	b := newBuild("b1", "r1", 0)
	_, err = q1.SubmitBuild(ctx, b)
	e1.Shutdown()
	if err != nil {
		t.Fatalf("before restart: %v", err)
	}

	st, q2, _ := open(t, startServer(t, dir))
	if got, err := st.GetBuild(ctx, "b1"); err != nil || got.Status != model.StatusQueued {
		t.Fatalf("build record after restart = %+v, %v", got, err)
	}
	// The dedup window survives too: the same build is not queued twice.
	if dup, err := q2.SubmitBuild(ctx, b); err != nil || !dup {
		t.Fatalf("SubmitBuild after restart = %v, %v; want duplicate", dup, err)
	}
	jobs, err := q2.BuildJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	job, ok, err := jobs.Next(ctx, 2*time.Second)
	if err != nil || !ok {
		t.Fatalf("Next after restart = %v, %v; want the job submitted before it", ok, err)
	}
	var jb model.Build
	if err := json.Unmarshal(job.Data(), &jb); err != nil || jb.ID != "b1" {
		t.Fatalf("job after restart = %s, %v", job.Data(), err)
	}
	if err := job.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := jobs.Next(ctx, 300*time.Millisecond); err != nil || ok {
		t.Fatalf("Next after Ack = %v, %v; want none", ok, err)
	}
}

func TestOpenCreatesTheWorkQueues(t *testing.T) {
	e := startServer(t, t.TempDir())
	ctx := testCtx(t)
	_, _, js := open(t, e)
	open(t, e) // a second process opening the same NATS changes nothing
	var names []string
	lister := js.StreamNames(ctx)
	for n := range lister.Name() {
		names = append(names, n)
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{queue.JobsStream, queue.HooksStream, queue.StatusStream} {
		if !strings.Contains(","+strings.Join(names, ",")+",", ","+want+",") {
			t.Errorf("streams after Open = %v, missing %s", names, want)
		}
	}
}

// A redelivered webhook must be recognised for at least GitHub's 72-hour
// manual redelivery window, not JetStream's 2-minute default.
func TestDedupWindowOutlivesRedeliveryWindow(t *testing.T) {
	_, q, js := newQueue(t)
	ctx := context.Background()
	for _, name := range []string{queue.JobsStream, queue.HooksStream, queue.StatusStream} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Duplicates < 72*time.Hour {
			t.Errorf("%s de-duplicates for %s, want at least 72h", name, info.Config.Duplicates)
		}
	}
	jobs, err := q.BuildJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if jobs.AckWait() != queue.AckWait {
		t.Errorf("default ack wait %s", jobs.AckWait())
	}
}

// statusJobs takes every queued commit status, in order, acking each.
func statusJobs(t *testing.T, q *queue.Queue) []queue.StatusJob {
	t.Helper()
	ctx := testCtx(t)
	c, err := q.StatusJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []queue.StatusJob
	for {
		job, ok, err := c.Next(ctx, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		var sj queue.StatusJob
		if err := json.Unmarshal(job.Data(), &sj); err != nil {
			t.Fatalf("status job %s: %v", job.Data(), err)
		}
		out = append(out, sj)
		if err := job.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// Enqueue stores, queues and supersedes: the builds of older pushes of a
// ref are cancelled, a queued one at once with its cancelled status queued,
// a running one by a request its worker acts on.
func TestEnqueueSupersedesOlderPushes(t *testing.T) {
	st, q, _ := newQueue(t)
	ctx := testCtx(t)
	push := func(id string, seq int64) queue.Queued {
		t.Helper()
		b := newBuild(id, "r1", int(seq))
		b.Seq = seq
		got, err := q.Enqueue(ctx, b, true)
		if err != nil || got.CancelErr != nil {
			t.Fatalf("Enqueue(%s) = %+v, %v", id, got, err)
		}
		return got
	}
	push("q1", 1)
	if got := push("r2", 2); !reflect.DeepEqual(got.Cancelled, []string{"q1"}) {
		t.Errorf("push 2 cancelled %v, want [q1]", got.Cancelled)
	}
	if _, err := st.UpdateBuild(ctx, "r2", func(b *model.Build) error { b.Status = model.StatusRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := push("r2b", 2); len(got.Cancelled) != 0 {
		t.Errorf("another build of push 2 cancelled %v, want nothing", got.Cancelled)
	}
	if got := push("n3", 3); !reflect.DeepEqual(got.Cancelled, []string{"r2", "r2b"}) {
		t.Errorf("push 3 cancelled %v, want [r2 r2b]", got.Cancelled)
	}
	if got := push("late", 2); !reflect.DeepEqual(got.Cancelled, []string{"late"}) {
		t.Errorf("a late older push cancelled %v, want itself", got.Cancelled)
	}
	if again := push("n3", 3); !again.Duplicate || len(again.Cancelled) != 0 {
		t.Errorf("the same push again = %+v, want a duplicate that cancels nothing", again)
	}

	want := map[string]struct {
		status    string
		requested bool
		by        string
	}{
		"q1":   {model.StatusCancelled, false, "r2"},
		"r2":   {model.StatusRunning, true, "n3"},
		"r2b":  {model.StatusCancelled, false, "n3"},
		"n3":   {model.StatusQueued, false, ""},
		"late": {model.StatusCancelled, false, "n3"},
	}
	for id, w := range want {
		b, err := st.GetBuild(ctx, id)
		if err != nil || b.Status != w.status || b.CancelRequested != w.requested || b.SupersededBy != w.by {
			t.Errorf("%s = %s, cancel requested %v, by %q, %v; want %s, %v, by %q", id, b.Status, b.CancelRequested, b.SupersededBy, err, w.status, w.requested, w.by)
		}
	}
	// Every queued build had its pending status queued; the three ended
	// here had their cancelled one too, and the running one none yet.
	wantStatuses := []queue.StatusJob{
		{BuildID: "q1", State: forge.Pending},
		{BuildID: "r2", State: forge.Pending},
		{BuildID: "q1", State: forge.Cancelled},
		{BuildID: "r2b", State: forge.Pending},
		{BuildID: "n3", State: forge.Pending},
		{BuildID: "r2b", State: forge.Cancelled},
		{BuildID: "late", State: forge.Pending},
		{BuildID: "late", State: forge.Cancelled},
	}
	if got := statusJobs(t, q); !reflect.DeepEqual(got, wantStatuses) {
		t.Errorf("status jobs = %+v\nwant          %+v", got, wantStatuses)
	}
}

func TestEnqueueRecordsASkippedPushWithoutAJob(t *testing.T) {
	st, q, _ := newQueue(t)
	ctx := testCtx(t)
	b := newBuild("s1", "r1", 0)
	b.Status, b.Reason, b.Seq = model.StatusSkipped, "[skip ci]", 1
	got, err := q.Enqueue(ctx, b, true)
	if err != nil || got.Duplicate || got.Build.Status != model.StatusSkipped {
		t.Fatalf("Enqueue(skipped) = %+v, %v", got, err)
	}
	if last, err := st.LastCommit(ctx, "r1", b.Ref); err != nil || last != b.Commit {
		t.Errorf("LastCommit = %q, %v; want the skipped push's %s", last, err, b.Commit)
	}
	jobs, err := q.BuildJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := jobs.Pending(ctx); err != nil || n != 0 {
		t.Errorf("build jobs pending = %d, %v; want none for a skipped push", n, err)
	}
	if got := statusJobs(t, q); len(got) != 0 {
		t.Errorf("status jobs = %+v; want none (its status is posted when reported)", got)
	}
}

func TestCancel(t *testing.T) {
	st, q, _ := newQueue(t)
	ctx := testCtx(t)
	if _, err := q.SubmitBuild(ctx, newBuild("b1", "r1", 0)); err != nil {
		t.Fatal(err)
	}
	if active, err := q.Cancel(ctx, "b1", "cancelled through the API", ""); err != nil || !active {
		t.Fatalf("Cancel(queued) = %v, %v; want active", active, err)
	}
	if active, err := q.Cancel(ctx, "b1", "again", ""); err != nil || active {
		t.Errorf("Cancel(cancelled) = %v, %v; want not active", active, err)
	}
	if active, err := q.Cancel(ctx, "missing", "x", ""); err != nil || active {
		t.Errorf("Cancel(missing) = %v, %v; want not active, no error", active, err)
	}
	if b, _ := st.GetBuild(ctx, "b1"); b.Status != model.StatusCancelled || b.Reason != "cancelled through the API" {
		t.Errorf("build after Cancel = %s (%s)", b.Status, b.Reason)
	}
	want := []queue.StatusJob{{BuildID: "b1", State: forge.Pending}, {BuildID: "b1", State: forge.Cancelled}}
	if got := statusJobs(t, q); !reflect.DeepEqual(got, want) {
		t.Errorf("status jobs = %+v, want %+v", got, want)
	}
}

// One state of one build is queued once, however often it is submitted.
func TestSubmitStatusOncePerState(t *testing.T) {
	_, q, _ := newQueue(t)
	ctx := testCtx(t)
	for _, st := range []forge.State{forge.Running, forge.Running, forge.Success, forge.Running} {
		if err := q.SubmitStatus(ctx, "b1", st); err != nil {
			t.Fatal(err)
		}
	}
	want := []queue.StatusJob{{BuildID: "b1", State: forge.Running}, {BuildID: "b1", State: forge.Success}}
	if got := statusJobs(t, q); !reflect.DeepEqual(got, want) {
		t.Errorf("status jobs = %+v, want %+v", got, want)
	}
}

// Next waits for a job no longer than asked, and not at all once its
// context ends.
func TestNextWaitsNoLongerThanItsContext(t *testing.T) {
	_, q, _ := newQueue(t)
	jobs, err := q.BuildJobs(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, ok, err := jobs.Next(testCtx(t), 300*time.Millisecond); ok || err != nil {
		t.Fatalf("Next on an empty queue = %v, %v; want no job, no error", ok, err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("Next with a 300ms wait took %s", d)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	if _, ok, err := jobs.Next(ctx, 5*time.Second); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("Next cancelled = %v, %v; want context.Canceled", ok, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Next returned %s after its context ended, want at once", d)
	}
}

// The backlog counts jobs waiting and taken, and ages the oldest not yet
// acknowledged: b1, queued 2 s before b2 and b3, until its ack.
func TestBuildBacklog(t *testing.T) {
	_, q, _ := newQueue(t)
	ctx := testCtx(t)
	backlog := func() queue.Backlog {
		t.Helper()
		b, err := q.BuildBacklog(ctx)
		if err != nil {
			t.Fatalf("BuildBacklog: %v", err)
		}
		return b
	}
	if got := backlog(); got != (queue.Backlog{}) {
		t.Fatalf("empty queue's backlog = %+v, want all zero", got)
	}
	for i, id := range []string{"b1", "b2", "b3"} {
		if _, err := q.SubmitBuild(ctx, newBuild(id, "r1", i)); err != nil {
			t.Fatal(err)
		}
		if id == "b1" {
			time.Sleep(2 * time.Second)
		}
	}
	// No worker has made the consumer yet: all three wait.
	if got := backlog(); got.Waiting != 3 || got.Taken != 0 || got.Oldest < 2*time.Second || got.Oldest > 15*time.Second {
		t.Fatalf("backlog before any worker = %+v, want 3 waiting, 0 taken, the oldest 2 s to 15 s old", got)
	}
	jobs, err := q.BuildJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	job, ok, err := jobs.Next(ctx, 2*time.Second)
	if err != nil || !ok {
		t.Fatalf("Next = %v, %v; want a job", ok, err)
	}
	if got := backlog(); got.Waiting != 2 || got.Taken != 1 || got.Oldest < 2*time.Second {
		t.Fatalf("backlog with b1 taken = %+v, want 2 waiting, 1 taken, the oldest at least 2 s old", got)
	}
	if err := job.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if got := backlog(); got.Waiting != 2 || got.Taken != 0 || got.Oldest >= 2*time.Second {
		t.Fatalf("backlog after b1's ack = %+v, want 2 waiting, 0 taken, the oldest (b2) under 2 s old", got)
	}
	for range 2 {
		job, ok, err := jobs.Next(ctx, 2*time.Second)
		if err != nil || !ok {
			t.Fatalf("Next = %v, %v; want a job", ok, err)
		}
		if err := job.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := backlog(); got != (queue.Backlog{}) {
		t.Fatalf("backlog after every ack = %+v, want all zero", got)
	}
}
