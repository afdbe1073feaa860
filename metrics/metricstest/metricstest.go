// Package metricstest scrapes a /metrics endpoint the way Prometheus does
// and reads single samples out of the answer.
package metricstest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/slipway-build/slipway/metrics"
)

// Serve makes Slipway's metrics on a registry of their own and serves
// them at /metrics on a loopback server, as slipway serve does; scrape
// reads them from there.
func Serve(t *testing.T) (m *metrics.Metrics, scrape func() Families) {
	t.Helper()
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("metrics.New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return m, func() Families {
		t.Helper()
		return Scrape(t, srv.URL+"/metrics")
	}
}

// Scrape GETs url and parses the answer with Prometheus' text parser.
func Scrape(t *testing.T, url string) Families {
	t.Helper()
	resp, err := http.Get(url) // #nosec G107 -- the test's own loopback server
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return Families{t: t, fams: fams}
}

// Families are the metric families of one scrape.
type Families struct {
	t    *testing.T
	fams map[string]*dto.MetricFamily
}

// Counter is the value of the counter name whose labels are exactly
// labels (name, value pairs); a series the scrape lacks reads 0, as
// Prometheus' increase() would treat it.
func (f Families) Counter(name string, labels ...string) float64 {
	f.t.Helper()
	if m := f.find(name, labels); m != nil {
		return m.GetCounter().GetValue()
	}
	return 0
}

// Gauge is the value of the gauge name with exactly labels; the test
// fails when the scrape lacks it.
func (f Families) Gauge(name string, labels ...string) float64 {
	f.t.Helper()
	m := f.find(name, labels)
	if m == nil {
		f.t.Fatalf("scrape has no %s%v", name, labels)
	}
	return m.GetGauge().GetValue()
}

// Has tells whether the scrape has any series of name.
func (f Families) Has(name string) bool {
	return len(f.fams[name].GetMetric()) > 0
}

// Histogram is the sample count and sum of the histogram name with
// exactly labels.
func (f Families) Histogram(name string, labels ...string) (count uint64, sum float64) {
	f.t.Helper()
	m := f.find(name, labels)
	if m == nil {
		f.t.Fatalf("scrape has no %s%v", name, labels)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

func (f Families) find(name string, labels []string) *dto.Metric {
	f.t.Helper()
	if len(labels)%2 != 0 {
		f.t.Fatalf("labels %v are not name, value pairs", labels)
	}
	fam, ok := f.fams[name]
	if !ok {
		return nil
	}
	for _, m := range fam.GetMetric() {
		if matches(m.GetLabel(), labels) {
			return m
		}
	}
	return nil
}

func matches(got []*dto.LabelPair, want []string) bool {
	if len(got) != len(want)/2 {
		return false
	}
	for i := 0; i < len(want); i += 2 {
		found := false
		for _, l := range got {
			if l.GetName() == want[i] && l.GetValue() == want[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Sum adds up the counter name over all its series.
func (f Families) Sum(name string) float64 {
	total := 0.0
	if fam, ok := f.fams[name]; ok {
		for _, m := range fam.GetMetric() {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}
