package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func startTest(t *testing.T, addr, dir string, logger *slog.Logger) *Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := StartEmbedded(ctx, addr, dir, logger)
	if err != nil {
		t.Fatalf("StartEmbedded(%q): %v", addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// do sends one request to the registry and checks the status.
func do(t *testing.T, method, u, contentType string, body []byte, wantStatus int) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %s, want %d: %s", method, u, resp.Status, wantStatus, msg)
	}
	return resp
}

// pushBlob uploads data with a POST (start upload) and a monolithic PUT.
func pushBlob(t *testing.T, addr, repo string, data []byte) string {
	t.Helper()
	base, _ := url.Parse("http://" + addr)
	resp := do(t, http.MethodPost, base.String()+"/v2/"+repo+"/blobs/uploads/", "", nil, http.StatusAccepted)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		t.Fatalf("upload Location %q: %v", resp.Header.Get("Location"), err)
	}
	u := base.ResolveReference(loc)
	q := u.Query()
	q.Set("digest", digestOf(data))
	u.RawQuery = q.Encode()
	resp = do(t, http.MethodPut, u.String(), "application/octet-stream", data, http.StatusCreated)
	if got := resp.Header.Get("Docker-Content-Digest"); got != digestOf(data) {
		t.Fatalf("blob digest %q, want %q", got, digestOf(data))
	}
	return digestOf(data)
}

func putManifest(t *testing.T, addr, repo, ref, mediaType string, body []byte) {
	t.Helper()
	resp := do(t, http.MethodPut, "http://"+addr+"/v2/"+repo+"/manifests/"+ref, mediaType, body, http.StatusCreated)
	if got := resp.Header.Get("Docker-Content-Digest"); got != digestOf(body) {
		t.Fatalf("manifest digest %q, want %q", got, digestOf(body))
	}
}

// testImage is what pushTestImage stored.
type testImage struct {
	repo                   string
	amd, arm, attest, idx  []byte // manifest bytes as PUT
	amdTag, idxTag, armTag string
}

// pushTestImage pushes, by hand through the registry HTTP API, two
// single-platform OCI images (linux/amd64 with revision "abc", linux/arm64/v8
// with revision "def"), a BuildKit-style attestation manifest and an OCI
// index over the three.
func pushTestImage(t *testing.T, addr string) testImage {
	t.Helper()
	img := testImage{repo: "slipway/demo", amdTag: "v1", armTag: "arm", idxTag: "multi"}

	layer := []byte("a tiny layer, not even a tarball")
	layerDigest := pushBlob(t, addr, img.repo, layer)
	layerDesc := map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layerDigest, "size": len(layer)}

	manifest := func(cfg []byte, layers []map[string]any, annotations map[string]string) []byte {
		m := map[string]any{
			"schemaVersion": 2,
			"mediaType":     MediaTypeOCIManifest,
			"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": pushBlob(t, addr, img.repo, cfg), "size": len(cfg)},
			"layers":        layers,
		}
		if annotations != nil {
			m["annotations"] = annotations
		}
		return mustJSON(t, m)
	}
	config := func(arch, variant, revision string) []byte {
		return mustJSON(t, map[string]any{
			"architecture": arch,
			"os":           "linux",
			"variant":      variant,
			"config":       map[string]any{"Labels": map[string]string{"org.opencontainers.image.revision": revision}},
			"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digestOf([]byte("uncompressed"))}},
		})
	}

	img.amd = manifest(config("amd64", "", "abc"), []map[string]any{layerDesc}, nil)
	putManifest(t, addr, img.repo, img.amdTag, MediaTypeOCIManifest, img.amd)
	img.arm = manifest(config("arm64", "v8", "def"), []map[string]any{layerDesc}, nil)
	putManifest(t, addr, img.repo, img.armTag, MediaTypeOCIManifest, img.arm)

	statement := []byte(`{"_type":"https://in-toto.io/Statement/v0.1"}`)
	statementDesc := map[string]any{"mediaType": "application/vnd.in-toto+json", "digest": pushBlob(t, addr, img.repo, statement), "size": len(statement)}
	img.attest = manifest([]byte(`{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`),
		[]map[string]any{statementDesc}, nil)
	putManifest(t, addr, img.repo, digestOf(img.attest), MediaTypeOCIManifest, img.attest)

	entry := func(m []byte, platform map[string]string, annotations map[string]string) map[string]any {
		e := map[string]any{"mediaType": MediaTypeOCIManifest, "digest": digestOf(m), "size": len(m), "platform": platform}
		if annotations != nil {
			e["annotations"] = annotations
		}
		return e
	}
	img.idx = mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeOCIIndex,
		"manifests": []map[string]any{
			entry(img.amd, map[string]string{"os": "linux", "architecture": "amd64"}, nil),
			entry(img.arm, map[string]string{"os": "linux", "architecture": "arm64", "variant": "v8"}, nil),
			entry(img.attest, map[string]string{"os": "unknown", "architecture": "unknown"}, map[string]string{
				"vnd.docker.reference.type":   "attestation-manifest",
				"vnd.docker.reference.digest": digestOf(img.amd),
			}),
		},
	})
	putManifest(t, addr, img.repo, img.idxTag, MediaTypeOCIIndex, img.idx)
	return img
}

