package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/regauth"
	"github.com/slipway-build/slipway/worker"
)

// The embedded registry's token settings: its "service" (the tokens'
// audience) and the tokens' issuer.
const (
	registryService = "slipway-registry"
	registryIssuer  = "slipway"
)

// passMargin is how much longer a build's pass lives than the build may
// run: tags move after the push, and a clock may be a little off.
const passMargin = 15 * time.Minute

// newTokenServer loads (or creates) the signing key in the data dir and
// returns the token server and the registry's "token" auth settings.
func newTokenServer(cfg config.Config, dataDir, bootstrapToken string, logger *slog.Logger) (*regauth.Server, configuration.Auth, error) {
	signer, certPath, err := regauth.LoadOrCreateKey(dataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("SLIPWAY_REGISTRY_AUTH: %w", err)
	}
	srv := &regauth.Server{Signer: signer, Access: bootstrapAccess{token: bootstrapToken},
		Service: registryService, Issuer: registryIssuer, Logger: logger}
	auth := configuration.Auth{"token": configuration.Parameters{
		"realm": tokenRealm(cfg), "service": registryService, "issuer": registryIssuer, "rootcertbundle": certPath,
	}}
	return srv, auth, nil
}

// tokenRealm is where the registry sends clients for tokens: the API's own
// URL. A loopback IP is written as localhost, because go-containerregistry
// (crane, Slipway's own tagging) refuses a realm on a loopback or private
// IP address other than the registry's own host:port.
func tokenRealm(cfg config.Config) string {
	u, err := url.Parse(cfg.ExternalURL())
	if err != nil {
		return cfg.ExternalURL() + "/v2/token"
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && ip.IsLoopback() {
		port := u.Port()
		u.Host = "localhost"
		if port != "" {
			u.Host = net.JoinHostPort("localhost", port)
		}
	}
	return strings.TrimRight(u.String(), "/") + "/v2/token"
}

// registryLogin is the worker's RegistryLogin: for an image on the
// embedded registry (host), a pass for that image's repository alone.
// Images on other registries get no credentials yet: stored external
// registry logins will be answered here, per host.
func registryLogin(srv *regauth.Server, host string) func(ctx context.Context, b model.Build) (builder.Credentials, error) {
	return func(ctx context.Context, b model.Build) (builder.Credentials, error) {
		imgHost, repo, ok := strings.Cut(b.Image, "/")
		if srv == nil || !ok || !sameRegistry(imgHost, host) {
			return nil, nil
		}
		// The organization is the first path element (acme of acme/app);
		// a one-element repository belongs to none.
		org, _, nested := strings.Cut(repo, "/")
		if !nested {
			org = ""
		}
		user, secret := srv.Pass(org, repo, passTTL(ctx))
		return func(h string) (string, string) {
			if sameRegistry(h, host) {
				return user, secret
			}
			return "", ""
		}, nil
	}
}

// passTTL is how long a pass must live: the build's deadline and a margin.
func passTTL(ctx context.Context) time.Duration {
	ttl := worker.DefaultTimeout
	if dl, ok := ctx.Deadline(); ok {
		ttl = time.Until(dl)
	}
	return ttl + passMargin
}

// sameRegistry reports whether host (as an image names it) is the embedded
// registry at addr (its dial address, such as 127.0.0.1:5000): the same
// host:port, or on the same port a loopback name for it.
func sameRegistry(host, addr string) bool {
	if strings.EqualFold(host, addr) {
		return true
	}
	h, port, err := net.SplitHostPort(host)
	ah, aport, aerr := net.SplitHostPort(addr)
	if err != nil || aerr != nil || port != aport {
		return false
	}
	return isLoopbackName(h) && isLoopbackName(ah)
}

func isLoopbackName(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil && ip.IsLoopback()
}
