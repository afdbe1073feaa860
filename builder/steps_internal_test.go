package builder

import (
	"testing"
	"time"

	bk "github.com/moby/buildkit/client"
)

// BuildKit reports a vertex again each time it changes: a step counts
// once, when it completed, cached or not; one still running counts not.
func TestStepCount(t *testing.T) {
	at := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	done := &at
	s := stepCount{}
	for _, st := range []*bk.SolveStatus{
		{Vertexes: []*bk.Vertex{{Digest: "sha256:load", Started: done}, {Digest: "sha256:from", Started: done}}},
		{Vertexes: []*bk.Vertex{{Digest: "sha256:load", Started: done, Completed: done}}},
		{Vertexes: []*bk.Vertex{{Digest: "sha256:from", Started: done, Completed: done, Cached: true}, {Digest: "sha256:run", Started: done, Completed: done, Cached: true}}},
		{Vertexes: []*bk.Vertex{{Digest: "sha256:run", Started: done, Completed: done, Cached: true}, {Digest: "sha256:export", Started: done}}},
	} {
		s.add(st)
	}
	if got, want := s.steps(), (Steps{Total: 3, Cached: 2}); got != want {
		t.Errorf("steps = %+v, want %+v", got, want)
	}
}
