package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

func TestParseRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		ref                   string
		host, name, reference string
		wantErr               string // substring; "" = success
	}{
		{ref: "127.0.0.1:5000/app:v1", host: "127.0.0.1:5000", name: "app", reference: "v1"},
		{ref: "127.0.0.1:5000/team/app", host: "127.0.0.1:5000", name: "team/app", reference: "latest"},
		{ref: "localhost/app", host: "localhost", name: "app", reference: "latest"},
		{ref: "localhost:5000/a/b/c:1.2.3-rc_1", host: "localhost:5000", name: "a/b/c", reference: "1.2.3-rc_1"},
		{ref: "ghcr.io/slipway-build/slipway@" + d, host: "ghcr.io", name: "slipway-build/slipway", reference: d},
		{ref: "ghcr.io/slipway-build/slipway:v1@" + d, host: "ghcr.io", name: "slipway-build/slipway", reference: d},
		{ref: "[::1]:5000/app:latest", host: "[::1]:5000", name: "app", reference: "latest"},
		{ref: "registry.example.com/my.app/x__y/a-b--c:TAG", host: "registry.example.com", name: "my.app/x__y/a-b--c", reference: "TAG"},
		{ref: "host.example:443/app@sha512:" + strings.Repeat("0", 128), host: "host.example:443", name: "app", reference: "sha512:" + strings.Repeat("0", 128)},

		{ref: "", wantErr: "no registry host"},
		{ref: "alpine", wantErr: "no registry host"},
		{ref: "alpine:3.20", wantErr: "no registry host"},
		{ref: "library/alpine:3", wantErr: `"library" is not a registry host`},
		{ref: "localhost:5000/", wantErr: "no repository name"},
		{ref: "localhost:5000/:v1", wantErr: "no repository name"},
		{ref: "localhost:5000/App:v1", wantErr: "invalid repository name"},
		{ref: "localhost:5000/app/:v1", wantErr: "invalid repository name"},
		{ref: "localhost:5000/app:", wantErr: "invalid tag"},
		{ref: "localhost:5000/app:-x", wantErr: "invalid tag"},
		{ref: "localhost:5000/app@sha256:abc", wantErr: "digest must be"},
		{ref: "localhost:5000/app@md5:" + strings.Repeat("a", 32), wantErr: "digest must be"},
		{ref: "localhost:5000/app@" + strings.ToUpper(d), wantErr: "digest must be"},
		{ref: "bad_host.example/app", wantErr: "invalid registry host"},
		{ref: "localhost:port/app", wantErr: "invalid registry host"},
		{ref: "localhost:5000/app name", wantErr: "invalid repository name"},
	} {
		host, name, reference, err := ParseRef(tc.ref)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseRef(%q) error = %v, want one containing %q", tc.ref, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tc.ref, err)
			continue
		}
		if host != tc.host || name != tc.name || reference != tc.reference {
			t.Errorf("ParseRef(%q) = %q, %q, %q; want %q, %q, %q", tc.ref, host, name, reference, tc.host, tc.name, tc.reference)
		}
	}
}

