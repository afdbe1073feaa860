package registry_test

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/slipway-build/slipway/regauth"
	"github.com/slipway-build/slipway/registry"
)

// oneAdmin lets "ada" with her secret do anything, and nobody else.
type oneAdmin struct{}

func (oneAdmin) Login(_ context.Context, user, secret string) (regauth.Account, error) {
	if user == "ada" && subtle.ConstantTimeCompare([]byte(secret), []byte("ada-secret")) == 1 {
		return regauth.Account{Name: "ada", Site: true}, nil
	}
	return regauth.Account{}, regauth.ErrDenied
}

func (oneAdmin) Actions(_ context.Context, who regauth.Account, _ string) ([]string, error) {
	if who.Site {
		return []string{regauth.Pull, regauth.Push, regauth.Delete}, nil
	}
	return nil, nil
}

// startFront runs an embedded registry with token auth behind a Front on
// a loopback port of its own, as `slipway registry` does.
func startFront(t *testing.T) string {
	t.Helper()
	raw, err := regauth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := regauth.ParseKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	certPath, err := signer.WriteCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := registry.StartEmbeddedWith(ctx, registry.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: t.TempDir(), Auth: configuration.Auth{
		"token": configuration.Parameters{"realm": registry.PlaceholderRealm, "service": "slipway-registry", "issuer": "slipway", "rootcertbundle": certPath},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	tokens := &regauth.Server{Signer: signer, Access: oneAdmin{}, Service: "slipway-registry", Issuer: "slipway"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: registry.Front{Upstream: e.Addr(), Tokens: tokens}.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// challenge is the WWW-Authenticate header of an anonymous GET /v2/ sent
// to addr with the given Host and extra headers.
func challenge(t *testing.T, addr, hostHeader string, extra map[string]string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = hostHeader
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v2/ anonymously: HTTP %d, want 401", resp.StatusCode)
	}
	return resp.Header.Get("WWW-Authenticate")
}

func TestFrontRealmFollowsTheClientsHost(t *testing.T) {
	addr := startFront(t)
	_, port, _ := net.SplitHostPort(addr)
	cases := []struct {
		name, host string
		extra      map[string]string
		realm      string
	}{
		{"inside compose", "registry:5000", nil, `realm="http://registry:5000/v2/token"`},
		{"from the host", "localhost:" + port, nil, `realm="http://localhost:` + port + `/v2/token"`},
		{"behind an ingress ending TLS", "registry-svc:5000", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "registry.acme.example"},
			`realm="https://registry.acme.example/v2/token"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := challenge(t, addr, c.host, c.extra)
			if !strings.HasPrefix(got, "Bearer "+c.realm+",") || !strings.Contains(got, `service="slipway-registry"`) {
				t.Errorf("WWW-Authenticate = %q, want Bearer %s,service=\"slipway-registry\"", got, c.realm)
			}
		})
	}
}

// A real client logs in, pushes and pulls under two names of the same
// front: its token service is found under each.
func TestFrontPushPullUnderTwoNames(t *testing.T) {
	addr := startFront(t)
	_, port, _ := net.SplitHostPort(addr)
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	ada := crane.WithAuth(&authn.Basic{Username: "ada", Password: "ada-secret"})
	if err := crane.Push(img, addr+"/acme/app:v1", ada); err != nil {
		t.Fatalf("push as 127.0.0.1: %v", err)
	}
	want, _ := img.Digest()
	got, err := crane.Digest("localhost:"+port+"/acme/app:v1", ada)
	if err != nil || got != want.String() {
		t.Fatalf("digest as localhost = %q, %v; want %s", got, err, want)
	}
	if _, err := crane.Digest(addr+"/acme/app:v1", crane.WithAuth(&authn.Basic{Username: "ada", Password: "wrong"})); err == nil ||
		!strings.Contains(err.Error(), "UNAUTHORIZED: authentication failed") {
		t.Errorf("a wrong secret: %v, want UNAUTHORIZED: authentication failed", err)
	}
}
