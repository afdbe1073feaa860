package rig

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// logins are the credentials of the registries the tests started, by
// host:port: a Slipway's embedded registry wants a token (the bootstrap
// API token as password) for everything but public repositories.
var logins sync.Map // host:port → *authn.Basic

// Login makes the rig's registry clients (FetchManifest, Labels,
// PushBusybox) log in to host (host:port) as user with secret.
func Login(host, user, secret string) {
	logins.Store(host, &authn.Basic{Username: user, Password: secret})
}

// keychain answers go-containerregistry with the logins.
type keychain struct{}

func (keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := logins.Load(r.RegistryStr()); ok {
		return a.(*authn.Basic), nil
	}
	return authn.Anonymous, nil
}

// credentials answers BuildKit with the logins.
func credentials(host string) (string, string) {
	if a, ok := logins.Load(host); ok {
		b := a.(*authn.Basic)
		return b.Username, b.Password
	}
	return "", ""
}

// Manifest is a manifest or index as a registry serves it.
type Manifest struct {
	// Digest is the content digest ("sha256:...").
	Digest string
	// MediaType is the manifest's media type, e.g.
	// "application/vnd.oci.image.index.v1+json".
	MediaType string
	// Raw holds the manifest bytes exactly as served.
	Raw []byte
	// Platforms lists, for an index, the platform of each image entry in
	// order, leaving out entries without a platform and BuildKit's
	// attestation entries. It is nil for a single-platform manifest.
	Platforms []v1.Platform
}

// IsIndex reports whether m is an OCI index or a Docker manifest list.
func (m Manifest) IsIndex() bool { return types.MediaType(m.MediaType).IsIndex() }

// FetchManifest gets the manifest or index that ref (host:port/name:tag or
// host:port/name@digest) points to. The registry host, and a tag or digest,
// must be spelled out (name.StrictValidation), so that a slip never sends a
// test to Docker Hub. go-containerregistry speaks plain HTTP to 127.0.0.1
// and localhost:port, where the tests' registries are.
func FetchManifest(ctx context.Context, ref string) (Manifest, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest %s: %w", ref, err)
	}
	desc, err := remote.Get(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain{}))
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest %s: %w", ref, err)
	}
	m := Manifest{Digest: desc.Digest.String(), MediaType: string(desc.MediaType), Raw: desc.Manifest}
	if !desc.MediaType.IsIndex() {
		return m, nil
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return Manifest{}, fmt.Errorf("index %s: %w", ref, err)
	}
	m.Platforms = []v1.Platform{}
	for _, d := range idx.Manifests {
		if d.Platform != nil && !isAttestation(d) {
			m.Platforms = append(m.Platforms, *d.Platform)
		}
	}
	return m, nil
}

// isAttestation reports whether an index entry is a BuildKit provenance or
// SBOM manifest rather than an image.
func isAttestation(d v1.Descriptor) bool {
	if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

// Image is the image ref points to, read with the rig's logins. For an
// index, the image for platform ("linux/amd64", ...) is used; "" takes a
// single-platform image as it is.
func Image(ctx context.Context, ref, platform string) (v1.Image, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain{})}
	if platform != "" {
		p, err := v1.ParsePlatform(platform)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		opts = append(opts, remote.WithPlatform(*p))
	}
	img, err := remote.Image(r, opts...)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return img, nil
}

// PushImage writes img to ref (host:port/name:tag) with the rig's logins.
func PushImage(ctx context.Context, ref string, img v1.Image) error {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain{})); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// Labels returns the labels of the image config that ref points to. For an
// index, the image for platform ("linux/amd64", "linux/arm64", ...) is
// used; "" means linux/amd64. A single-platform image is used whatever its
// platform. The result is never nil.
func Labels(ctx context.Context, ref, platform string) (map[string]string, error) {
	img, err := Image(ctx, ref, platform)
	if err != nil {
		return nil, fmt.Errorf("labels of %s: %w", ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("labels of %s: config: %w", ref, err)
	}
	if cfg.Config.Labels == nil {
		return map[string]string{}, nil
	}
	return cfg.Config.Labels, nil
}
