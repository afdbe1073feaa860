package builder_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/registry"
)

// tool finds a binary that `make build` puts in bin/, the way Slipway finds
// it. Like the e2e tests these never skip: a missing binary fails the test
// with how to get it, so a CI run can never pass without building anything.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := builder.FindBinary(name)
	if err != nil {
		t.Fatalf("%v\nbuild it with `make build` and run the tests with PATH=<repo>/bin:$PATH (make test does both)", err)
	}
	return p
}

// startDaemon runs a buildkitd of the test's own (OCI worker, runc) and stops
// it when the test ends, dumping its log if the test failed.
func startDaemon(t testing.TB) (*builder.Daemon, builder.DaemonOptions) {
	t.Helper()
	bin, runc := tool(t, "buildkitd"), tool(t, "runc")
	// A short directory: the socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "bk-")
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "buildkitd.log"))
	if err != nil {
		t.Fatal(err)
	}
	o := builder.DaemonOptions{
		Binary: bin, Runc: runc,
		Root: filepath.Join(dir, "root"), Socket: filepath.Join(dir, "buildkitd.sock"),
		Log: logf, Config: "[worker.oci]\n  gc = false\n",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	d, err := builder.StartDaemon(ctx, o)
	if err != nil {
		logf.Close()
		t.Fatalf("start buildkitd: %v\n%s", err, tail(filepath.Join(dir, "buildkitd.log")))
	}
	t.Cleanup(func() {
		d.Stop()
		logf.Close()
		if t.Failed() {
			t.Logf("buildkitd log (tail):\n%s", tail(logf.Name()))
		}
		// Snapshots of a daemon that did not unmount them would keep the
		// directory from being removed.
		rig.UnmountUnder(dir)
		_ = os.RemoveAll(dir)
	})
	return d, o
}

func tail(path string) string {
	raw, _ := os.ReadFile(path)
	if len(raw) > 8000 {
		raw = raw[len(raw)-8000:]
	}
	return string(raw)
}

// startRegistry runs the embedded registry on a random loopback port.
func startRegistry(t testing.TB) *registryClient {
	t.Helper()
	reg, err := registry.StartEmbedded(t.Context(), "127.0.0.1:0", t.TempDir(), nil)
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	return &registryClient{addr: reg.Addr(), http: &http.Client{
		// No proxy, whatever the environment says: tests talk to loopback only.
		Transport: &http.Transport{Proxy: nil},
		Timeout:   10 * time.Second,
	}}
}

// registryClient reads what builds pushed, straight over the registry API.
type registryClient struct {
	addr string
	http *http.Client
}

// Every manifest type a build may push, so the registry never converts.
var manifestTypes = []string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}

// get fetches /v2/<name>/<kind>/<ref> and returns the response with its body
// read.
func (r *registryClient) get(t testing.TB, name, kind, ref string) (*http.Response, []byte) {
	t.Helper()
	url := fmt.Sprintf("http://%s/v2/%s/%s/%s", r.addr, name, kind, ref)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range manifestTypes {
		req.Header.Add("Accept", mt)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

// manifest is the part of an OCI manifest or index the tests look at.
type manifest struct {
	MediaType   string            `json:"mediaType"`
	Config      descriptor        `json:"config"`
	Layers      []descriptor      `json:"layers"`
	Manifests   []descriptor      `json:"manifests"`
	Annotations map[string]string `json:"annotations"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

// manifest fetches ref (a tag or digest) of name, which must exist, and checks
// that the registry's digest is that of the bytes it served.
func (r *registryClient) manifest(t testing.TB, name, ref string) (manifest, string) {
	t.Helper()
	resp, body := r.get(t, name, "manifests", ref)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest %s:%s: HTTP %d: %s", name, ref, resp.StatusCode, body)
	}
	dgst := resp.Header.Get("Docker-Content-Digest")
	sum := sha256.Sum256(body)
	if want := "sha256:" + hex.EncodeToString(sum[:]); dgst != want {
		t.Fatalf("manifest %s:%s: Docker-Content-Digest %q, body hashes to %q", name, ref, dgst, want)
	}
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("manifest %s:%s: %v: %s", name, ref, err, body)
	}
	return m, dgst
}

// absent checks that ref of name is not in the registry.
func (r *registryClient) absent(t testing.TB, name, ref string) {
	t.Helper()
	if resp, body := r.get(t, name, "manifests", ref); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET manifest %s:%s: HTTP %d, want 404: %s", name, ref, resp.StatusCode, body)
	}
}

// tags lists name's tags; distribution answers 404 for a repository that
// has none.
func (r *registryClient) tags(t testing.TB, name string) []string {
	t.Helper()
	resp, body := r.get(t, name, "tags", "list")
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET tags of %s: HTTP %d: %s", name, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("tags of %s: %v: %s", name, err, body)
	}
	return list.Tags
}

// labels returns the image config's labels.
func (r *registryClient) labels(t testing.TB, name string, m manifest) map[string]string {
	t.Helper()
	resp, body := r.get(t, name, "blobs", m.Config.Digest)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET config %s: HTTP %d", m.Config.Digest, resp.StatusCode)
	}
	var cfg struct {
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		t.Fatalf("image config: %v: %s", err, body)
	}
	return cfg.Config.Labels
}

// topFile returns the content of path in the image's last layer, the one the
// Dockerfile's last step wrote.
func (r *registryClient) topFile(t testing.TB, name string, m manifest, path string) string {
	t.Helper()
	if len(m.Layers) == 0 {
		t.Fatalf("image %s has no layers", name)
	}
	resp, body := r.get(t, name, "blobs", m.Layers[len(m.Layers)-1].Digest)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET top layer of %s: HTTP %d", name, resp.StatusCode)
	}
	content, err := fileInLayer(body, path)
	if err != nil {
		t.Fatalf("top layer of %s: %v", name, err)
	}
	return content
}

func fileInLayer(layer []byte, path string) (string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return "", fmt.Errorf("gunzip layer: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("%s not in layer", path)
		}
		if err != nil {
			return "", fmt.Errorf("read layer: %w", err)
		}
		if strings.TrimPrefix(h.Name, "./") == strings.TrimPrefix(path, "/") {
			raw, err := io.ReadAll(tr)
			return string(raw), err
		}
	}
}

// syncBuffer is a log a test may read while the build still writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// nonce makes a step's text unique, so BuildKit cannot answer it from cache.
func nonce(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// buildDir writes files (the Dockerfile among them) into a fresh context
// directory and returns a request for it.
func buildDir(t testing.TB, files map[string]string) builder.Request {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return builder.Request{ContextDir: dir, Dockerfile: filepath.Join(dir, "Dockerfile")}
}
