package rig

import (
	"context"
	"reflect"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// labelledImage is a random OCI image for platform with one revision label.
func labelledImage(t *testing.T, platform v1.Platform, revision string) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Config.Labels = map[string]string{"org.opencontainers.image.revision": revision}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// TestFetchManifestAndLabels pushes an index of two images and a BuildKit
// style attestation to a real registry and reads it back as the e2e tests do.
func TestFetchManifestAndLabels(t *testing.T) {
	reg := StartRegistry(t)
	amd := labelledImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, "abc")
	arm := labelledImage(t, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "def")
	attest := labelledImage(t, v1.Platform{OS: "unknown", Architecture: "unknown"}, "")
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: attest, Descriptor: v1.Descriptor{
			Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"},
		}},
	)
	repo := reg.Addr + "/team/app"
	push := func(ref string, w func(name.Reference) error) {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := w(r); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	push(repo+":multi", func(r name.Reference) error { return remote.WriteIndex(r, idx) })
	push(repo+":single", func(r name.Reference) error { return remote.Write(r, amd) })
	ctx := context.Background()

	m, err := FetchManifest(ctx, repo+":multi")
	if err != nil {
		t.Fatal(err)
	}
	wantPlatforms := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}}
	if !m.IsIndex() || m.Digest != digestOf(t, idx) || m.MediaType != "application/vnd.oci.image.index.v1+json" ||
		!reflect.DeepEqual(m.Platforms, wantPlatforms) {
		t.Errorf("FetchManifest(multi) = %s %s %v, want the index %s with platforms %v", m.MediaType, m.Digest, m.Platforms, digestOf(t, idx), wantPlatforms)
	}
	m, err = FetchManifest(ctx, repo+"@"+digestOf(t, arm))
	if err != nil || m.IsIndex() || m.Digest != digestOf(t, arm) || m.Platforms != nil {
		t.Errorf("FetchManifest(arm digest) = %s %s %v, %v; want the arm64 manifest", m.MediaType, m.Digest, m.Platforms, err)
	}
	if _, err := FetchManifest(ctx, repo+":nope"); err == nil {
		t.Errorf("FetchManifest of a missing tag succeeded")
	}

	for _, tc := range []struct{ ref, platform, want string }{
		{repo + ":multi", "linux/amd64", "abc"},
		{repo + ":multi", "linux/arm64", "def"},
		{repo + ":single", "linux/arm64", "abc"}, // a single image is taken as it is
	} {
		labels, err := Labels(ctx, tc.ref, tc.platform)
		if want := map[string]string{"org.opencontainers.image.revision": tc.want}; err != nil || !reflect.DeepEqual(labels, want) {
			t.Errorf("Labels(%s, %s) = %v, %v; want %v", tc.ref, tc.platform, labels, err, want)
		}
	}
	if _, err := Labels(ctx, repo+":multi", "linux/s390x"); err == nil {
		t.Errorf("Labels for a platform the index lacks succeeded")
	}
}