// recorder is a slog.Handler keeping every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// registryRecords returns the records forwarded from distribution's logrus.
func (r *recorder) registryRecords() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Record
	for _, rec := range r.records {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "component" && a.Value.String() == "registry" {
				out = append(out, rec)
				return false
			}
			return true
		})
	}
	return out
}

// TestEmbedded pushes an image into a fresh embedded registry, reads it back
// with Client, restarts the registry on the same directory and reads it
// again.
func TestEmbedded(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}

	// Nothing may reach stdout: capture it while the registry starts and
	// serves requests.
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	realStdout := os.Stdout
	os.Stdout = stdoutW
	stdoutDone := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(stdoutR)
		stdoutDone <- b
	}()
	restored := false
	restoreStdout := func() []byte {
		if restored {
			return nil
		}
		restored = true
		os.Stdout = realStdout
		stdoutW.Close()
		return <-stdoutDone
	}
	defer restoreStdout()

	otelBefore, otelWasSet := os.LookupEnv("OTEL_TRACES_EXPORTER")
	e := startTest(t, "127.0.0.1:0", dir, slog.New(rec))
	if v, set := os.LookupEnv("OTEL_TRACES_EXPORTER"); v != otelBefore || set != otelWasSet {
		t.Errorf("OTEL_TRACES_EXPORTER after StartEmbedded = %q (set %v), want %q (set %v)", v, set, otelBefore, otelWasSet)
	}

	host, port, err := net.SplitHostPort(e.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" || port == "" {
		t.Fatalf("Addr() = %q, want 127.0.0.1:<real port>", e.Addr())
	}

	img := pushTestImage(t, e.Addr())
	c := Client{}
	ctx := context.Background()
	if err := c.Ping(ctx, e.Addr()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	checkImage(t, c, e.Addr(), img)

	if out := logrus.StandardLogger().Out; out != io.Discard {
		t.Errorf("logrus standard logger writes to %T, want io.Discard", out)
	}
	if out := restoreStdout(); len(out) > 0 {
		t.Errorf("the embedded registry wrote to stdout:\n%s", out)
	}
	regRecs := rec.registryRecords()
	if len(regRecs) == 0 {
		t.Errorf("no distribution log records reached the slog logger")
	}
	for _, r := range regRecs {
		if r.Level != slog.LevelDebug {
			t.Errorf("registry record %q at level %v, want debug", r.Message, r.Level)
		}
	}

	// File storage survives a restart on the same directory and address.
	addr := e.Addr()
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.Close(closeCtx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(closeCtx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.Ping(ctx, addr); err == nil {
		t.Fatalf("Ping after Close succeeded")
	}
	e2 := startTest(t, addr, dir, nil)
	if e2.Addr() != addr {
		t.Errorf("restarted Addr() = %q, want %q", e2.Addr(), addr)
	}
	checkImage(t, c, e2.Addr(), img)
}

// checkImage reads the pushed image back through Client.
func checkImage(t *testing.T, c Client, addr string, img testImage) {
	t.Helper()
	ctx := context.Background()
	ref := func(s string) string { return addr + "/" + img.repo + s }

	manifests := []struct {
		ref       string
		raw       []byte
		mediaType string
		platforms []Platform
	}{
		{ref(":" + img.amdTag), img.amd, MediaTypeOCIManifest, nil},
		{ref("@" + digestOf(img.amd)), img.amd, MediaTypeOCIManifest, nil},
		{ref(":" + img.idxTag), img.idx, MediaTypeOCIIndex, []Platform{
			{OS: "linux", Architecture: "amd64"},
			{OS: "linux", Architecture: "arm64", Variant: "v8"},
		}},
		{ref(":" + img.idxTag + "@" + digestOf(img.idx)), img.idx, MediaTypeOCIIndex, []Platform{
			{OS: "linux", Architecture: "amd64"},
			{OS: "linux", Architecture: "arm64", Variant: "v8"},
		}},
	}
	for _, tc := range manifests {
		m, err := c.Manifest(ctx, tc.ref)
		if err != nil {
			t.Errorf("Manifest(%s): %v", tc.ref, err)
			continue
		}
		if m.Digest != digestOf(tc.raw) {
			t.Errorf("Manifest(%s).Digest = %s, want %s", tc.ref, m.Digest, digestOf(tc.raw))
		}
		if m.MediaType != tc.mediaType {
			t.Errorf("Manifest(%s).MediaType = %q, want %q", tc.ref, m.MediaType, tc.mediaType)
		}
		if !bytes.Equal(m.Raw, tc.raw) {
			t.Errorf("Manifest(%s).Raw differs from the bytes pushed", tc.ref)
		}
		if !reflect.DeepEqual(m.Platforms, tc.platforms) {
			t.Errorf("Manifest(%s).Platforms = %v, want %v", tc.ref, m.Platforms, tc.platforms)
		}
	}

	for _, missing := range []string{ref(":nope"), addr + "/no/such/repo:v1", ref("@" + digestOf([]byte("nothing")))} {
		if _, err := c.Manifest(ctx, missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Manifest(%s) error = %v, want ErrNotFound", missing, err)
		}
	}

	labels := []struct {
		ref, platform string
		want          string // revision label; "" means an error is expected
		notFound      bool
	}{
		{ref(":" + img.amdTag), "", "abc", false},
		{ref(":" + img.amdTag), "linux/arm64", "abc", false}, // single manifest: platform not checked
		{ref(":" + img.armTag), "", "def", false},
		{ref(":" + img.idxTag), "", "abc", false},
		{ref(":" + img.idxTag), "linux/amd64", "abc", false},
		{ref(":" + img.idxTag), "linux/arm64", "def", false},
		{ref(":" + img.idxTag), "linux/arm64/v8", "def", false},
		{ref("@" + digestOf(img.idx)), "linux/amd64", "abc", false},
		{ref(":" + img.idxTag), "linux/s390x", "", true},
		{ref(":" + img.idxTag), "linux/arm64/v7", "", true},
		{ref(":nope"), "", "", true},
		{ref(":" + img.idxTag), "linux", "", false},
	}
	for _, tc := range labels {
		got, err := c.Labels(ctx, tc.ref, tc.platform)
		if tc.want == "" {
			if err == nil {
				t.Errorf("Labels(%s, %q) = %v, want an error", tc.ref, tc.platform, got)
			} else if errors.Is(err, ErrNotFound) != tc.notFound {
				t.Errorf("Labels(%s, %q) error = %v; errors.Is(ErrNotFound) = %v, want %v", tc.ref, tc.platform, err, !tc.notFound, tc.notFound)
			}
			continue
		}
		if err != nil {
			t.Errorf("Labels(%s, %q): %v", tc.ref, tc.platform, err)
			continue
		}
		want := map[string]string{"org.opencontainers.image.revision": tc.want}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Labels(%s, %q) = %v, want %v", tc.ref, tc.platform, got, want)
		}
	}
}

func TestStartEmbeddedPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	e, err := StartEmbedded(context.Background(), addr, t.TempDir(), nil)
	if err == nil {
		e.Close(context.Background())
		t.Fatalf("StartEmbedded on busy %s succeeded", addr)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address %s", err, addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %q is not EADDRINUSE", err)
	}
}

