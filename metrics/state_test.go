package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/metrics"
	"github.com/slipway-build/slipway/metrics/metricstest"
)

// fakeQueue answers what it is told, and remembers whether the scrape
// gave it a deadline.
type fakeQueue struct {
	state    metrics.QueueState
	err      error
	deadline time.Duration
}

func (q *fakeQueue) BuildQueue(ctx context.Context) (metrics.QueueState, error) {
	if d, ok := ctx.Deadline(); ok {
		q.deadline = time.Until(d)
	}
	return q.state, q.err
}

func TestWatchQueueReportsTheBacklogAtScrapeTime(t *testing.T) {
	m, scrape := metricstest.Serve(t)
	q := &fakeQueue{state: metrics.QueueState{Waiting: 4, Taken: 2, Oldest: 90*time.Second + 500*time.Millisecond}}
	if err := m.WatchQueue(q, nil); err != nil {
		t.Fatal(err)
	}
	got := scrape()
	for name, want := range map[string]float64{
		"slipway_build_queue_depth":              4,
		"slipway_build_queue_taken":              2,
		"slipway_build_queue_oldest_age_seconds": 90.5,
	} {
		if n := got.Gauge(name); n != want {
			t.Errorf("%s = %v, want %v", name, n, want)
		}
	}
	if q.deadline <= 0 || q.deadline > 2*time.Second {
		t.Errorf("the queue was asked with %v left, want at most 2 s", q.deadline)
	}

	// The next scrape asks again: the queue drained meanwhile.
	q.state = metrics.QueueState{}
	got = scrape()
	for _, name := range []string{"slipway_build_queue_depth", "slipway_build_queue_taken", "slipway_build_queue_oldest_age_seconds"} {
		if n := got.Gauge(name); n != 0 {
			t.Errorf("%s after draining = %v, want 0", name, n)
		}
	}
}

// A queue that fails leaves its series out and is logged; the rest of
// the scrape is served.
func TestWatchQueueLeavesOutAQueueThatFails(t *testing.T) {
	m, scrape := metricstest.Serve(t)
	var logs bytes.Buffer
	if err := m.WatchQueue(&fakeQueue{err: errors.New("nats: timeout")}, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	m.BuildFinished("succeeded")
	got := scrape()
	if got.Has("slipway_build_queue_depth") || got.Has("slipway_build_queue_oldest_age_seconds") {
		t.Errorf("scrape has queue series from a queue that failed")
	}
	if n := got.Counter("slipway_builds_finished_total", "state", "succeeded"); n != 1 {
		t.Errorf("builds finished succeeded = %v, want 1", n)
	}
	if !strings.Contains(logs.String(), `msg="metrics: read the build queue" err="nats: timeout"`) {
		t.Errorf("log = %q, want the queue's error", logs.String())
	}
}

type fakeDaemons []metrics.Daemon

func (d fakeDaemons) Daemons(context.Context) []metrics.Daemon { return d }

func TestWatchDaemonsReportsEachDaemon(t *testing.T) {
	m, scrape := metricstest.Serve(t)
	a, b := "tcp://127.0.0.1:1234", "unix:///run/buildkit/b.sock"
	if err := m.WatchDaemons(fakeDaemons{{Addr: a, Up: true, Running: 3}, {Addr: b, Up: false, Running: 0}}); err != nil {
		t.Fatal(err)
	}
	got := scrape()
	for _, c := range []struct {
		name, addr string
		want       float64
	}{
		{"slipway_buildkit_up", a, 1},
		{"slipway_buildkit_running_builds", a, 3},
		{"slipway_buildkit_up", b, 0},
		{"slipway_buildkit_running_builds", b, 0},
	} {
		if n := got.Gauge(c.name, "addr", c.addr); n != c.want {
			t.Errorf("%s{addr=%q} = %v, want %v", c.name, c.addr, n, c.want)
		}
	}
}

// Two builds, 7 steps of which 5 cached, then 3 of which none: the hit
// ratio is 5/10.
func TestBuildStepsCountCachedAndNot(t *testing.T) {
	m, scrape := metricstest.Serve(t)
	m.BuildSteps(7, 5)
	m.BuildSteps(3, 0)
	got := scrape()
	if n := got.Counter("slipway_build_steps_total", "cached", "true"); n != 5 {
		t.Errorf("cached steps = %v, want 5", n)
	}
	if n := got.Counter("slipway_build_steps_total", "cached", "false"); n != 5 {
		t.Errorf("steps run = %v, want 5", n)
	}
}
