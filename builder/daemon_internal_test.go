package builder

import (
	"slices"
	"strings"
	"testing"
)

// The embedded buildkitd does not get Slipway's OpenTelemetry settings:
// it would send spans of its own to Slipway's collector.
func TestBuildkitdGetsNoOTelVariables(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("OTEL_SERVICE_NAME", "slipway")
	t.Setenv("SLIPWAY_TEST_KEPT", "yes")
	d := &Daemon{opts: DaemonOptions{Binary: "/bin/true", Root: t.TempDir(), Socket: "/tmp/none.sock"}}
	env := d.command(t.Context()).Env
	for _, kv := range env {
		if strings.HasPrefix(kv, "OTEL_") {
			t.Errorf("buildkitd's environment has %s", kv)
		}
	}
	if !slices.Contains(env, "SLIPWAY_TEST_KEPT=yes") {
		t.Errorf("buildkitd's environment lost the other variables: %v", env)
	}
}
