package registry

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// pushDockerImage pushes a Docker schema 2 manifest (linux/amd64, revision
// "docker") and a Docker manifest list over it, both by digest only.
func pushDockerImage(t *testing.T, addr, repo string) (man, list []byte) {
	t.Helper()
	cfg := mustJSON(t, map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Labels": map[string]string{"org.opencontainers.image.revision": "docker"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digestOf([]byte("uncompressed docker"))}},
	})
	layer := []byte("a docker layer")
	man = mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeDockerManifest,
		"config":        map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "digest": pushBlob(t, addr, repo, cfg), "size": len(cfg)},
		"layers": []map[string]any{
			{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": pushBlob(t, addr, repo, layer), "size": len(layer)},
		},
	})
	putManifest(t, addr, repo, digestOf(man), MediaTypeDockerManifest, man)
	list = mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeDockerManifestList,
		"manifests": []map[string]any{
			{"mediaType": MediaTypeDockerManifest, "digest": digestOf(man), "size": len(man), "platform": map[string]string{"os": "linux", "architecture": "amd64"}},
		},
	})
	putManifest(t, addr, repo, digestOf(list), MediaTypeDockerManifestList, list)
	return man, list
}

// TestTagEmbedded tags indexes and single manifests, OCI and Docker, pushed
// to the embedded registry and reads them back under the new tags.
func TestTagEmbedded(t *testing.T) {
	e := startTest(t, "127.0.0.1:0", t.TempDir(), nil)
	img := pushTestImage(t, e.Addr())
	dockerMan, dockerList := pushDockerImage(t, e.Addr(), img.repo)
	c := Client{}
	ctx := context.Background()
	image := e.Addr() + "/" + img.repo

	for _, tc := range []struct {
		tag       string
		raw       []byte
		mediaType string
	}{
		{"release", img.idx, MediaTypeOCIIndex},
		{"single", img.amd, MediaTypeOCIManifest},
		{"docker-list", dockerList, MediaTypeDockerManifestList},
		{"docker", dockerMan, MediaTypeDockerManifest},
		{img.amdTag, img.arm, MediaTypeOCIManifest}, // moves an existing tag
		{"release", img.amd, MediaTypeOCIManifest},  // and back from index to manifest
		{"release", img.idx, MediaTypeOCIIndex},
	} {
		dgst := digestOf(tc.raw)
		if err := c.Tag(ctx, image, dgst, tc.tag); err != nil {
			t.Errorf("Tag(%s, %s, %s): %v", image, dgst, tc.tag, err)
			continue
		}
		ref := image + ":" + tc.tag
		m, err := c.Manifest(ctx, ref)
		if err != nil {
			t.Errorf("Manifest(%s): %v", ref, err)
			continue
		}
		if m.Digest != dgst || m.MediaType != tc.mediaType || !bytes.Equal(m.Raw, tc.raw) {
			t.Errorf("Manifest(%s) = %s %s, want %s %s (same bytes)", ref, m.Digest, m.MediaType, dgst, tc.mediaType)
		}
	}

	for _, lc := range []struct{ ref, platform, want string }{
		{image + ":release", "linux/arm64", "def"},
		{image + ":" + img.amdTag, "", "def"}, // v1 now points at the arm64 image
		{image + ":docker-list", "linux/amd64", "docker"},
	} {
		labels, err := c.Labels(ctx, lc.ref, lc.platform)
		if err != nil || labels["org.opencontainers.image.revision"] != lc.want {
			t.Errorf("Labels(%s, %q) = %v, %v; want revision %q", lc.ref, lc.platform, labels, err, lc.want)
		}
	}

	missing := digestOf([]byte("nothing"))
	err := c.Tag(ctx, image, missing, "never")
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnreachable) {
		t.Errorf("Tag of a missing digest: err = %v, want ErrNotFound (and not ErrUnreachable)", err)
	}
	for _, want := range []string{e.Addr(), img.repo, missing, "never", "MANIFEST_UNKNOWN"} {
		if err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("Tag error %q does not contain %q", err, want)
		}
	}
	if _, err := c.Manifest(ctx, image+":never"); !errors.Is(err, ErrNotFound) {
		t.Errorf("failed Tag created the tag anyway: Manifest err = %v", err)
	}
	if err := c.Tag(ctx, e.Addr()+"/no/such/repo", digestOf(img.idx), "v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Tag in a missing repository: err = %v, want ErrNotFound", err)
	}
}

// failTransport fails the test when a request is sent.
type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
	return nil, errors.New("no requests expected")
}

