package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/slipway-build/slipway/config"
)

// healthTimeout bounds one health check: a container runtime runs it every
// few seconds and counts a hang as a failure anyway.
const healthTimeout = 3 * time.Second

// healthcheck asks this container's own Slipway for /healthz. The image's
// HEALTHCHECK runs it because the runtime base has no shell and no curl.
// getenv gives SLIPWAY_HTTP_ADDR, the address the process serves on.
func healthcheck(ctx context.Context, getenv func(string) string) error {
	url, err := healthURL(getenv("SLIPWAY_HTTP_ADDR"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s answered %s", url, resp.Status)
	}
	return nil
}

// healthURL is /healthz on the port of addr (SLIPWAY_HTTP_ADDR, ":8080"
// when unset). A listener on every address (":8080", "0.0.0.0:8080") or on
// a host name is asked on 127.0.0.1; one bound to a single IP address only
// answers there, so that address is asked.
func healthURL(addr string) (string, error) {
	if addr == "" {
		addr = config.Defaults().HTTPAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("SLIPWAY_HTTP_ADDR: want host:port or :port, got %q: %w", addr, err)
	}
	if port == "" {
		return "", fmt.Errorf("SLIPWAY_HTTP_ADDR: no port in %q", addr)
	}
	target := "127.0.0.1"
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		target = ip.String()
	}
	return "http://" + net.JoinHostPort(target, port) + "/healthz", nil
}
