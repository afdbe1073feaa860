package worker

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// stages times the parts of one build attempt for its log's "==> stages:"
// line, so the overhead Slipway adds around BuildKit's solve can be read
// per stage from any build. Monotonic wall time, not the worker's clock:
// the line is a measurement, not a record.
type stages struct {
	last  time.Time
	names []string
	took  []time.Duration
}

func newStages() *stages { return &stages{last: time.Now()} }

// done ends the stage name now; a stage ended twice adds up.
func (s *stages) done(name string) {
	now := time.Now()
	d := now.Sub(s.last)
	s.last = now
	for i, n := range s.names {
		if n == name {
			s.took[i] += d
			return
		}
	}
	s.names = append(s.names, name)
	s.took = append(s.took, d)
}

// write puts the stages line on log: "==> stages: clone 12ms build 310ms".
func (s *stages) write(log io.Writer) {
	if len(s.names) == 0 {
		return
	}
	parts := make([]string, len(s.names))
	for i, n := range s.names {
		parts[i] = fmt.Sprintf("%s %.1fms", n, float64(s.took[i].Microseconds())/1000)
	}
	fmt.Fprintf(log, "==> stages: %s\n", strings.Join(parts, " "))
}