func TestStartEmbeddedBadDir(t *testing.T) {
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", file, file + "/sub"} {
		if e, err := StartEmbedded(context.Background(), "127.0.0.1:0", dir, nil); err == nil {
			e.Close(context.Background())
			t.Errorf("StartEmbedded with dir %q succeeded", dir)
		}
	}
}

// TestEmbeddedTraceExport checks that distribution's OpenTelemetry span
// export is off unless the user asked for it: a fake OTLP collector must see
// nothing by default, and spans when OTEL_TRACES_EXPORTER=otlp was set.
func TestEmbeddedTraceExport(t *testing.T) {
	for _, tc := range []struct {
		name     string
		exporter string // OTEL_TRACES_EXPORTER before StartEmbedded; "" = unset
		wantSent bool
	}{
		{"default is off", "", false},
		{"user choice is kept", "otlp", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/x-protobuf")
				w.WriteHeader(http.StatusOK)
			}))
			defer collector.Close()
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.URL+"/v1/traces")
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
			t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20") // milliseconds
			t.Setenv("OTEL_TRACES_EXPORTER", tc.exporter)
			if tc.exporter == "" {
				os.Unsetenv("OTEL_TRACES_EXPORTER") // t.Setenv restores it afterwards
			}

			e := startTest(t, "127.0.0.1:0", t.TempDir(), nil)
			if got := os.Getenv("OTEL_TRACES_EXPORTER"); got != tc.exporter {
				t.Errorf("OTEL_TRACES_EXPORTER = %q after start, want %q", got, tc.exporter)
			}
			for range 5 {
				if err := (Client{}).Ping(context.Background(), e.Addr()); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(3 * time.Second)
			if !tc.wantSent {
				deadline = time.Now().Add(500 * time.Millisecond)
			}
			for time.Now().Before(deadline) && hits.Load() == 0 {
				time.Sleep(20 * time.Millisecond)
			}
			if sent := hits.Load() > 0; sent != tc.wantSent {
				t.Errorf("spans sent to the OTLP endpoint: %v, want %v", sent, tc.wantSent)
			}
		})
	}
}

func TestDialAddr(t *testing.T) {
	for bound, want := range map[string]string{
		"127.0.0.1:5000":   "127.0.0.1:5000",
		"0.0.0.0:5000":     "127.0.0.1:5000",
		"[::]:5000":        "127.0.0.1:5000",
		"[::1]:5000":       "[::1]:5000",
		"192.168.1.2:5000": "192.168.1.2:5000",
	} {
		if got := dialAddr(bound); got != want {
			t.Errorf("dialAddr(%q) = %q, want %q", bound, got, want)
		}
	}
}
