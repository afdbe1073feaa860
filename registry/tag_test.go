package registry

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestTagEmbedded tags indexes and single manifests, OCI and Docker, pushed
// to the embedded registry, and reads them back under the new tags.
func TestTagEmbedded(t *testing.T) {
	e := startTest(t, "127.0.0.1:0", t.TempDir(), nil)
	img := pushTestImage(t, e.Addr(), authn.Anonymous)
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	dockerImg := image(t, amd64, "docker", dockerSingle)
	dockerIdx := index(t, dockerList, dockerImg)
	push(t, e.Addr()+"/"+img.repo+":docker-list", dockerIdx, authn.Anonymous)
	c := Client{}
	ctx := context.Background()
	image := e.Addr() + "/" + img.repo

	for _, tc := range []struct {
		tag string
		x   manifester
	}{
		{"release", img.idx},
		{"single", img.amd},
		{"docker-list2", dockerIdx},
		{"docker", dockerImg},
		{img.amdTag, img.arm}, // moves an existing tag
		{"release", img.amd},  // and back from index to manifest
		{"release", img.idx},
	} {
		digest, mediaType, raw := manifestOf(t, tc.x)
		if err := c.Tag(ctx, image, digest, tc.tag); err != nil {
			t.Errorf("Tag(%s, %s, %s): %v", image, digest, tc.tag, err)
			continue
		}
		checkServed(t, e.Addr(), img.repo, tc.tag, "", digest, mediaType, raw)
	}

	// The media types were those written out, not just whatever was pushed.
	for tag, want := range map[string]string{"single": ociManifest, "docker": dockerSingle, "docker-list2": dockerList, "release": ociIndex} {
		if got := getManifest(t, e.Addr(), img.repo, tag, ""); got.mediaType != want {
			t.Errorf("%s served as %q, want %q", tag, got.mediaType, want)
		}
	}

	missing := "sha256:" + strings.Repeat("0", 64)
	err := c.Tag(ctx, image, missing, "never")
	if err == nil || errors.Is(err, ErrUnreachable) {
		t.Fatalf("Tag of a missing digest: err = %v, want an error that is not ErrUnreachable", err)
	}
	for _, want := range []string{e.Addr(), img.repo, missing, "never", "MANIFEST_UNKNOWN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Tag error %q does not contain %q", err, want)
		}
	}
	if got := getManifest(t, e.Addr(), img.repo, "never", ""); got.status != http.StatusNotFound {
		t.Errorf("failed Tag created the tag anyway: GET status %d", got.status)
	}
	idxDigest, _, _ := manifestOf(t, img.idx)
	if err := c.Tag(ctx, e.Addr()+"/no/such/repo", idxDigest, "v1"); err == nil || errors.Is(err, ErrUnreachable) {
		t.Errorf("Tag in a missing repository: err = %v, want an error that is not ErrUnreachable", err)
	}
}

// failTransport fails the test when a request is sent.
type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
	return nil, errors.New("no requests expected")
}

// TestTagInvalidArguments: bad arguments are refused before any request.
func TestTagInvalidArguments(t *testing.T) {
	c := Client{Transport: failTransport{t}}
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct{ image, digest, tag, wantErr string }{
		{"127.0.0.1:5000/app:v1", d, "v2", "without tag or digest"},
		{"127.0.0.1:5000/app@" + d, d, "v2", "without tag or digest"},
		{"app", d, "v2", "invalid image"},
		{"library/app", d, "v2", "invalid image"}, // no host: no Docker Hub default
		{"127.0.0.1:5000/App", d, "v2", "invalid image"},
		{"127.0.0.1:5000/app", "sha256:abc", "v2", "invalid digest"},
		{"127.0.0.1:5000/app", "v1", "v2", "invalid digest"},
		{"127.0.0.1:5000/app", d, "", "invalid tag"},
		{"127.0.0.1:5000/app", d, "-v2", "invalid tag"},
		{"127.0.0.1:5000/app", d, d, "invalid tag"},
	} {
		err := c.Tag(context.Background(), tc.image, tc.digest, tc.tag)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Tag(%q, %q, %q) error = %v, want one containing %q", tc.image, tc.digest, tc.tag, err, tc.wantErr)
		}
	}
}
