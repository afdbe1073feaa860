package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// pushTestImage puts a two-layer image with a CMD on an open registry on
// loopback and answers its reference.
func pushTestImage(t *testing.T) (string, v1.Image) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"cat", "/built.txt"}
	cf.Config.WorkingDir = "/src"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/acme/demo:latest"
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	return ref, img
}

func digests(t *testing.T, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.String())
	}
	return out
}

func TestImageSaveAndInspect(t *testing.T) {
	ref, pushed := pushTestImage(t)
	t.Setenv("SLIPWAY_URL", "http://127.0.0.1:1") // no Slipway: the registry is someone else's
	t.Setenv("SLIPWAY_API_TOKEN", "")
	t.Setenv("HOME", t.TempDir()) // no docker config
	ctx := context.Background()

	path := filepath.Join(t.TempDir(), "demo.tar")
	out, errOut, code := cliRun(t, ctx, nil, "image", "save", ref, "-o", path)
	if code != 0 {
		t.Fatalf("image save: exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "saved "+ref+" (linux/amd64) to "+path+", ") {
		t.Errorf("image save printed %q", out)
	}
	tag, _ := name.NewTag(ref)
	saved, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("the tarball has no image tagged %s: %v", tag, err)
	}
	got, want := digests(t, saved), digests(t, pushed)
	if len(got) != 2 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("tarball layers %v, registry's %v", got, want)
	}

	out, errOut, code = cliRun(t, ctx, nil, "image", "inspect", ref, "-o", "json")
	if code != 0 {
		t.Fatalf("image inspect: exit %d: %s", code, errOut)
	}
	var info imageInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	d, _ := pushed.Digest()
	if info.Digest != d.String() || info.Platform != "linux/amd64" || strings.Join(info.Config.Cmd, " ") != "cat /built.txt" ||
		info.Config.WorkingDir != "/src" || len(info.Layers) != 2 || info.Layers[0].Digest != want[0] {
		t.Errorf("image inspect -o json = %+v", info)
	}

	out, _, _ = cliRun(t, ctx, nil, "image", "inspect", ref)
	for _, line := range []string{"cmd:         [\"cat\", \"/built.txt\"]\n", "working dir: /src\n", "LAYER  ", want[1] + "  1.", "platform:    linux/amd64\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("image inspect lacks %q:\n%s", line, out)
		}
	}
}

func TestImageSaveNeedsOutput(t *testing.T) {
	_, errOut, code := cliRun(t, context.Background(), nil, "image", "save", "127.0.0.1:5000/acme/demo")
	if code != 2 || !strings.Contains(errOut, "-o FILE.tar is required") {
		t.Errorf("image save without -o: exit %d: %s", code, errOut)
	}
}

// The login's token goes only to the token service of the Slipway the CLI
// talks to; Slipway writes a loopback public URL as localhost.
func TestSameHost(t *testing.T) {
	cases := []struct {
		realm, server string
		want          bool
	}{
		{"http://localhost:8080/v2/token", "http://127.0.0.1:8080", true},
		{"https://slipway.example.com/v2/token", "https://slipway.example.com", true},
		{"https://slipway.example.com:8443/v2/token", "https://slipway.example.com", false},
		{"https://evil.example.com/v2/token", "https://slipway.example.com", false},
		{"http://localhost:9090/v2/token", "http://127.0.0.1:8080", false},
		{"", "http://127.0.0.1:8080", false},
	}
	for _, c := range cases {
		if got := sameHost(c.realm, c.server); got != c.want {
			t.Errorf("sameHost(%q, %q) = %v, want %v", c.realm, c.server, got, c.want)
		}
	}
}

func TestBytesOf(t *testing.T) {
	var b bytes.Buffer
	for _, n := range []int64{999, 1000, 1536000, 2500000000} {
		b.WriteString(bytesOf(n) + ";")
	}
	if want := "999 B;1.0 kB;1.5 MB;2.50 GB;"; b.String() != want {
		t.Errorf("bytesOf = %s, want %s", b.String(), want)
	}
}
