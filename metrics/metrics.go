// Package metrics counts what Slipway does for Prometheus: webhooks,
// finished builds, their steps taken from the cache and deploy hook
// deliveries, and reads the build queue and the BuildKit daemons when
// Prometheus scrapes; served at /metrics.
//
// Every collector lives on the Registry passed to New, never on
// Prometheus' global one, so that tests and several servers in one process
// count apart.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds Slipway's collectors. Its methods satisfy
// webhook.Metrics, worker.BuildMetrics and worker.DeliveryMetrics.
type Metrics struct {
	reg          *prometheus.Registry
	webhooks     *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	builds       *prometheus.CounterVec
	buildSeconds prometheus.Histogram
	queueSeconds prometheus.Histogram
	steps        *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
}

// durations are the histogram buckets of queue waits and builds, in
// seconds: from a cached rebuild to the hour a build may take by default.
var durations = []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600}

// New registers Slipway's collectors on reg.
func New(reg *prometheus.Registry) (*Metrics, error) {
	m := &Metrics{
		reg: reg,
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_webhooks_received_total",
			Help: "Webhook requests received, by git host.",
		}, []string{"host"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_webhooks_rejected_total",
			Help: "Webhook requests answered with an error, by git host and reason.",
		}, []string{"host", "reason"}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_builds_finished_total",
			Help: "Builds a worker finished, by final state.",
		}, []string{"state"}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slipway_build_duration_seconds",
			Help:    "Time from a build's start to its end, of builds a worker finished.",
			Buckets: durations,
		}),
		queueSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slipway_build_queue_seconds",
			Help:    "Time from a build's creation to its (last) start, of builds a worker finished.",
			Buckets: durations,
		}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_build_steps_total",
			Help: "Steps (BuildKit vertices) of image builds that completed, by whether BuildKit took them from its cache.",
		}, []string{"cached"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_deploy_deliveries_total",
			Help: "Deploy hook delivery attempts, by outcome (delivered, retrying, failed).",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.webhooks, m.rejected, m.builds, m.buildSeconds, m.queueSeconds, m.steps, m.deliveries} {
		if err := register(reg, c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Handler serves the registry's metrics in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// WebhookReceived counts a webhook request to a known git host.
func (m *Metrics) WebhookReceived(host string) { m.webhooks.WithLabelValues(host).Inc() }

// WebhookRejected counts a webhook request answered with an error. reason
// is one of a fixed set of words, never the error's text.
func (m *Metrics) WebhookRejected(host, reason string) {
	m.rejected.WithLabelValues(host, reason).Inc()
}

// BuildFinished counts a build a worker brought to its final state.
func (m *Metrics) BuildFinished(state string) { m.builds.WithLabelValues(state).Inc() }

// BuildTimes records how long a finished build waited in the queue and
// how long it ran.
func (m *Metrics) BuildTimes(queued, ran time.Duration) {
	m.queueSeconds.Observe(queued.Seconds())
	m.buildSeconds.Observe(ran.Seconds())
}

// BuildSteps counts an image build's completed steps, cached of them from
// BuildKit's cache: both series exist from the first build, so that the
// hit ratio divides by a total that is there.
func (m *Metrics) BuildSteps(total, cached int) {
	m.steps.WithLabelValues("true").Add(float64(cached))
	m.steps.WithLabelValues("false").Add(float64(total - cached))
}

// DeliveryAttempted counts one deploy hook delivery attempt by outcome.
func (m *Metrics) DeliveryAttempted(outcome string) { m.deliveries.WithLabelValues(outcome).Inc() }
