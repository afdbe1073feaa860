package main

import (
	"context"
	"testing"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/regauth"
)

func TestTokenRealm(t *testing.T) {
	for _, tc := range []struct{ public, http, want string }{
		{"", ":8080", "http://localhost:8080/v2/token"},
		{"http://127.0.0.1:9000", ":9000", "http://localhost:9000/v2/token"},
		{"http://[::1]:9000/", ":9000", "http://localhost:9000/v2/token"},
		{"https://builds.acme.example/", ":8080", "https://builds.acme.example/v2/token"},
		{"https://acme.example/slipway", ":8080", "https://acme.example/slipway/v2/token"},
	} {
		cfg := config.Defaults()
		cfg.PublicURL, cfg.HTTPAddr = tc.public, tc.http
		if got := tokenRealm(cfg); got != tc.want {
			t.Errorf("tokenRealm(public %q, http %q) = %q, want %q", tc.public, tc.http, got, tc.want)
		}
	}
}

func TestSameRegistry(t *testing.T) {
	for _, tc := range []struct {
		host, addr string
		want       bool
	}{
		{"127.0.0.1:5000", "127.0.0.1:5000", true},
		{"localhost:5000", "127.0.0.1:5000", true},
		{"[::1]:5000", "127.0.0.1:5000", true},
		{"127.0.0.1:5001", "127.0.0.1:5000", false},
		{"registry.acme.example:5000", "127.0.0.1:5000", false},
		{"registry.acme.example", "127.0.0.1:5000", false},
		{"10.0.0.5:5000", "10.0.0.5:5000", true},
	} {
		if got := sameRegistry(tc.host, tc.addr); got != tc.want {
			t.Errorf("sameRegistry(%q, %q) = %v, want %v", tc.host, tc.addr, got, tc.want)
		}
	}
}

// TestRegistryLogin: a build on the embedded registry gets a pass for its
// own repository, on that host only; other registries get nothing.
func TestRegistryLogin(t *testing.T) {
	raw, err := regauth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := regauth.ParseKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	srv := &regauth.Server{Signer: signer, Service: registryService, Issuer: registryIssuer}
	login := registryLogin(srv, "127.0.0.1:5000", acmeLogins)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	creds, err := login(ctx, model.Build{Image: "127.0.0.1:5000/acme/app"})
	if err != nil || creds == nil {
		t.Fatalf("login = %v, %v", creds, err)
	}
	user, secret := creds("127.0.0.1:5000")
	if user != regauth.PassUser || secret == "" {
		t.Errorf("credentials for the embedded registry: %q, %q", user, secret)
	}
	if u, s := creds("registry.acme.example"); u != "" || s != "" {
		t.Errorf("credentials for another host: %q, %q, want none", u, s)
	}
	if creds, err := login(ctx, model.Build{Image: "registry.acme.example/acme/app"}); creds != nil || err != nil {
		t.Errorf("login for another registry = %v, %v, want nothing", creds, err)
	}
	// acme stored a login for ghcr.io: its builds, and only its, use it.
	creds, err = login(ctx, model.Build{Org: "acme", Image: "ghcr.io/acme/app"})
	if err != nil || creds == nil {
		t.Fatalf("login with a stored registry login = %v, %v", creds, err)
	}
	if u, s := creds("ghcr.io"); u != "acme-bot" || s != "ghcr-password" {
		t.Errorf("credentials for ghcr.io: %q, %q, want acme's stored login", u, s)
	}
	if creds, err := login(ctx, model.Build{Org: "globex", Image: "ghcr.io/globex/app"}); creds != nil || err != nil {
		t.Errorf("another organization's build got %v, %v, want nothing", creds, err)
	}
	if creds, err := registryLogin(nil, "", nil)(ctx, model.Build{Image: "127.0.0.1:5000/acme/app"}); creds != nil || err != nil {
		t.Errorf("login with an open registry = %v, %v, want nothing", creds, err)
	}
}

// acmeLogins is acme's stored login for ghcr.io.
func acmeLogins(_ context.Context, org string) (map[string]access.RegistryLogin, error) {
	if org == "acme" {
		return map[string]access.RegistryLogin{"ghcr.io": {Username: "acme-bot", Password: "ghcr-password"}}, nil
	}
	return nil, nil
}
