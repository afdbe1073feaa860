package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipway-build/slipway/e2e/rig"
)

// TestEmbeddedRegistryTokenAuth: the embedded registry of `slipway serve`
// asks Slipway's token server; the bootstrap API token is its admin, the
// base images under library/ are public, everything else is private.
func TestEmbeddedRegistryTokenAuth(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	ctx := context.Background()
	admin := &authn.Basic{Username: "admin", Password: s.Token}

	// The signing key is kept sealed in NATS, shared by every process;
	// the data dir holds only the certificate the registry trusts.
	if _, err := os.Stat(filepath.Join(s.DataDir, "registry-token.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a signing key file in the data dir: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(s.DataDir, "registry-token.crt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("certificate: %v, want mode 0600", err)
	}
	secret, err := name.ParseReference(s.RegistryAddr+"/acme/secret:v1", name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(secret, img, remote.WithAuth(admin)); err != nil {
		t.Fatalf("admin push: %v", err)
	}
	busybox, _ := name.ParseReference(s.RegistryAddr+"/library/busybox:latest", name.StrictValidation)
	if _, err := remote.Get(busybox, remote.WithContext(ctx)); err != nil {
		t.Errorf("anonymous pull of library/busybox: %v", err)
	}
	if _, err := remote.Get(secret, remote.WithContext(ctx), remote.WithAuth(admin)); err != nil {
		t.Errorf("admin pull: %v", err)
	}
	wantCode(t, "anonymous pull of acme/secret", getErr(ctx, secret, authn.Anonymous), http.StatusUnauthorized)
	wantCode(t, "pull with a wrong token", getErr(ctx, secret, &authn.Basic{Username: "admin", Password: "wrong"}), http.StatusUnauthorized)
	wantCode(t, "anonymous push to library/busybox", remote.Write(busybox, img), http.StatusUnauthorized)

	// docker login: a token request without a scope.
	reg, _ := name.NewRegistry(s.RegistryAddr)
	if _, err := transport.NewWithContext(ctx, reg, admin, http.DefaultTransport, nil); err != nil {
		t.Errorf("login with the API token: %v", err)
	}
	_, err = transport.NewWithContext(ctx, reg, &authn.Basic{Username: "admin", Password: "wrong"}, http.DefaultTransport, nil)
	wantCode(t, "login with a wrong token", err, http.StatusUnauthorized)
}

func getErr(ctx context.Context, ref name.Reference, auth authn.Authenticator) error {
	_, err := remote.Get(ref, remote.WithContext(ctx), remote.WithAuth(auth))
	return err
}

func wantCode(t *testing.T, what string, err error, status int) {
	t.Helper()
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != status {
		t.Errorf("%s: err = %v, want HTTP %d", what, err, status)
	}
}
