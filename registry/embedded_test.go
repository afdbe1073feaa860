package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sirupsen/logrus"
)

func startTest(t *testing.T, addr, dir string, logger *slog.Logger) *Embedded {
	t.Helper()
	return startWith(t, EmbeddedOptions{Addr: addr, Dir: dir, Logger: logger})
}

// startWith starts an embedded registry that the test closes at its end.
func startWith(t *testing.T, opts EmbeddedOptions) *Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := StartEmbeddedWith(ctx, opts)
	if err != nil {
		t.Fatalf("StartEmbeddedWith(%q): %v", opts.Addr, err)
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

// Media types as registries serve them, written out.
const (
	ociIndex     = "application/vnd.oci.image.index.v1+json"
	ociManifest  = "application/vnd.oci.image.manifest.v1+json"
	dockerList   = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerSingle = "application/vnd.docker.distribution.manifest.v2+json"
)

// image is a random image for platform with one revision label, in
// mediaType (ociManifest or dockerSingle).
func image(t *testing.T, platform v1.Platform, revision, mediaType string) v1.Image {
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
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if mediaType == ociManifest {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	return img
}

// index is an index of mediaType (ociIndex or dockerList) over imgs, each
// entry with its image's platform.
func index(t *testing.T, mediaType string, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.MediaType(mediaType))
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: cf.Platform()}})
	}
	return idx
}

// manifester is an image or an index.
type manifester interface {
	Digest() (v1.Hash, error)
	MediaType() (types.MediaType, error)
	RawManifest() ([]byte, error)
}

// manifestOf returns what the registry should serve for x: its digest,
// media type and bytes.
func manifestOf(t *testing.T, x manifester) (digest, mediaType string, raw []byte) {
	t.Helper()
	h, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := x.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	raw, err = x.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String(), string(mt), raw
}

// push writes an image or index, with its blobs and children, under ref.
func push(t *testing.T, ref string, x any, auth authn.Authenticator) {
	t.Helper()
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithAuth(auth), remote.WithTransport(newLoopbackOnly())}
	switch x := x.(type) {
	case v1.Image:
		err = remote.Write(r, x, opts...)
	case v1.ImageIndex:
		err = remote.WriteIndex(r, x, opts...)
	default:
		t.Fatalf("push %T", x)
	}
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// served is a manifest response as a user sees it with curl.
type served struct {
	status    int
	digest    string // Docker-Content-Digest
	mediaType string // Content-Type
	body      []byte
}

// getManifest sends GET /v2/<repo>/manifests/<ref> to addr with an Accept
// header for all four manifest kinds and authorization as the value of
// the Authorization header, if not empty.
func getManifest(t *testing.T, addr, repo, ref, authorization string) served {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/"+repo+"/manifests/"+ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", strings.Join([]string{ociIndex, ociManifest, dockerList, dockerSingle}, ", "))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	return served{resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), resp.Header.Get("Content-Type"), body}
}

// checkServed fails unless addr serves repo:ref as the given manifest.
func checkServed(t *testing.T, addr, repo, ref, authorization, digest, mediaType string, raw []byte) {
	t.Helper()
	got := getManifest(t, addr, repo, ref, authorization)
	if got.status != http.StatusOK || got.digest != digest || got.mediaType != mediaType || !bytes.Equal(got.body, raw) {
		t.Errorf("GET %s:%s = %d, %s, %s; want 200, %s, %s (and the same bytes)", repo, ref, got.status, got.digest, got.mediaType, digest, mediaType)
	}
}

// testImage is what pushTestImage stored.
type testImage struct {
	repo                   string
	amd, arm               v1.Image
	idx                    v1.ImageIndex
	amdTag, armTag, idxTag string
}

// pushTestImage pushes two single-platform OCI images (linux/amd64 with
// revision "abc", linux/arm64/v8 with revision "def") and an OCI index over
// both.
func pushTestImage(t *testing.T, addr string, auth authn.Authenticator) testImage {
	t.Helper()
	img := testImage{repo: "slipway/demo", amdTag: "v1", armTag: "arm", idxTag: "multi"}
	amd64, arm64 := v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	img.amd = image(t, amd64, "abc", ociManifest)
	img.arm = image(t, arm64, "def", ociManifest)
	img.idx = index(t, ociIndex, img.amd, img.arm)
	base := addr + "/" + img.repo
	push(t, base+":"+img.amdTag, img.amd, auth)
	push(t, base+":"+img.armTag, img.arm, auth)
	push(t, base+":"+img.idxTag, img.idx, auth)
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
// over the registry API, restarts the registry on the same directory and
// reads it again.
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

	img := pushTestImage(t, e.Addr(), authn.Anonymous)
	c := Client{}
	ctx := context.Background()
	if err := c.Ping(ctx, e.Addr()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	checkImage(t, e.Addr(), img)

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
	if err := c.Ping(ctx, addr); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Ping after Close: err = %v, want ErrUnreachable", err)
	}
	e2 := startTest(t, addr, dir, nil)
	if e2.Addr() != addr {
		t.Errorf("restarted Addr() = %q, want %q", e2.Addr(), addr)
	}
	checkImage(t, e2.Addr(), img)
}

// checkImage reads the pushed image back as a user would.
func checkImage(t *testing.T, addr string, img testImage) {
	t.Helper()
	amdDigest, amdType, amdRaw := manifestOf(t, img.amd)
	idxDigest, idxType, idxRaw := manifestOf(t, img.idx)
	checkServed(t, addr, img.repo, img.amdTag, "", amdDigest, ociManifest, amdRaw)
	checkServed(t, addr, img.repo, amdDigest, "", amdDigest, amdType, amdRaw)
	checkServed(t, addr, img.repo, img.idxTag, "", idxDigest, ociIndex, idxRaw)
	checkServed(t, addr, img.repo, idxDigest, "", idxDigest, idxType, idxRaw)
	if got := getManifest(t, addr, img.repo, "nope", ""); got.status != http.StatusNotFound {
		t.Errorf("GET a missing tag: status %d, want 404", got.status)
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
