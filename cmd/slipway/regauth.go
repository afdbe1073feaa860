package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/slipway-build/slipway/access"
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

// storedLogins are an organization's registry logins by host, opened.
type storedLogins func(ctx context.Context, org string) (map[string]access.RegistryLogin, error)

// registryLogin is the worker's RegistryLogin: for an image on the
// embedded registry (host), a pass for that image's repository alone; for
// other registries, the logins the build's organization stored.
func registryLogin(srv *regauth.Server, host string, stored storedLogins) func(ctx context.Context, b model.Build) (builder.Credentials, error) {
	return loginWith(srv, host, stored, func(ctx context.Context, org, repo string) (string, string) {
		return srv.Pass(org, repo, passTTL(ctx))
	})
}

// deleteTTL bounds a delete pass: it deletes a few tags at once.
const deleteTTL = 5 * time.Minute

// deleteLogin is registryLogin for deleting a closed pull request's tags:
// on the embedded registry a short DeletePass for the image's repository
// alone, elsewhere the organization's stored logins.
func deleteLogin(srv *regauth.Server, host string, stored storedLogins) func(ctx context.Context, b model.Build) (builder.Credentials, error) {
	return loginWith(srv, host, stored, func(_ context.Context, org, repo string) (string, string) {
		return srv.DeletePass(org, repo, deleteTTL)
	})
}

// loginWith answers a build's credentials: a pass from mint for the
// embedded registry, the organization's stored logins for the others.
func loginWith(srv *regauth.Server, host string, stored storedLogins, mint func(ctx context.Context, org, repo string) (string, string)) func(ctx context.Context, b model.Build) (builder.Credentials, error) {
	return func(ctx context.Context, b model.Build) (builder.Credentials, error) {
		var logins map[string]access.RegistryLogin
		if stored != nil && b.Org != "" {
			var err error
			if logins, err = stored(ctx, b.Org); err != nil {
				return nil, fmt.Errorf("registry logins of %s: %w", b.Org, err)
			}
		}
		user, secret, embedded := embeddedPass(ctx, srv, host, b.Image, mint)
		if !embedded && len(logins) == 0 {
			return nil, nil
		}
		return func(h string) (string, string) {
			if embedded && sameRegistry(h, host) {
				return user, secret
			}
			if l, ok := logins[h]; ok {
				return l.Username, l.Password
			}
			return "", ""
		}, nil
	}
}

// embeddedPass is a pass from mint for image's repository when image is on
// the embedded registry (host) and it asks for tokens.
func embeddedPass(ctx context.Context, srv *regauth.Server, host, image string, mint func(ctx context.Context, org, repo string) (string, string)) (user, secret string, ok bool) {
	imgHost, repo, found := strings.Cut(image, "/")
	if srv == nil || !found || !sameRegistry(imgHost, host) {
		return "", "", false
	}
	// The organization is the first path element (acme of acme/app);
	// a one-element repository belongs to none.
	org, _, nested := strings.Cut(repo, "/")
	if !nested {
		org = ""
	}
	user, secret = mint(ctx, org, repo)
	return user, secret, true
}

// orgLogins opens an organization's stored registry logins.
func orgLogins(dir *access.Directory, keys access.Sealer) storedLogins {
	return func(ctx context.Context, org string) (map[string]access.RegistryLogin, error) {
		o, err := dir.GetOrg(ctx, org)
		if errors.Is(err, access.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		out := make(map[string]access.RegistryLogin, len(o.Registries))
		for host := range o.Registries {
			l, _, err := o.RegistryLogin(host, keys)
			if err != nil {
				return nil, err
			}
			out[host] = l
		}
		return out, nil
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
