package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/config"
)

// freeLoopbackAddr is a 127.0.0.1 port nobody listens on right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestServeNATSAndARoleAuthenticate runs serve's embedded NATS with a
// listener and connects a second process's way: with the seed file only.
func TestServeNATSAndARoleAuthenticate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dataDir := t.TempDir()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := config.Defaults()
	cfg.NATSListen = freeLoopbackAddr(t)
	var st stack
	defer st.close()
	_, ready, err := startNATS(cfg, dataDir, logger, &st)
	if err != nil {
		t.Fatalf("embedded: %v", err)
	}
	if err := ready(ctx); err != nil {
		t.Fatalf("in-process connection: %v", err)
	}
	creds := filepath.Join(dataDir, "nats.nk")
	seed, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), strings.TrimSpace(string(seed))) {
		t.Fatal("the seed was logged")
	}

	role := config.Defaults()
	role.NATSURL = "nats://" + cfg.NATSListen
	if _, _, err := startNATS(role, t.TempDir(), logger, &st); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("a role without SLIPWAY_NATS_CREDS: %v, want an authorization violation", err)
	}
	role.NATSCreds = creds
	_, ready, err = startNATS(role, t.TempDir(), logger, &st)
	if err != nil {
		t.Fatalf("a role with SLIPWAY_NATS_CREDS: %v", err)
	}
	if err := ready(ctx); err != nil {
		t.Fatal(err)
	}
}
