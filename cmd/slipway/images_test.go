package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/regauth"
	"github.com/slipway-build/slipway/registry"
)

// The API reads a build's image on the embedded registry with a read pass
// of its own repository: enough to show it, not to push there.
func TestImageReaderReadsWithAReadPass(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
	srv := &regauth.Server{Signer: signer, Service: registryService, Issuer: registryIssuer}
	mux := http.NewServeMux()
	mux.Handle("/v2/token", srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(hs.URL, "http://"))
	reg, err := registry.StartEmbeddedWith(ctx, registry.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: t.TempDir(),
		Auth: tokenAuth("http://localhost:"+port+"/v2/token", certPath)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Close(context.Background()) }()

	// The build pushes with its pass, as a worker does.
	img, err := random.Image(300, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(reg.Addr()+"/acme/app:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	user, pass := srv.Pass("acme", "acme/app", time.Minute)
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}

	b := model.Build{Org: "acme", Image: reg.Addr() + "/acme/app", Digest: digest.String()}
	login := readLogin(srv, reg.Addr(), nil)
	got, err := imageReader{login: login}.Inspect(ctx, b, "")
	if err != nil {
		t.Fatalf("Inspect with a read pass: %v", err)
	}
	want := m.Config.Size + m.Layers[0].Size + m.Layers[1].Size
	if got.Manifest != digest.String() || len(got.Layers) != 2 || got.TotalSize() != want {
		t.Errorf("image %s with %d layers of %d bytes, want %s with 2 of %d", got.Manifest, len(got.Layers), got.TotalSize(), digest, want)
	}

	creds, err := login(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	err = registry.Client{Credentials: creds}.Tag(ctx, b.Image, b.Digest, "stolen")
	if err == nil || !strings.Contains(err.Error(), "do not allow pull,push") {
		t.Errorf("tag with the API's read pass: %v, want refused", err)
	}
}
