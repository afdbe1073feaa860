// Package bench measures Slipway side by side with doing the same work by
// hand: `make bench` runs its benchmarks on the real parts (NATS,
// BuildKit, the registry, git) and writes BENCHMARKS.md and its chart.
// Each benchmark records the section it measured; TestMain writes them
// in order when SLIPWAY_WRITE_BENCHMARKS=1, which only `make bench` sets.
package bench

import (
	"sort"
	"sync"
)

// Section is one part of BENCHMARKS.md: Order places it (1-7, the
// issue's numbering), Body is Markdown (tables of medians, p50/p99,
// ratios, with what was measured against what).
type Section struct {
	Order int
	Title string
	Body  string
}

// Series is one line of the chart: Y values at X, in Unit.
type Series struct {
	Chart string // which panel: "overhead" (ms per stage) or "ingest" (requests/s by concurrency)
	Name  string
	Unit  string
	X     []float64
	Y     []float64
	// Labels name an "overhead" series' bars, one per Y; without them
	// the series' Name labels its first bar.
	Labels []string
}

var (
	mu       sync.Mutex
	sections []Section
	series   []Series
)

// Record keeps a section for BENCHMARKS.md.
func Record(s Section) {
	mu.Lock()
	defer mu.Unlock()
	sections = append(sections, s)
}

// Plot keeps a series for the chart.
func Plot(s Series) {
	mu.Lock()
	defer mu.Unlock()
	series = append(series, s)
}

// recorded returns the sections in order and the series.
func recorded() ([]Section, []Series) {
	mu.Lock()
	defer mu.Unlock()
	out := append([]Section(nil), sections...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Order < out[j].Order })
	return out, append([]Series(nil), series...)
}
