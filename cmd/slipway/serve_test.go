package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/autotest"
	"github.com/slipway-build/slipway/buildnet"
	"github.com/slipway-build/slipway/config"
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
		{"SLIPWAY_SECRET_KEY", "c2hvcnQ="},
		// runc refuses namespace paths with a comma.
		{"SLIPWAY_DATA_DIR", "data,dir"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			t.Setenv("SLIPWAY_DATA_DIR", t.TempDir())
			if c.key == "SLIPWAY_DATA_DIR" {
				c.value = filepath.Join(t.TempDir(), c.value)
			}
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

// Without what a fenced build bridge needs, serve refuses to start in one
// line that says what is missing and how to build on the host's network
// instead; whatever it had started is stopped and no rule is left behind.
func TestServeRefusesWithoutBuildNetwork(t *testing.T) {
	plugins := t.TempDir()
	for _, p := range buildnet.Plugins {
		if err := os.WriteFile(filepath.Join(plugins, p), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	failing := t.TempDir() // iptables and ip6tables that always fail
	for _, cmd := range []string{"iptables", "ip6tables"} {
		if err := os.WriteFile(filepath.Join(failing, cmd), []byte("#!/bin/sh\necho \"$0: can't initialize\" >&2\nexit 3\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no CNI plugins", map[string]string{"SLIPWAY_CNI_DIR": t.TempDir()}, "CNI plugin bridge is not in"},
		{"no iptables", map[string]string{"SLIPWAY_CNI_DIR": plugins, "PATH": t.TempDir()}, "iptables not found"},
		{"iptables fails", map[string]string{"SLIPWAY_CNI_DIR": plugins, "PATH": failing}, "can't initialize"},
	}
	bridge := fmt.Sprintf("slwsrv%d", os.Getpid()%100000)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SLIPWAY_DATA_DIR", t.TempDir())
			t.Setenv("SLIPWAY_HTTP_ADDR", "127.0.0.1:0")
			t.Setenv("SLIPWAY_REGISTRY_ADDR", "off")
			t.Setenv("SLIPWAY_BUILD_BRIDGE", bridge)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			err := serve(context.Background(), nil)
			if err == nil {
				t.Fatal("serve started")
			}
			msg := err.Error()
			t.Logf("refused: %s", msg)
			if !strings.HasPrefix(msg, "SLIPWAY_BUILD_NETWORK: ") || strings.Contains(msg, "\n") ||
				!strings.Contains(msg, c.want) || !strings.Contains(msg, "SLIPWAY_BUILD_NETWORK=host") {
				t.Errorf("want one line starting with SLIPWAY_BUILD_NETWORK:, saying %q and naming the host setting; got %q", c.want, msg)
			}
		})
	}
	if out, err := exec.Command("iptables", "-w", "-S", "SLIPWAY-IN-"+bridge).CombinedOutput(); err == nil {
		t.Errorf("a refused start left its chain behind:\n%s", out)
	}
}

// SLIPWAY_BUILD_NETWORK=host is a choice made on purpose, and said at
// every start; so is a BuildKit Slipway did not start.
func TestBuildNetworkWarnings(t *testing.T) {
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	cfg := config.Defaults()
	cfg.BuildNetwork = "host"
	var st stack
	defer st.close()
	got, err := buildNetwork(context.Background(), cfg, logger, &st)
	if err != nil {
		t.Fatal(err)
	}
	if got != "  networkMode = \"host\"\n" || len(st) != 0 {
		t.Errorf("buildNetwork = %q with %d closers, want networkMode host and nothing to undo", got, len(st))
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "SLIPWAY_BUILD_NETWORK=host") {
		t.Errorf("no warning about the host network: %s", log.String())
	}

	log.Reset()
	cfg = config.Defaults()
	cfg.BuildkitAddr = "unix:///run/buildkit/buildkitd.sock"
	addr, err := startBuildkit(context.Background(), cfg, t.TempDir(), logger, &st)
	if err != nil || addr != cfg.BuildkitAddr {
		t.Fatalf("startBuildkit = %q, %v", addr, err)
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "external BuildKit") {
		t.Errorf("no warning about the external BuildKit's network: %s", log.String())
	}
}

// A worker without runc still starts, and a build with tests fails with a
// reason instead of passing untested.
func TestTesterWithoutRunc(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	tester, err := newTester(context.Background(), t.TempDir(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("newTester without runc: %v, want a worker that starts", err)
	}
	err = tester.Run(context.Background(), autotest.Run{ID: "b1"})
	want := "this worker cannot run tests (runc not found next to slipway or on PATH"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Run = %v, want an error starting %q", err, want)
	}
}
