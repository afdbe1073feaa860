package worker_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/worker"
)

// startWorker runs one build loop on e that reads repositories through
// repos. It has no builder: these tests end builds before they would build.
func (e *env) startWorker(repos worker.Repos) {
	jobs, err := e.queue.BuildJobs(testCtx(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	w := &worker.Worker{
		Builds: e.store, Repos: repos, Tags: e.store, Slots: e.store, Queue: e.queue, Jobs: jobs,
		// Hand-backs wait RetryDelay doubled per attempt made: 0.5 s
		// after ten.
		Logger: e.logger(), RetryDelay: time.Millisecond,
	}
	e.run(func(ctx context.Context) { w.Run(ctx, 1) })
}

// statusJobs takes every queued commit status, in order.
func (e *env) statusJobs() []queue.StatusJob {
	e.t.Helper()
	ctx := testCtx(e.t)
	c, err := e.queue.StatusJobs(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []queue.StatusJob
	for {
		job, ok, err := c.Next(ctx, 300*time.Millisecond)
		if err != nil || !ok {
			return out
		}
		var sj queue.StatusJob
		if err := json.Unmarshal(job.Data(), &sj); err != nil {
			e.t.Fatalf("status job %s: %v", job.Data(), err)
		}
		out = append(out, sj)
		if err := job.Ack(ctx); err != nil {
			e.t.Fatal(err)
		}
	}
}

// exhausted is a queued build whose earlier attempts all failed for
// Slipway's own reasons.
func exhausted(repoID string) model.Build {
	b := newBuild()
	b.RepoID, b.Attempts, b.Error = repoID, queue.MaxDeliver, "retrying: buildkit unavailable: connection refused"
	return b
}

func (e *env) submit(b model.Build) {
	e.t.Helper()
	if _, err := e.queue.SubmitBuild(testCtx(e.t), b); err != nil {
		e.t.Fatal(err)
	}
}

// ended is how a build ended, without times.
type ended struct {
	Status, Error string
	GaveUp        bool
}

func endOf(b model.Build) ended { return ended{b.Status, b.Error, b.GaveUp} }

func TestWorkerRecordsThatItGaveUpAndReportsError(t *testing.T) {
	e := newEnv(t)
	e.createRepo(model.Repo{ID: "r1", Provider: "github", FullName: "acme/demo", Image: image, CreatedAt: created})
	e.submit(exhausted("r1"))

	e.startWorker(e.store)
	e.drained(queue.JobsStream)

	want := ended{model.StatusFailed, "gave up after 10 attempts: retrying: buildkit unavailable: connection refused", true}
	if got := endOf(e.build("b1")); got != want {
		t.Errorf("build ended %+v, want %+v", got, want)
	}
	statuses := []queue.StatusJob{{BuildID: "b1", State: forge.Pending}, {BuildID: "b1", State: forge.Error}}
	if got := e.statusJobs(); !reflect.DeepEqual(got, statuses) {
		t.Errorf("status jobs = %+v, want %+v", got, statuses)
	}
}

// A passing failure to read the repository hands the job back; it does not
// fail the build.
func TestWorkerHandsBackOnAPassingRepositoryReadError(t *testing.T) {
	e := newEnv(t)
	e.createRepo(model.Repo{ID: "r1", Provider: "github", FullName: "acme/demo", Image: image, CreatedAt: created})
	e.submit(exhausted("r1"))
	repos := &flakyRepos{Repos: e.store}
	repos.failures.Store(1)

	e.startWorker(repos)
	e.drained(queue.JobsStream)

	// The end reads the hooks afresh: a failed build may call them too.
	if n := repos.calls.Load(); n != 3 {
		t.Errorf("repository read %d times, want 3 (one failure, one retry, the hooks at the end)", n)
	}
	if got := endOf(e.build("b1")); !got.GaveUp {
		t.Errorf("build ended %+v; want the retried job to reach the give-up, not fail on the read", got)
	}
	if got := e.log.lines("build interrupted; job handed back", "build=b1", "read repository r1: nats: timeout"); len(got) != 1 {
		t.Errorf("hand-back logged %d times, want once:\n%s", len(got), e.log.String())
	}
}

// A repository deleted after the push fails its build for that reason.
func TestWorkerFailsTheBuildOfADeletedRepository(t *testing.T) {
	e := newEnv(t)
	b := newBuild()
	b.RepoID = "gone"
	e.submit(b)

	e.startWorker(e.store)
	e.drained(queue.JobsStream)

	want := ended{model.StatusFailed, "repository gone no longer exists", false}
	if got := endOf(e.build("b1")); got != want {
		t.Errorf("build ended %+v, want %+v", got, want)
	}
	statuses := []queue.StatusJob{{BuildID: "b1", State: forge.Pending}, {BuildID: "b1", State: forge.Failure}}
	if got := e.statusJobs(); !reflect.DeepEqual(got, statuses) {
		t.Errorf("status jobs = %+v, want %+v", got, statuses)
	}
}
