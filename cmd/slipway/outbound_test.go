package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/outbound"
)

func TestEmbeddedRegistryIsOpenForTheRegistryClientOnly(t *testing.T) {
	local := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		addr     string
		embedded bool
		open     []string // host:port the registry guard allows
	}{
		{"127.0.0.1:5000", true, []string{"127.0.0.1:5000"}},
		{":5001", true, []string{"127.0.0.1:5001", "[::1]:5001"}},
		{"0.0.0.0:5002", true, []string{"127.0.0.1:5002", "[::1]:5002"}},
		{"127.0.0.1:5000", false, []string{"127.0.0.1:5000"}}, // the Slipway registry of another process
		{"off", true, nil},
	}
	for _, tt := range tests {
		cfg := config.Defaults()
		cfg.RegistryAddr = tt.addr
		g := newGuards(cfg, tt.embedded)
		for _, s := range tt.open {
			ap := netip.MustParseAddrPort(s)
			if err := g.registry.Check(ap.Addr(), ap.Port()); err != nil {
				t.Errorf("%s: registry client refused its own registry %s: %v", tt.addr, s, err)
			}
			if err := g.all.Check(ap.Addr(), ap.Port()); err == nil {
				t.Errorf("%s: %s is open for every client, want only the registry client", tt.addr, s)
			}
		}
		if err := g.registry.Check(local, 6000); err == nil {
			t.Errorf("%s: another loopback port is open to the registry client", tt.addr)
		}
	}
}

// TestTokenRealmIsOpenForTheRegistryClient: with token auth the registry
// client fetches tokens from this process's HTTP address; without, that
// address stays closed to it.
func TestTokenRealmIsOpenForTheRegistryClient(t *testing.T) {
	for _, tt := range []struct {
		auth string
		open bool
	}{{"token", true}, {"none", false}} {
		cfg := config.Defaults()
		cfg.HTTPAddr, cfg.RegistryAuth = ":8081", tt.auth
		g := newGuards(cfg, true)
		for _, s := range []string{"127.0.0.1:8081", "[::1]:8081"} {
			ap := netip.MustParseAddrPort(s)
			if err := g.registry.Check(ap.Addr(), ap.Port()); (err == nil) != tt.open {
				t.Errorf("auth %s: registry client to %s: err = %v, want open %v", tt.auth, s, err, tt.open)
			}
			if err := g.all.Check(ap.Addr(), ap.Port()); err == nil {
				t.Errorf("auth %s: %s is open for every client", tt.auth, s)
			}
		}
	}
}

// TestDeployHooksGoThroughTheGuard: a deploy hook to a loopback receiver is
// refused without an allow list and delivered with 127.0.0.0/8 open.
func TestDeployHooksGoThroughTheGuard(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.URL.Path }))
	defer srv.Close()
	hook := model.Hook{URL: srv.URL + "/hook", Secret: "whsec_" + strings.Repeat("QUJD", 8)}

	closed := newGuards(config.Defaults(), false)
	a := closed.hooks().Send(context.Background(), hook, "msg_1", []byte(`{}`), time.Now())
	if !strings.Contains(a.Error, outbound.ErrRefused.Error()) || len(got) != 0 {
		t.Errorf("hook to %s with no allow list: attempt %+v, want refused without delivery", srv.URL, a)
	}

	cfg := config.Defaults()
	cfg.OutboundAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	a = newGuards(cfg, false).hooks().Send(context.Background(), hook, "msg_2", []byte(`{}`), time.Now())
	if a.Error != "" || a.StatusCode != http.StatusOK || <-got != "/hook" {
		t.Errorf("hook to %s with 127.0.0.0/8 open: attempt %+v", srv.URL, a)
	}
}

func TestHostAPIClientRefusesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	if _, err := newGuards(config.Defaults(), true).hostAPI().Get(srv.URL); !errors.Is(err, outbound.ErrRefused) {
		t.Errorf("GET %s through the host API client = %v, want ErrRefused", srv.URL, err)
	}
}

// The roles of a split deployment reach the registry by its name at a
// private address, through the registry client only.
func TestRegistryNameIsOpenForTheRegistryClientOfOtherRoles(t *testing.T) {
	cfg := config.Defaults()
	cfg.RegistryAddr = "registry:5000"
	lookup := func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("172.18.0.4")}, nil
	}
	g := newGuards(cfg, false)
	reg, all := *g.registry, *g.all
	reg.Lookup, all.Lookup = lookup, lookup
	if _, err := reg.Resolve(context.Background(), "registry", 5000); err != nil {
		t.Errorf("the registry client refused registry:5000: %v", err)
	}
	if _, err := all.Resolve(context.Background(), "registry", 5000); !errors.Is(err, outbound.ErrRefused) {
		t.Errorf("every client may reach registry:5000 (%v); want only the registry client", err)
	}
	if _, err := reg.Resolve(context.Background(), "registry", 5001); !errors.Is(err, outbound.ErrRefused) {
		t.Errorf("another port of the registry's host is open: %v", err)
	}
}
