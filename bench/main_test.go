package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain runs the benchmarks and, when SLIPWAY_WRITE_BENCHMARKS=1 (which
// only `make bench` sets), writes what they recorded to BENCHMARKS.md at
// the repository's root and the chart to bench/chart.png. A run of some
// benchmarks only must not replace the published whole:
// SLIPWAY_WRITE_BENCHMARKS=<directory> writes both there instead.
func TestMain(m *testing.M) {
	code := m.Run()
	if out := os.Getenv("SLIPWAY_WRITE_BENCHMARKS"); out != "" {
		root := out
		if out == "1" {
			root = ".."
		}
		if err := writeReport(root); err != nil {
			fmt.Fprintln(os.Stderr, "write BENCHMARKS.md:", err)
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

// writeReport writes BENCHMARKS.md and the chart under root; go test runs
// in the package's directory, so the repository's root is "..".
func writeReport(root string) error {
	if err := os.MkdirAll(filepath.Join(root, "bench"), 0o750); err != nil {
		return err
	}
	// Read before the chart is written: a rewritten chart would make the
	// commit look dirty.
	machine := ThisMachine("..")
	sections, series := recorded()
	png, err := Chart(series)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "bench", "chart.png"), png, 0o644); err != nil { // #nosec G306 -- a published chart
		return err
	}
	md := Markdown(machine, sections, "bench/chart.png")
	return os.WriteFile(filepath.Join(root, "BENCHMARKS.md"), []byte(md), 0o644) // #nosec G306 -- a published document
}
