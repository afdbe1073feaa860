package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/distribution/distribution/v3/configuration"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/regauth"
	"github.com/slipway-build/slipway/registry"
)

// regParts are the registry Slipway pushes to, as this process knows it.
type regParts struct {
	ready  func(context.Context) error // nil unless this process runs the registry
	addr   string                      // the registry's host:port, as images name it
	tokens *regauth.Server             // nil when the registry is open
}

// regDeps are what every form of the registry needs.
type regDeps struct {
	cfg     config.Config
	dataDir string
	dir     *access.Directory // keeps the shared signing key
	who     regauth.Access
	keys    regauth.Keys
	logger  *slog.Logger
}

// registryFor returns the registry parts of role r: serve runs the
// registry on SLIPWAY_REGISTRY_ADDR, the registry role behind a front on
// SLIPWAY_REGISTRY_LISTEN; the other roles only sign for it.
func registryFor(ctx context.Context, r role, d regDeps, st *stack) (regParts, error) {
	switch {
	case d.cfg.RegistryAddr == "off":
		return regParts{}, nil
	case r.embedded:
		return startRegistry(ctx, d, st)
	case r.registry:
		return startRegistryRole(ctx, d, st)
	}
	// A worker mints build passes, a webhook process delete passes, for
	// the Slipway registry at SLIPWAY_REGISTRY_ADDR; the API checks image
	// names against it.
	out := regParts{addr: d.cfg.RegistryAddr}
	if d.cfg.RegistryAuth == "token" {
		srv, _, err := newTokenServer(ctx, d)
		if err != nil {
			return regParts{}, err
		}
		out.tokens = srv
	}
	return out, nil
}

// startRegistry starts the embedded registry of `slipway serve`, with token
// auth unless SLIPWAY_REGISTRY_AUTH is none.
func startRegistry(ctx context.Context, d regDeps, st *stack) (regParts, error) {
	cfg := d.cfg
	opts := registry.EmbeddedOptions{Addr: cfg.RegistryAddr, Dir: filepath.Join(d.dataDir, "registry"), Logger: d.logger}
	var out regParts
	if cfg.RegistryAuth == "token" {
		srv, certPath, err := newTokenServer(ctx, d)
		if err != nil {
			return regParts{}, err
		}
		out.tokens, opts.Auth = srv, tokenAuth(tokenRealm(cfg), certPath)
	} else {
		warnOpen(d.logger, cfg.RegistryAddr)
	}
	reg, err := startEmbedded(ctx, opts, st)
	if err != nil {
		return regParts{}, err
	}
	out.addr = reg.Addr()
	out.ready = func(ctx context.Context) error { return registry.Client{}.Ping(ctx, reg.Addr()) }
	if out.tokens != nil {
		d.logger.Info("embedded registry uses token auth", "realm", tokenRealm(cfg), "service", registryService)
	}
	return out, nil
}

// startRegistryRole starts `slipway registry`: the embedded registry on a
// loopback port, behind a front on SLIPWAY_REGISTRY_LISTEN that also
// answers /v2/token and names, as the realm, the address each client used.
func startRegistryRole(ctx context.Context, d regDeps, st *stack) (regParts, error) {
	cfg := d.cfg
	ln, err := net.Listen("tcp", cfg.RegistryBind())
	if err != nil {
		return regParts{}, fmt.Errorf("SLIPWAY_REGISTRY_LISTEN: %w", err)
	}
	st.push(func() { _ = ln.Close() })
	opts := registry.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: filepath.Join(d.dataDir, "registry"), Logger: d.logger}
	tokens := http.NotFoundHandler()
	out := regParts{addr: cfg.RegistryAddr}
	if cfg.RegistryAuth == "token" {
		srv, certPath, err := newTokenServer(ctx, d)
		if err != nil {
			return regParts{}, err
		}
		out.tokens, tokens, opts.Auth = srv, srv, tokenAuth(registry.PlaceholderRealm, certPath)
	} else {
		warnOpen(d.logger, cfg.RegistryBind())
	}
	reg, err := startEmbedded(ctx, opts, st)
	if err != nil {
		return regParts{}, err
	}
	// No read or write timeout: a push of a large layer takes as long as
	// it takes.
	front := &http.Server{Handler: registry.Front{Upstream: reg.Addr(), Tokens: tokens}.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := front.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.logger.Error("registry front stopped", "err", err)
		}
	}()
	st.push(func() { _ = front.Close() })
	out.ready = func(ctx context.Context) error { return registry.Client{}.Ping(ctx, reg.Addr()) }
	d.logger.Info("registry serving", "listen", ln.Addr().String(), "name", cfg.RegistryAddr, "auth", cfg.RegistryAuth)
	return out, nil
}

func startEmbedded(ctx context.Context, opts registry.EmbeddedOptions, st *stack) (*registry.Embedded, error) {
	reg, err := registry.StartEmbeddedWith(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("SLIPWAY_REGISTRY_ADDR: %w", err)
	}
	st.push(func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = reg.Close(c)
	})
	return reg, nil
}

func warnOpen(logger *slog.Logger, addr string) {
	logger.Warn("the registry has no authentication (SLIPWAY_REGISTRY_AUTH=none): anyone who reaches it can read, overwrite and delete every image", "addr", addr)
}

// newTokenServer loads the signing key every Slipway process on the NATS
// shares (creating it on first start) and returns the token server and the
// path of the certificate the registry trusts.
func newTokenServer(ctx context.Context, d regDeps) (*regauth.Server, string, error) {
	signer, certPath, err := regauth.LoadShared(ctx, d.dir, d.keys, d.dataDir, isAccessNotFound)
	if err != nil {
		return nil, "", fmt.Errorf("SLIPWAY_REGISTRY_AUTH: %w", err)
	}
	srv := &regauth.Server{Signer: signer, Access: d.who,
		Service: registryService, Issuer: registryIssuer, Logger: d.logger}
	return srv, certPath, nil
}

// tokenAuth is the registry's "token" auth settings.
func tokenAuth(realm, certPath string) configuration.Auth {
	return configuration.Auth{"token": configuration.Parameters{
		"realm": realm, "service": registryService, "issuer": registryIssuer, "rootcertbundle": certPath,
	}}
}

func isAccessNotFound(err error) bool { return errors.Is(err, access.ErrNotFound) }

// browser reads the Slipway registry for the API's registry browser, with
// a browse pass minted for each call; nil when there is no Slipway
// registry.
func browser(reg regParts, out guards) api.RegistryReader {
	if reg.addr == "" {
		return nil
	}
	b := registry.Browser{Host: reg.addr, Transport: out.registry.Transport()}
	if reg.tokens != nil {
		b.Login = func() (string, string) { return reg.tokens.BrowsePass(time.Minute) }
	}
	return b
}
