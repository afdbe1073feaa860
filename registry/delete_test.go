package registry

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

// TestDeleteEmbedded removes a tag and leaves the others; deleting it
// again is no error.
func TestDeleteEmbedded(t *testing.T) {
	e := startTest(t, "127.0.0.1:0", t.TempDir(), nil)
	img := pushTestImage(t, e.Addr(), authn.Anonymous)
	c := Client{}
	ctx := context.Background()
	image := e.Addr() + "/" + img.repo
	digest, _, _ := manifestOf(t, img.idx)
	for _, tag := range []string{"pr-7", "keep"} {
		if err := c.Tag(ctx, image, digest, tag); err != nil {
			t.Fatalf("Tag %s: %v", tag, err)
		}
	}
	for range 2 {
		if err := c.Delete(ctx, image, "pr-7"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if got := getManifest(t, e.Addr(), img.repo, "pr-7", ""); got.status != http.StatusNotFound {
		t.Errorf("deleted tag served: status %d", got.status)
	}
	if got := getManifest(t, e.Addr(), img.repo, "keep", ""); got.status != http.StatusOK {
		t.Errorf("other tag: status %d, want 200", got.status)
	}
}

// TestDeleteInvalidArguments: bad arguments are refused before any request.
func TestDeleteInvalidArguments(t *testing.T) {
	c := Client{Transport: failTransport{t}}
	for _, tc := range []struct{ image, tag string }{
		{"127.0.0.1:5000/acme/demo", "-x"},
		{"127.0.0.1:5000/acme/demo", ""},
		{"acme/demo", "pr-7"},
		{"127.0.0.1:5000/acme/demo:latest", "pr-7"},
	} {
		if err := c.Delete(context.Background(), tc.image, tc.tag); err == nil {
			t.Errorf("Delete(%q, %q) = nil, want an error", tc.image, tc.tag)
		}
	}
}
