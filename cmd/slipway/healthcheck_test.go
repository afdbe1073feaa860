package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthURL(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"", "http://127.0.0.1:8080/healthz"},
		{":8080", "http://127.0.0.1:8080/healthz"},
		{":9000", "http://127.0.0.1:9000/healthz"},
		{"0.0.0.0:9000", "http://127.0.0.1:9000/healthz"},
		{"[::]:9000", "http://127.0.0.1:9000/healthz"},
		{"localhost:9000", "http://127.0.0.1:9000/healthz"},
		{"slipway.internal:9000", "http://127.0.0.1:9000/healthz"},
		{"127.0.0.2:9000", "http://127.0.0.2:9000/healthz"},
		{"10.1.2.3:8080", "http://10.1.2.3:8080/healthz"},
		{"[::1]:9000", "http://[::1]:9000/healthz"},
	}
	for _, tt := range tests {
		got, err := healthURL(tt.addr)
		if err != nil || got != tt.want {
			t.Errorf("healthURL(%q) = %q, %v; want %q", tt.addr, got, err, tt.want)
		}
	}
	for _, bad := range []string{"8080", "127.0.0.1", "127.0.0.1:"} {
		if got, err := healthURL(bad); err == nil || !strings.Contains(err.Error(), "SLIPWAY_HTTP_ADDR") {
			t.Errorf("healthURL(%q) = %q, %v; want an error naming SLIPWAY_HTTP_ADDR", bad, got, err)
		}
	}
}

// env answers SLIPWAY_HTTP_ADDR with addr, as the container's environment.
func env(addr string) func(string) string {
	return func(k string) string {
		if k == "SLIPWAY_HTTP_ADDR" {
			return addr
		}
		return ""
	}
}

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		w.WriteHeader(status)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ctx := context.Background()

	if err := healthcheck(ctx, env(":"+port)); err != nil {
		t.Errorf("healthy server: %v", err)
	}
	if path != "/healthz" {
		t.Errorf("asked %q, want /healthz", path)
	}
	status = http.StatusServiceUnavailable
	err := healthcheck(ctx, env(":"+port))
	if err == nil || !strings.Contains(err.Error(), "answered 503 Service Unavailable") {
		t.Errorf("server answering 503: %v, want an error naming the status", err)
	}
	srv.Close()
	if err := healthcheck(ctx, env(":"+port)); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("nothing listening: %v, want connection refused", err)
	}
}

func TestHealthcheckGivesUpAfterThreeSeconds(t *testing.T) {
	// A listener that accepts and never answers: a hung Slipway.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	err = healthcheck(context.Background(), env(ln.Addr().String()))
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Errorf("hung server: %v, want a deadline error", err)
	}
	if took < 3*time.Second || took > 4*time.Second {
		t.Errorf("gave up after %s, want 3s", took)
	}
}
