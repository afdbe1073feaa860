package api_test

import (
	"context"
	"net/http"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/outbound"
	"github.com/slipway-build/slipway/registry"
)

// startRegistry runs an embedded registry without auth on loopback, the
// one the API under test browses; it answers its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := registry.StartEmbedded(ctx, "127.0.0.1:0", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e.Addr()
}

// withRegistry points the API at the registry at addr: its images are
// the embedded registry's, and it reads them with registry.Browser.
func withRegistry(addr string) func(*api.Server) {
	return func(s *api.Server) {
		s.RegistryHost = addr
		s.Registry = registry.Browser{Host: addr}
		s.RegistryOutbound = (&outbound.Guard{Lookup: testDNS}).With(netip.MustParseAddrPort(addr))
	}
}

// pushRandom pushes a random image to ref and answers its digest.
func pushRandom(t *testing.T, ref string) string {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := crane.Push(img, ref, crane.Insecure); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestImages: the registry browser lists the images a caller may read,
// with their repositories and tag counts, filtered by organization and
// searched by name; tags name the builds that pushed them.
func TestImages(t *testing.T) {
	reg := startRegistry(t)
	m := newMatrix(t, withRegistry(reg))
	h := m.h
	demoRepo := validRepo("acme/demo")
	demoRepo.Image = reg + "/acme/demo"
	demo := h.createRepo(demoRepo)
	apiRepo := validRepo("acme/api")
	apiRepo.Image = reg + "/acme/api" // registered, never pushed
	apiImage := h.createRepo(apiRepo)

	// acme/demo: latest pushed by a build; v1 pushed by hand; moved
	// claimed by the build, then pushed over by hand.
	b := h.trigger(demo.ID, "", commitA)
	latest := pushRandom(t, reg+"/acme/demo:latest")
	v1 := pushRandom(t, reg+"/acme/demo:v1")
	claimed := pushRandom(t, reg+"/acme/demo:moved")
	for tag, digest := range map[string]string{"latest": latest, "moved": claimed} {
		if _, err := h.store.ClaimTag(testCtx(t), demo.Image, tag, b, digest, func(string) error { return nil }); err != nil {
			t.Fatalf("ClaimTag %s: %v", tag, err)
		}
	}
	moved := pushRandom(t, reg+"/acme/demo:moved")
	base := pushRandom(t, reg+"/acme/base:3.20") // by hand, no repository
	tool := pushRandom(t, reg+"/other/tool:1.0")

	acmeAPI := api.Image{Organization: "acme", Name: "acme/api", Image: reg + "/acme/api", Repo: apiImage.ID}
	acmeBase := api.Image{Organization: "acme", Name: "acme/base", Image: reg + "/acme/base", Tags: 1}
	acmeDemo := api.Image{Organization: "acme", Name: "acme/demo", Image: reg + "/acme/demo", Repo: demo.ID, Tags: 3}
	otherTool := api.Image{Organization: "other", Name: "other/tool", Image: reg + "/other/tool", Tags: 1}

	list := func(who, org, q string, want ...api.Image) {
		t.Helper()
		c := h.client
		c.Token = m.tokens[who]
		got, err := c.Images(testCtx(t), org, q)
		if want == nil {
			want = []api.Image{}
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("images as %s (org %q, q %q) = %+v, %v\nwant %+v", who, org, q, got, err, want)
		}
	}
	tags := func(who, name string, want []api.ImageTag) {
		t.Helper()
		c := h.client
		c.Token = m.tokens[who]
		got, err := c.ImageTags(testCtx(t), name)
		if want == nil {
			apiError(t, err, http.StatusNotFound)
			return
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("tags of %s as %s = %+v, %v\nwant %+v", name, who, got, err, want)
		}
	}

	list(reader, "", "", acmeAPI, acmeBase, acmeDemo)
	list(site, "", "", acmeAPI, acmeBase, acmeDemo, otherTool)
	list(site, "other", "", otherTool)
	list(reader, "other", "")
	list(reader, "", "DEMO", acmeDemo)
	list(reader, "", "ba", acmeBase)
	list(reader, "acme", "a", acmeAPI, acmeBase, acmeDemo)
	list(other, "", "", otherTool)
	list(other, "acme", "")

	demoTags := []api.ImageTag{
		{Tag: "latest", Digest: latest, Build: b.ID},
		{Tag: "moved", Digest: moved}, // pushed over by hand since the build
		{Tag: "v1", Digest: v1},
	}
	tags(reader, "acme/demo", demoTags)
	tags(site, "acme/demo", demoTags)
	tags(reader, "acme/api", []api.ImageTag{})
	tags(reader, "acme/nothing", nil)
	tags(other, "acme/demo", nil)
	tags(other, "acme/base", nil)
	tags(other, "other/tool", []api.ImageTag{{Tag: "1.0", Digest: tool}})
	if code, _, raw := h.do("GET", "/api/v1/images/acme/demo", m.tokens[reader], ""); code != http.StatusNotFound {
		t.Errorf("GET /api/v1/images/acme/demo (no /tags): HTTP %d %s, want 404", code, raw)
	}

	t.Run("public images are anyone's to read", func(t *testing.T) {
		if code, _, raw := h.do("PATCH", "/api/v1/orgs/acme", m.tokens[admin], `{"public_images":["acme/base"]}`); code != http.StatusOK {
			t.Fatalf("make acme/base public: HTTP %d %s", code, raw)
		}
		if code, _, raw := h.do("PATCH", "/api/v1/repos/"+demo.ID, m.tokens[admin], `{"public":true}`); code != http.StatusOK {
			t.Fatalf("make acme/demo public: HTTP %d %s", code, raw)
		}
		publicBase, publicDemo := acmeBase, acmeDemo
		publicBase.Public, publicDemo.Public = true, true
		list(reader, "", "", acmeAPI, publicBase, publicDemo)
		// Another organization's caller sees the repository of neither.
		hiddenDemo := publicDemo
		hiddenDemo.Repo = ""
		list(other, "", "", publicBase, hiddenDemo, otherTool)
		list(other, "acme", "bas", publicBase)
		tags(other, "acme/base", []api.ImageTag{{Tag: "3.20", Digest: base}})
		tags(other, "acme/demo", demoTags)
		tags(other, "acme/api", nil)
	})
}

// TestImagesWithoutRegistry: with the embedded registry off there are no
// images to browse.
func TestImagesWithoutRegistry(t *testing.T) {
	h := newHarness(t)
	h.createRepo(validRepo("acme/demo"))
	got, err := h.client.Images(testCtx(t), "", "")
	if err != nil || len(got) != 0 {
		t.Errorf("images = %+v, %v; want none", got, err)
	}
	_, err = h.client.ImageTags(testCtx(t), "acme/demo")
	apiError(t, err, http.StatusNotFound)
}
