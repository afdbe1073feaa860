package webhook_test

import (
	"testing"

	"github.com/slipway-build/slipway/metrics/metricstest"
	"github.com/slipway-build/slipway/webhook"
)

// countMetrics gives the handler Slipway's metrics, served on loopback;
// the function returned scrapes them.
func (e *env) countMetrics() func() metricstest.Families {
	e.t.Helper()
	m, scrape := metricstest.Serve(e.t)
	e.h.Metrics = m
	return scrape
}

func TestMetricsCountWebhooksByHostAndReason(t *testing.T) {
	e := newEnv(t, nil)
	scrape := e.countMetrics()
	push := gh(t, "push-branch.json")
	before := scrape()
	if n := before.Sum("slipway_webhooks_received_total"); n != 0 {
		t.Fatalf("webhooks received before any = %v, want 0", n)
	}

	code, resp := e.send(delivery{event: "push", id: "d1", body: push})
	accepted(t, code, resp, idMain)
	e.send(delivery{event: "push", id: "d2", body: push, sig: ptr("sha256=" + webhook.SignHMAC(push, "guess"))})
	e.send(delivery{event: "push", id: "d3", body: push, sig: ptr("")})
	e.send(delivery{path: "/hooks/nowhere", event: "push", id: "d4", body: push})

	got := scrape()
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"slipway_webhooks_received_total", []string{"host", "github"}, 3},
		{"slipway_webhooks_received_total", []string{"host", "unknown"}, 1},
		{"slipway_webhooks_rejected_total", []string{"host", "github", "reason", "bad_signature"}, 2},
		{"slipway_webhooks_rejected_total", []string{"host", "unknown", "reason", "unknown_host"}, 1},
	} {
		if n := got.Counter(c.name, c.labels...); n != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, n, c.want)
		}
	}
	if n := got.Sum("slipway_webhooks_rejected_total"); n != 3 {
		t.Errorf("webhooks rejected in all = %v, want 3", n)
	}
}
