package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway-build/slipway/metrics"
)

// Two sets of Slipway's metrics on one registry would report each series
// twice; the second New says so instead.
func TestNewRefusesARegistryThatHasThemAlready(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg); err != nil {
		t.Fatalf("first New: %v", err)
	}
	_, err := metrics.New(reg)
	if err == nil || !strings.Contains(err.Error(), "register metrics: duplicate metrics collector registration attempted") {
		t.Fatalf("second New: err = %v, want register metrics: duplicate metrics collector registration attempted", err)
	}
}