func TestTagInvalidArguments(t *testing.T) {
	c := Client{HTTP: &http.Client{Transport: failTransport{t}}}
	d := digestOf([]byte("x"))
	for _, tc := range []struct{ image, digest, tag, wantErr string }{
		{"127.0.0.1:5000/app:v1", d, "v2", "without tag or digest"},
		{"127.0.0.1:5000/app@" + d, d, "v2", "invalid"},
		{"app", d, "v2", "no registry host"},
		{"127.0.0.1:5000/App", d, "v2", "invalid repository name"},
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

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	d := digestOf([]byte("x"))
	closed := closedAddr(t)

	// Accepts connections and closes them without a word.
	dropper, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dropper.Close()
	go func() {
		for {
			conn, err := dropper.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	// Never answers.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	hangHost := strings.TrimPrefix(hang.URL, "http://")
	// Answers, but sends clients to a token realm that is down.
	realmDown := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+closed+`/token",service="x"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer realmDown.Close()
	realmDownHost := strings.TrimPrefix(realmDown.URL, "http://")

	c := Client{}
	short := Client{HTTP: &http.Client{Timeout: 200 * time.Millisecond}}
	for name, err := range map[string]error{
		"Tag, connection refused": c.Tag(ctx, closed+"/team/app", d, "v1"),
		"Manifest, connection refused": func() error {
			_, err := c.Manifest(ctx, closed+"/team/app:v1")
			return err
		}(),
		"Labels, connection refused": func() error {
			_, err := c.Labels(ctx, closed+"/team/app:v1", "")
			return err
		}(),
		"Ping, connection refused": c.Ping(ctx, closed),
		"Manifest, unknown host": func() error {
			_, err := c.Manifest(ctx, "registry.invalid/team/app:v1")
			return err
		}(),
		"Tag, connection dropped": c.Tag(ctx, dropper.Addr().String()+"/team/app", d, "v1"),
		"Tag, no answer":          short.Tag(ctx, hangHost+"/team/app", d, "v1"),
		"Manifest, token realm down": func() error {
			_, err := c.Manifest(ctx, realmDownHost+"/team/app:v1")
			return err
		}(),
	} {
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("%s: err = %v, want ErrUnreachable", name, err)
		}
		if errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v also is ErrNotFound", name, err)
		}
	}

	// The caller's deadline passing while the registry keeps quiet counts.
	deadline, cancelDeadline := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelDeadline()
	if _, err := c.Manifest(deadline, hangHost+"/team/app:v1"); !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline passed: err = %v, want ErrUnreachable and context.DeadlineExceeded", err)
	}

	// Cancelling is the caller's doing, not the registry's.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Manifest(cancelled, closed+"/team/app:v1"); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) {
		t.Errorf("cancelled context: err = %v, want context.Canceled and not ErrUnreachable", err)
	}

	// A registry that answers, even with an error, is reachable.
	for _, status := range []int{http.StatusNotFound, http.StatusInternalServerError, http.StatusBadGateway} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
		host := strings.TrimPrefix(srv.URL, "http://")
		if err := c.Tag(ctx, host+"/team/app", d, "v1"); err == nil || errors.Is(err, ErrUnreachable) {
			t.Errorf("registry answering %d: err = %v, want an error that is not ErrUnreachable", status, err)
		}
		srv.Close()
	}
}

// TestUnreachableErrors classifies real errors of the net package, as a
// custom transport or dialer may return them unwrapped.
func TestUnreachableErrors(t *testing.T) {
	bg := context.Background()
	closed := closedAddr(t)
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	dial := func(ctx context.Context, d *net.Dialer) error {
		conn, err := d.DialContext(ctx, "tcp", closed)
		if err == nil {
			conn.Close()
			t.Fatalf("dial %s succeeded", closed)
		}
		return err
	}
	_, dnsErr := net.DefaultResolver.LookupHost(bg, "registry.invalid")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"refused", bg, dial(bg, &net.Dialer{}), true},
		{"dial timeout", bg, dial(bg, &net.Dialer{Timeout: time.Nanosecond}), true},
		{"unknown host", bg, dnsErr, true},
		{"dial cancelled", cancelled, dial(cancelled, &net.Dialer{}), false},
		{"context cancelled", cancelled, context.Canceled, false},
		{"other", bg, errors.New("tls: handshake failure"), false},
	} {
		if tc.err == nil {
			t.Fatalf("%s: no error to classify", tc.name)
		}
		if got := unreachable(tc.ctx, tc.err); got != tc.want {
			t.Errorf("unreachable(%s: %v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
