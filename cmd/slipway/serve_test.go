package main

import (
	"context"
	"strings"
	"testing"
)

// A bad setting must stop start-up with one line naming its key, before
// anything is started.
func TestServeRejectsBadSettings(t *testing.T) {
	cases := []struct{ key, value string }{
		{"SLIPWAY_HTTP_ADDR", "no-port"},
		{"SLIPWAY_REGISTRY_ADDR", "127.0.0.1:99999"},
		{"SLIPWAY_BUILDKIT_ADDR", "/run/buildkit.sock"},
		{"SLIPWAY_NATS_URL", "http://127.0.0.1:4222"},
		{"SLIPWAY_PUBLIC_URL", "slipway.example.com"},
		{"SLIPWAY_WORKERS", "-1"},
		{"SLIPWAY_HOOK_SCHEDULE", "5s,soon"},
		{"SLIPWAY_LOG_LEVEL", "loud"},
		{"SLIPWAY_LOG_LIMIT", "16MB"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			t.Setenv("SLIPWAY_DATA_DIR", t.TempDir())
			t.Setenv(c.key, c.value)
			err := serve(context.Background(), nil)
			if err == nil {
				t.Fatalf("%s=%q: serve started", c.key, c.value)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, c.key+":") || strings.Contains(msg, "\n") {
				t.Errorf("want one line starting with %s:, got %q", c.key, msg)
			}
		})
	}
}
