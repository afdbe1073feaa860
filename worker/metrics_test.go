package worker_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/metrics/metricstest"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/worker"
)

// One build succeeds (its image pushed already, it only moves tags) and
// one is given up before any attempt claimed it: both are counted by
// state, and only the one that started has queue and build times. The
// worker's clock stands still 90 s after the builds were created.
func TestWorkerCountsFinishedBuildsAndTheirTimes(t *testing.T) {
	e := newEnv(t)
	e.createRepo(model.Repo{ID: "r1", Provider: "github", FullName: "acme/demo", Image: image, CreatedAt: created})
	ok := newBuild()
	ok.Digest = "sha256:" + sha + sha[:24]
	e.submit(ok)
	given := exhausted("r1")
	given.ID, given.Seq = "b2", 2
	e.submit(given)
	m, scrape := metricstest.Serve(t)
	jobs, err := e.queue.BuildJobs(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	w := &worker.Worker{
		Builds: e.store, Repos: e.store, Tags: e.store, Slots: e.store, Queue: e.queue, Jobs: jobs,
		Logger: e.logger(), RetryDelay: time.Millisecond, Metrics: m,
		Now:  func() time.Time { return created.Add(90 * time.Second) },
		Logs: func(string) io.WriteCloser { return nopLog{io.Discard} },
		Tagger: func(creds builder.Credentials) worker.Tagger {
			return credTagger{mu: new(sync.Mutex), seen: &seen, cred: creds}
		},
	}
	e.run(func(ctx context.Context) { w.Run(ctx, 1) })
	e.drained(queue.JobsStream)

	if got := e.build("b1"); got.Status != model.StatusSucceeded {
		t.Fatalf("build b1 ended %s (%s), want succeeded", got.Status, got.Error)
	}
	got := scrape()
	for state, want := range map[string]float64{"succeeded": 1, "failed": 1, "cancelled": 0} {
		if n := got.Counter("slipway_builds_finished_total", "state", state); n != want {
			t.Errorf("builds finished %s = %v, want %v", state, n, want)
		}
	}
	if n, sum := got.Histogram("slipway_build_queue_seconds"); n != 1 || sum != 90 {
		t.Errorf("queue times: %d observed, %v s in all; want 1, 90 s", n, sum)
	}
	if n, sum := got.Histogram("slipway_build_duration_seconds"); n != 1 || sum != 0 {
		t.Errorf("build times: %d observed, %v s in all; want 1, 0 s", n, sum)
	}
}

// An image build's steps are counted as its builder reports them: 9 of
// which 6 came from BuildKit's cache.
func TestWorkerCountsBuildStepsCachedAndNot(t *testing.T) {
	m, scrape := metricstest.Serve(t)
	runPushedBuildWith(t, nil, nil, m)
	got := scrape()
	for cached, want := range map[string]float64{"true": 6, "false": 3} {
		if n := got.Counter("slipway_build_steps_total", "cached", cached); n != want {
			t.Errorf("build steps cached=%s = %v, want %v", cached, n, want)
		}
	}
	if n := got.Counter("slipway_builds_finished_total", "state", "succeeded"); n != 1 {
		t.Errorf("builds finished succeeded = %v, want 1", n)
	}
}

func TestNotifierCountsDeliveryAttemptsByOutcome(t *testing.T) {
	tests := []struct {
		name      string
		failFirst int
		want      map[string]float64
	}{
		{"delivered on the third try", 2, map[string]float64{"retrying": 2, "delivered": 1, "failed": 0}},
		{"schedule runs out", 99, map[string]float64{"retrying": 2, "delivered": 0, "failed": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newNotifierRig(t, tt.failFirst)
			m, scrape := metricstest.Serve(t)
			r.metrics = m
			r.start(deploy.Schedule{0, 10 * time.Millisecond, 10 * time.Millisecond})
			r.drained(queue.HooksStream)

			got := scrape()
			for outcome, want := range tt.want {
				if n := got.Counter("slipway_deploy_deliveries_total", "outcome", outcome); n != want {
					t.Errorf("deliveries %s = %v, want %v", outcome, n, want)
				}
			}
		})
	}
}