func TestBaseURL(t *testing.T) {
	for host, want := range map[string]string{
		"127.0.0.1:5000":  "http://127.0.0.1:5000",
		"127.1.2.3":       "http://127.1.2.3",
		"localhost":       "http://localhost",
		"LOCALHOST:5000":  "http://LOCALHOST:5000",
		"[::1]:5000":      "http://[::1]:5000",
		"[::1]":           "http://[::1]",
		"ghcr.io":         "https://ghcr.io",
		"10.0.0.1:5000":   "https://10.0.0.1:5000",
		"localhost.io":    "https://localhost.io",
		"[2001:db8::1]:1": "https://[2001:db8::1]:1",
	} {
		if got := baseURL(host); got != want {
			t.Errorf("baseURL(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestParseChallenge(t *testing.T) {
	for _, tc := range []struct {
		in     string
		scheme string
		params map[string]string
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`,
			"Bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/alpine:pull"}},
		{`Bearer realm="https://a/t", Service=reg , scope="repository:x:pull,push"`,
			"Bearer", map[string]string{"realm": "https://a/t", "service": "reg", "scope": "repository:x:pull,push"}},
		{`Basic realm="Registry \"Realm\""`, "Basic", map[string]string{"realm": `Registry "Realm"`}},
		{`Bearer`, "Bearer", map[string]string{}},
		{``, "", map[string]string{}},
		{`Bearer realm="unterminated`, "Bearer", map[string]string{"realm": "unterminated"}},
	} {
		scheme, params := parseChallenge(tc.in)
		if scheme != tc.scheme || !reflect.DeepEqual(params, tc.params) {
			t.Errorf("parseChallenge(%q) = %q, %v; want %q, %v", tc.in, scheme, params, tc.scheme, tc.params)
		}
	}
}

func TestPlatformMatches(t *testing.T) {
	for _, tc := range []struct {
		want string
		have Platform
		ok   bool
	}{
		{"linux/amd64", Platform{"linux", "amd64", ""}, true},
		{"linux/amd64", Platform{"linux", "amd64", "v3"}, true},
		{"linux/amd64/v1", Platform{"linux", "amd64", ""}, true},
		{"linux/amd64/v3", Platform{"linux", "amd64", ""}, false},
		{"linux/arm64", Platform{"linux", "arm64", "v8"}, true},
		{"linux/arm64/v8", Platform{"linux", "arm64", ""}, true},
		{"linux/aarch64", Platform{"linux", "arm64", "v8"}, true},
		{"linux/x86_64", Platform{"linux", "amd64", ""}, true},
		{"linux/arm/v7", Platform{"linux", "arm", "v6"}, false},
		{"linux/arm/v7", Platform{"linux", "arm", "v7"}, true},
		{"Linux/AMD64", Platform{"linux", "amd64", ""}, true},
		{"windows/amd64", Platform{"linux", "amd64", ""}, false},
		{"linux/amd64", Platform{"linux", "arm64", ""}, false},
	} {
		want, err := parsePlatform(tc.want)
		if err != nil {
			t.Fatalf("parsePlatform(%q): %v", tc.want, err)
		}
		if got := platformMatches(want, tc.have); got != tc.ok {
			t.Errorf("platformMatches(%s, %s) = %v, want %v", tc.want, tc.have, got, tc.ok)
		}
	}
	for _, bad := range []string{"", "linux", "linux/", "/amd64", "linux/amd64/", "a/b/c/d"} {
		if _, err := parsePlatform(bad); err == nil {
			t.Errorf("parsePlatform(%q) succeeded", bad)
		}
	}
}

func TestPing(t *testing.T) {
	for _, tc := range []struct {
		status int
		ok     bool
	}{
		{http.StatusOK, true},
		{http.StatusUnauthorized, true},
		{http.StatusNotFound, false},
		{http.StatusInternalServerError, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v2/" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(tc.status)
		}))
		host := strings.TrimPrefix(srv.URL, "http://")
		err := (Client{}).Ping(context.Background(), host)
		if (err == nil) != tc.ok {
			t.Errorf("Ping with status %d: err = %v, want ok %v", tc.status, err, tc.ok)
		}
		srv.Close()
	}
	if err := (Client{}).Ping(context.Background(), "not a host"); err == nil {
		t.Errorf("Ping(invalid host) succeeded")
	}
}

// fakeRegistry serves one repository "team/app" from memory, optionally
// behind anonymous bearer-token auth.
type fakeRegistry struct {
	manifests   map[string][]byte // by tag or digest
	mediaTypes  map[string]string
	blobs       map[string][]byte
	tokenAuth   bool
	noDigestHdr bool
	lie         atomic.Bool // send a wrong Docker-Content-Digest
	tokenCalls  atomic.Int32
	srv         *httptest.Server
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	f := &fakeRegistry{manifests: map[string][]byte{}, mediaTypes: map[string]string{}, blobs: map[string][]byte{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistry) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeRegistry) add(ref, mediaType string, raw []byte) {
	f.manifests[ref] = raw
	f.manifests[digestOf(raw)] = raw
	f.mediaTypes[ref] = mediaType
	f.mediaTypes[digestOf(raw)] = mediaType
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		f.tokenCalls.Add(1)
		if r.URL.Query().Get("service") != "fake" || r.URL.Query().Get("scope") != "repository:team/app:pull" {
			http.Error(w, "bad token request "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, `{"token":"anon-token"}`)
		return
	}
	if f.tokenAuth && r.Header.Get("Authorization") != "Bearer anon-token" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="fake"`, f.srv.URL))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	const prefix = "/v2/team/app/"
	switch {
	case strings.HasPrefix(r.URL.Path, prefix+"manifests/"):
		ref := strings.TrimPrefix(r.URL.Path, prefix+"manifests/")
		raw, ok := f.manifests[ref]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
			return
		}
		if !strings.Contains(r.Header.Get("Accept"), f.mediaTypes[ref]) {
			http.Error(w, "not acceptable", http.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Type", f.mediaTypes[ref])
		switch {
		case f.lie.Load():
			w.Header().Set("Docker-Content-Digest", digestOf([]byte("something else")))
		case !f.noDigestHdr:
			w.Header().Set("Docker-Content-Digest", digestOf(raw))
		}
		w.Write(raw)
	case strings.HasPrefix(r.URL.Path, prefix+"blobs/"):
		raw, ok := f.blobs[strings.TrimPrefix(r.URL.Path, prefix+"blobs/")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write(raw)
	case r.URL.Path == "/v2/team/app/tags/list":
		http.Error(w, "boom", http.StatusInternalServerError)
	default:
		http.NotFound(w, r)
	}
}

func TestClientAgainstFake(t *testing.T) {
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{"Labels":{"a":"1","b":"2"}}}`)
	noLabelsCfg := []byte(`{"architecture":"amd64","os":"linux","config":{}}`)
	man := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":%q,"size":%d},"layers":[]}`,
		MediaTypeDockerManifest, digestOf(cfg), len(cfg)))
	manNoLabels := []byte(fmt.Sprintf(`{"schemaVersion":2,"config":{"digest":%q,"size":%d},"layers":[]}`, digestOf(noLabelsCfg), len(noLabelsCfg)))
	manBadCfg := []byte(fmt.Sprintf(`{"schemaVersion":2,"config":{"digest":%q,"size":3},"layers":[]}`, digestOf([]byte("xyz"))))
	list := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[
		{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
		{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"amd64"}}]}`,
		MediaTypeDockerManifestList, MediaTypeDockerManifest, digestOf(man), len(man), MediaTypeDockerManifest, digestOf(man), len(man)))
	// An index of an index; the inner one has no platforms.
	nested := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
		MediaTypeOCIIndex, MediaTypeDockerManifestList, digestOf(list), len(list)))

	for _, tc := range []struct {
		name        string
		tokenAuth   bool
		noDigestHdr bool
	}{
		{"plain", false, false},
		{"anonymous token", true, false},
		{"no digest header", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRegistry(t)
			f.tokenAuth, f.noDigestHdr = tc.tokenAuth, tc.noDigestHdr
			f.add("v1", MediaTypeDockerManifest, man)
			f.add("nolabels", MediaTypeOCIManifest, manNoLabels)
			f.add("badcfg", MediaTypeOCIManifest, manBadCfg)
			f.add("list", MediaTypeDockerManifestList, list)
			f.add("nested", MediaTypeOCIIndex, nested)
			f.blobs[digestOf(cfg)] = cfg
			f.blobs[digestOf(noLabelsCfg)] = noLabelsCfg
			f.blobs[digestOf([]byte("xyz"))] = []byte("not xyz")
			c := Client{HTTP: f.srv.Client()}
			ctx := context.Background()
			ref := func(s string) string { return f.host() + "/team/app" + s }

			m, err := c.Manifest(ctx, ref(":list"))
			if err != nil {
				t.Fatalf("Manifest: %v", err)
			}
			if m.Digest != digestOf(list) || m.MediaType != MediaTypeDockerManifestList || !m.IsIndex() {
				t.Errorf("Manifest = %s %s, want %s %s", m.Digest, m.MediaType, digestOf(list), MediaTypeDockerManifestList)
			}
			wantPlatforms := []Platform{{"linux", "arm", "v7"}, {"linux", "amd64", ""}}
			if !reflect.DeepEqual(m.Platforms, wantPlatforms) {
				t.Errorf("Platforms = %v, want %v", m.Platforms, wantPlatforms)
			}
			if _, err := c.Manifest(ctx, ref(":gone")); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
				t.Errorf("missing tag: err = %v, want ErrNotFound with the registry's code", err)
			}

			for _, lc := range []struct {
				ref, platform string
				want          map[string]string
				wantErr       string
			}{
				{ref(":v1"), "", map[string]string{"a": "1", "b": "2"}, ""},
				{ref(":list"), "linux/amd64", map[string]string{"a": "1", "b": "2"}, ""},
				{ref(":nested"), "linux/arm/v7", map[string]string{"a": "1", "b": "2"}, ""},
				{ref(":nolabels"), "", map[string]string{}, ""},
				{ref(":badcfg"), "", nil, "does not match"},
				{ref(":list"), "linux/riscv64", nil, "no entry for platform linux/riscv64"},
			} {
				got, err := c.Labels(ctx, lc.ref, lc.platform)
				if lc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), lc.wantErr) {
						t.Errorf("Labels(%s, %q) error = %v, want %q", lc.ref, lc.platform, err, lc.wantErr)
					}
					continue
				}
				if err != nil || !reflect.DeepEqual(got, lc.want) {
					t.Errorf("Labels(%s, %q) = %v, %v; want %v", lc.ref, lc.platform, got, err, lc.want)
				}
			}
			if tc.tokenAuth && f.tokenCalls.Load() == 0 {
				t.Errorf("no token was requested")
			}
		})
	}
}

func TestClientRejectsBadContent(t *testing.T) {
	f := newFakeRegistry(t)
	man := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`)
	f.add("v1", MediaTypeOCIManifest, man)
	other := "sha256:" + strings.Repeat("0", 64)
	f.manifests[other] = man // served under a digest it does not have
	f.mediaTypes[other] = MediaTypeOCIManifest
	c := Client{HTTP: f.srv.Client()}
	ctx := context.Background()

	if _, err := c.Manifest(ctx, f.host()+"/team/app@"+other); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("manifest under a wrong digest: err = %v", err)
	}
	f.lie.Store(true)
	if _, err := c.Manifest(ctx, f.host()+"/team/app:v1"); err == nil || !strings.Contains(err.Error(), "Docker-Content-Digest") {
		t.Errorf("wrong Docker-Content-Digest: err = %v", err)
	}
	f.lie.Store(false)
	if _, err := c.Labels(ctx, f.host()+"/team/app:v1", ""); err == nil || !strings.Contains(err.Error(), "no config") {
		t.Errorf("manifest without config: err = %v", err)
	}
	if _, err := c.Manifest(ctx, "alpine:3"); err == nil {
		t.Errorf("Manifest without host succeeded")
	}
}

func TestClientBasicAuthRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="private"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	_, err := (Client{}).Manifest(context.Background(), strings.TrimPrefix(srv.URL, "http://")+"/team/app:v1")
	if err == nil || !strings.Contains(err.Error(), "no credentials are configured") {
		t.Errorf("err = %v, want a refusal for lack of credentials", err)
	}
}
