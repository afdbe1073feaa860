package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ScrapeTimeout bounds what one scrape waits for NATS or a BuildKit
// daemon: a scrape that hangs tells nothing, one without the series says
// the source did not answer.
const ScrapeTimeout = 2 * time.Second

// QueueState is the build queue at one moment.
type QueueState struct {
	// Waiting is the jobs no worker has taken yet.
	Waiting uint64
	// Taken is the jobs workers took and have not finished.
	Taken uint64
	// Oldest is the age of the oldest job not finished, waiting or taken;
	// zero when there is none.
	Oldest time.Duration
}

// Queue reads the build queue when Prometheus scrapes.
type Queue interface {
	BuildQueue(ctx context.Context) (QueueState, error)
}

// Daemon is one BuildKit daemon builds run on.
type Daemon struct {
	Addr    string
	Up      bool
	Running int
}

// Daemons lists the BuildKit daemons when Prometheus scrapes.
type Daemons interface {
	Daemons(ctx context.Context) []Daemon
}

// WatchQueue reports q's state on every scrape. A queue that does not
// answer within ScrapeTimeout leaves its series out of that scrape, and
// is logged on log.
func (m *Metrics) WatchQueue(q Queue, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	return register(m.reg, &queueCollector{q: q, log: log,
		waiting: prometheus.NewDesc("slipway_build_queue_depth", "Build jobs waiting for a worker.", nil, nil),
		taken:   prometheus.NewDesc("slipway_build_queue_taken", "Build jobs workers took and have not finished.", nil, nil),
		oldest:  prometheus.NewDesc("slipway_build_queue_oldest_age_seconds", "Age of the oldest build job not finished, waiting or taken; 0 when the queue is empty.", nil, nil),
	})
}

// WatchDaemons reports d's BuildKit daemons on every scrape.
func (m *Metrics) WatchDaemons(d Daemons) error {
	return register(m.reg, &daemonCollector{d: d,
		up:      prometheus.NewDesc("slipway_buildkit_up", "1 when the BuildKit daemon at addr is taking builds, 0 when it is down.", []string{"addr"}, nil),
		running: prometheus.NewDesc("slipway_buildkit_running_builds", "Solves (builds, test stages, cache exports) running on the BuildKit daemon at addr.", []string{"addr"}, nil),
	})
}

func register(reg *prometheus.Registry, c prometheus.Collector) error {
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	return nil
}

type queueCollector struct {
	q                      Queue
	log                    *slog.Logger
	waiting, taken, oldest *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waiting
	ch <- c.taken
	ch <- c.oldest
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	s, err := c.q.BuildQueue(ctx)
	if err != nil {
		c.log.Warn("metrics: read the build queue", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(s.Waiting))
	ch <- prometheus.MustNewConstMetric(c.taken, prometheus.GaugeValue, float64(s.Taken))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, s.Oldest.Seconds())
}

type daemonCollector struct {
	d           Daemons
	up, running *prometheus.Desc
}

func (c *daemonCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.running
}

func (c *daemonCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	for _, d := range c.d.Daemons(ctx) {
		up := 0.0
		if d.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, d.Addr)
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(d.Running), d.Addr)
	}
}
