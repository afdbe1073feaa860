package worker

import (
	"testing"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
)

// A build Slipway gave up on reports "error" because it is recorded so, not
// because of the words of its error.
func TestStateOf(t *testing.T) {
	tests := []struct {
		name  string
		build model.Build
		want  forge.State
	}{
		{"succeeded", model.Build{Status: model.StatusSucceeded}, forge.Success},
		{"skipped", model.Build{Status: model.StatusSkipped}, forge.Success},
		{"cancelled", model.Build{Status: model.StatusCancelled}, forge.Cancelled},
		{"failed", model.Build{Status: model.StatusFailed, Error: "build: exit code 1"}, forge.Failure},
		{"gave up", model.Build{Status: model.StatusFailed, Error: "buildkit went away", GaveUp: true}, forge.Error},
		{"failed with words like giving up", model.Build{Status: model.StatusFailed, Error: "gave up after 3 attempts: RUN exited 1"}, forge.Failure},
		{"running", model.Build{Status: model.StatusRunning}, forge.Running},
	}
	for _, tt := range tests {
		if got := StateOf(tt.build); got != tt.want {
			t.Errorf("%s: StateOf = %s, want %s", tt.name, got, tt.want)
		}
	}
}
