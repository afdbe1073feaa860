package registry

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeUsers are the accounts of authFake, with the actions they may do.
var fakeUsers = map[string]struct{ password, actions string }{
	"ci":     {"s3cr3t-ci-password", "pull,push"},
	"reader": {"s3cr3t-reader-password", "pull"},
}

// authFake is a registry serving repository team/app that wants either basic
// auth ("basic") or bearer tokens ("bearer") from its own realm /token, which
// checks basic auth and grants the asked-for actions the account has. Its
// error bodies carelessly echo the credentials or token they were sent.
type authFake struct {
	srv      *httptest.Server
	mode     string // "basic" or "bearer"
	anonPull bool   // the realm hands out pull tokens without credentials
	realm    string // realm in challenges; "" means this server's /token

	mu         sync.Mutex
	manifests  map[string][]byte // by tag or digest
	types      map[string]string
	blobs      map[string][]byte
	tokens     map[string]string // issued token: granted actions
	scopes     [][]string        // scope parameters of each token request
	challenges int               // 401s answered by the registry endpoints
}

func newAuthFake(t *testing.T, mode string) *authFake {
	f := &authFake{mode: mode, manifests: map[string][]byte{}, types: map[string]string{}, blobs: map[string][]byte{}, tokens: map[string]string{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *authFake) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *authFake) add(mediaType string, raw []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.manifests[digestOf(raw)] = raw
	f.types[digestOf(raw)] = mediaType
}

func (f *authFake) stored(ref string) ([]byte, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.manifests[ref], f.types[ref]
}

// secrets returns every password and issued token, raw and as basic auth.
func (f *authFake) secrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for user, u := range fakeUsers {
		out = append(out, u.password, base64.StdEncoding.EncodeToString([]byte(user+":"+u.password)))
	}
	for tok := range f.tokens {
		out = append(out, tok)
	}
	return out
}

func hasAction(actions, a string) bool { return slices.Contains(strings.Split(actions, ","), a) }

func regError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

func (f *authFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		f.token(w, r)
		return
	}
	need := "pull"
	if r.Method == http.MethodPut {
		need = "push"
	}
	if !f.allowed(r, need) {
		f.challenge(w, r, need)
		return
	}
	f.serveRepo(w, r)
}

func (f *authFake) allowed(r *http.Request, need string) bool {
	if f.mode == "basic" {
		user, pass, ok := r.BasicAuth()
		u, known := fakeUsers[user]
		return ok && known && u.password == pass && hasAction(u.actions, need)
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	granted, issued := f.tokens[tok]
	f.mu.Unlock()
	return ok && issued && hasAction(granted, need)
}

func (f *authFake) challenge(w http.ResponseWriter, r *http.Request, need string) {
	f.mu.Lock()
	f.challenges++
	f.mu.Unlock()
	if f.mode == "basic" {
		w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
	} else {
		realm := f.realm
		if realm == "" {
			realm = f.srv.URL + "/token"
		}
		scope := "repository:team/app:pull"
		if need == "push" {
			scope += ",push"
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="fake",scope=%q`, realm, scope))
	}
	_, pass, _ := r.BasicAuth()
	regError(w, http.StatusUnauthorized, "UNAUTHORIZED", "refused "+r.Header.Get("Authorization")+" password "+pass)
}

// token is the realm: it checks basic auth and grants what the account may
// do of what the scopes ask for.
func (f *authFake) token(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.scopes = append(f.scopes, q["scope"])
	f.mu.Unlock()
	if q.Get("service") != "fake" {
		http.Error(w, "bad service", http.StatusBadRequest)
		return
	}
	var allowed string
	user, pass, ok := r.BasicAuth()
	switch u, known := fakeUsers[user]; {
	case ok && known && u.password == pass:
		allowed = u.actions
	case ok:
		regError(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad password "+pass)
		return
	case f.anonPull:
		allowed = "pull"
	default:
		regError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	var granted []string
	for _, scope := range q["scope"] {
		actions, ok := strings.CutPrefix(scope, "repository:team/app:")
		if !ok {
			continue
		}
		for _, a := range strings.Split(actions, ",") {
			if hasAction(allowed, a) && !slices.Contains(granted, a) {
				granted = append(granted, a)
			}
		}
	}
	b := make([]byte, 8)
	rand.Read(b)
	tok := "tok-" + hex.EncodeToString(b)
	f.mu.Lock()
	f.tokens[tok] = strings.Join(granted, ",")
	f.mu.Unlock()
	fmt.Fprintf(w, `{"token":%q,"expires_in":300}`, tok)
}

func (f *authFake) serveRepo(w http.ResponseWriter, r *http.Request) {
	const prefix = "/v2/team/app/"
	ref, isManifest := strings.CutPrefix(r.URL.Path, prefix+"manifests/")
	switch {
	case r.URL.Path == "/v2/":
		w.WriteHeader(http.StatusOK)
	case isManifest && r.Method == http.MethodGet:
		raw, mt := f.stored(ref)
		if raw == nil {
			regError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		w.Header().Set("Content-Type", mt)
		w.Header().Set("Docker-Content-Digest", digestOf(raw))
		w.Write(raw)
	case isManifest && r.Method == http.MethodPut:
		raw, _ := io.ReadAll(r.Body)
		mt := r.Header.Get("Content-Type")
		switch {
		case ref == "forbidden":
			regError(w, http.StatusBadRequest, "TAG_INVALID", "tag forbidden is reserved")
			return
		case !isIndexType(mt) && !isImageManifestType(mt):
			regError(w, http.StatusBadRequest, "MANIFEST_INVALID", "unknown media type "+mt)
			return
		}
		f.mu.Lock()
		f.manifests[ref], f.types[ref] = raw, mt
		f.mu.Unlock()
		w.Header().Set("Docker-Content-Digest", digestOf(raw))
		w.WriteHeader(http.StatusCreated)
	case strings.HasPrefix(r.URL.Path, prefix+"blobs/"):
		f.mu.Lock()
		raw, ok := f.blobs[strings.TrimPrefix(r.URL.Path, prefix+"blobs/")]
		f.mu.Unlock()
		if !ok {
			regError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
			return
		}
		w.Write(raw)
	default:
		http.NotFound(w, r)
	}
}

// testManifests returns an image config, a manifest over it and an OCI index
// over the manifest.
func testManifests() (cfg, man, idx []byte) {
	cfg = []byte(`{"architecture":"amd64","os":"linux","config":{"Labels":{"a":"1"}}}`)
	man = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`,
		MediaTypeOCIManifest, digestOf(cfg), len(cfg)))
	idx = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"amd64"}}]}`,
		MediaTypeOCIIndex, MediaTypeOCIManifest, digestOf(man), len(man)))
	return cfg, man, idx
}

// credentials returns a Credentials func for user and password that records
// the hosts it is asked about.
func credentials(user, pass string, hosts *[]string) func(string) (string, string) {
	return func(host string) (string, string) {
		*hosts = append(*hosts, host)
		return user, pass
	}
}

// checkNoSecrets fails when err's text holds any of secrets.
func checkNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error %q reveals the secret %q", err, s)
		}
	}
}

func TestTagBearer(t *testing.T) {
	_, man, idx := testManifests()
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		user, pass string
		anonPull   bool
		wantErr    string // "" = success
	}{
		{"credentials", "ci", fakeUsers["ci"].password, false, ""},
		{"no credentials", "", "", false, "authentication required and no credentials are configured"},
		{"no credentials, anonymous pull", "", "", true, "authentication required and no credentials are configured"},
		{"wrong password", "ci", "wr0ng-s3cr3t", false, "authentication failed"},
		{"pull-only account", "reader", fakeUsers["reader"].password, false, "do not allow pull,push"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAuthFake(t, "bearer")
			f.anonPull = tc.anonPull
			f.add(MediaTypeOCIManifest, man)
			f.add(MediaTypeOCIIndex, idx)
			var hosts []string
			c := Client{HTTP: f.srv.Client()}
			if tc.user != "" {
				c.Credentials = credentials(tc.user, tc.pass, &hosts)
			}
			image := f.host() + "/team/app"

			err := c.Tag(ctx, image, digestOf(idx), "v2")
			checkNoSecrets(t, err, append(f.secrets(), tc.pass)...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "authentication") {
					t.Fatalf("Tag error = %v, want one containing %q", err, tc.wantErr)
				}
				for _, want := range []string{f.host(), "team/app", "v2"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Tag error %q does not name %q", err, want)
					}
				}
				if errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnreachable) {
					t.Errorf("Tag error %v is ErrNotFound or ErrUnreachable", err)
				}
				if raw, _ := f.stored("v2"); raw != nil {
					t.Errorf("the tag was stored despite the error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Tag: %v", err)
			}
			if len(hosts) == 0 || hosts[0] != f.host() {
				t.Errorf("Credentials asked for hosts %q, want %q", hosts, f.host())
			}
			if len(f.scopes) != 1 || !slices.Equal(f.scopes[0], []string{"repository:team/app:pull,push"}) {
				t.Errorf("token requests of Tag asked for scopes %q, want one request for repository:team/app:pull,push", f.scopes)
			}
			if err := c.Tag(ctx, image, digestOf(man), "v2-amd64"); err != nil {
				t.Errorf("Tag of the single manifest: %v", err)
			}
			for tag, want := range map[string][]byte{"v2": idx, "v2-amd64": man} {
				raw, mt := f.stored(tag)
				if string(raw) != string(want) {
					t.Errorf("stored %s differs from the manifest tagged", tag)
				}
				scopesBefore := len(f.scopes)
				m, err := c.Manifest(ctx, image+":"+tag)
				if err != nil {
					t.Errorf("Manifest(%s): %v", tag, err)
					continue
				}
				if m.Digest != digestOf(want) || m.MediaType != mt {
					t.Errorf("Manifest(%s) = %s %s, want %s %s", tag, m.Digest, m.MediaType, digestOf(want), mt)
				}
				if got := f.scopes[scopesBefore:]; len(got) != 1 || !slices.Equal(got[0], []string{"repository:team/app:pull"}) {
					t.Errorf("token requests of Manifest asked for %q, want only repository:team/app:pull", got)
				}
			}
			if mt := f.types["v2"]; mt != MediaTypeOCIIndex {
				t.Errorf("index PUT with Content-Type %q, want %q", mt, MediaTypeOCIIndex)
			}
			if mt := f.types["v2-amd64"]; mt != MediaTypeOCIManifest {
				t.Errorf("manifest PUT with Content-Type %q, want %q", mt, MediaTypeOCIManifest)
			}

			// The registry's own refusal is reported with its text.
			err = c.Tag(ctx, image, digestOf(idx), "forbidden")
			if err == nil {
				t.Fatalf("Tag to a refused tag succeeded")
			}
			for _, want := range []string{f.host(), "team/app", "forbidden", "TAG_INVALID", "tag forbidden is reserved", "400"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refused Tag error %q does not contain %q", err, want)
				}
			}
			checkNoSecrets(t, err, f.secrets()...)
		})
	}
}

func TestBasicAuth(t *testing.T) {
	cfg, man, idx := testManifests()
	ctx := context.Background()
	f := newAuthFake(t, "basic")
	f.add(MediaTypeOCIManifest, man)
	f.add(MediaTypeOCIIndex, idx)
	f.blobs[digestOf(cfg)] = cfg
	ref := f.host() + "/team/app@" + digestOf(idx)
	var hosts []string
	c := Client{HTTP: f.srv.Client(), Credentials: credentials("ci", fakeUsers["ci"].password, &hosts)}

	m, err := c.Manifest(ctx, ref)
	if err != nil || m.Digest != digestOf(idx) || m.MediaType != MediaTypeOCIIndex {
		t.Errorf("Manifest = %s %s, %v; want %s %s", m.Digest, m.MediaType, err, digestOf(idx), MediaTypeOCIIndex)
	}
	f.challenges = 0
	labels, err := c.Labels(ctx, ref, "linux/amd64")
	if err != nil || labels["a"] != "1" {
		t.Errorf("Labels = %v, %v; want a=1", labels, err)
	}
	if f.challenges != 1 {
		t.Errorf("Labels (3 requests) met %d challenges, want 1: basic auth is kept for the call", f.challenges)
	}
	if len(hosts) == 0 || hosts[0] != f.host() {
		t.Errorf("Credentials asked for hosts %q, want %q", hosts, f.host())
	}
	if err := c.Tag(ctx, f.host()+"/team/app", digestOf(idx), "v3"); err != nil {
		t.Errorf("Tag with basic auth: %v", err)
	} else if raw, mt := f.stored("v3"); string(raw) != string(idx) || mt != MediaTypeOCIIndex {
		t.Errorf("Tag stored %s as %q", raw, mt)
	}

	for _, tc := range []struct {
		name, user, pass string
		call             func(Client) error
		wantErr          string
	}{
		{"no credentials", "", "", func(c Client) error { _, err := c.Manifest(ctx, ref); return err },
			"no credentials are configured for " + f.host()},
		{"wrong password", "ci", "wr0ng-s3cr3t", func(c Client) error { _, err := c.Labels(ctx, ref, ""); return err },
			"authentication failed"},
		{"pull-only account", "reader", fakeUsers["reader"].password,
			func(c Client) error { return c.Tag(ctx, f.host()+"/team/app", digestOf(idx), "v4") },
			"authentication failed: the credentials for " + f.host() + " were refused or do not allow pull,push"},
	} {
		c := Client{HTTP: f.srv.Client()}
		if tc.user != "" {
			c.Credentials = credentials(tc.user, tc.pass, new([]string))
		}
		err := tc.call(c)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "authentication") {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.wantErr)
		}
		checkNoSecrets(t, err, append(f.secrets(), tc.pass, base64.StdEncoding.EncodeToString([]byte(tc.user+":"+tc.pass)))...)
	}
}

// TestCredentialsNotOverPlainHTTP: credentials go to a remote realm only
// over HTTPS; anonymous token requests may use plain HTTP.
func TestCredentialsNotOverPlainHTTP(t *testing.T) {
	f := newAuthFake(t, "bearer")
	f.realm = "http://realm.invalid/token"
	ref := f.host() + "/team/app:v1"
	c := Client{HTTP: f.srv.Client(), Credentials: credentials("ci", fakeUsers["ci"].password, new([]string))}
	_, err := c.Manifest(context.Background(), ref)
	if err == nil || !strings.Contains(err.Error(), "refusing to send credentials over plain HTTP") || errors.Is(err, ErrUnreachable) {
		t.Errorf("credentials to a plain HTTP realm: err = %v", err)
	}
	_, err = Client{HTTP: f.srv.Client()}.Manifest(context.Background(), ref)
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("anonymous token from realm.invalid: err = %v, want ErrUnreachable", err)
	}
}

func TestRedact(t *testing.T) {
	s := &session{username: "u", secret: "pw-123", token: "tok-abc"}
	basic := base64.StdEncoding.EncodeToString([]byte("u:pw-123"))
	err := s.redact(fmt.Errorf("registry said pw-123 and tok-abc and %s: %w", basic, ErrNotFound))
	if got, want := err.Error(), "registry said *** and *** and ***: not found"; got != want {
		t.Errorf("redacted = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("redacted error is no longer ErrNotFound")
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("redacted error unwraps to the original text")
	}
	plain := fmt.Errorf("nothing secret")
	if s.redact(plain) != plain {
		t.Errorf("an error without secrets was rewrapped")
	}
}

func TestScopeCovers(t *testing.T) {
	s := &session{name: "team/app", scope: "repository:team/app:pull,push"}
	for scope, want := range map[string]bool{
		"repository:team/app:pull":      true,
		"repository:team/app:push,pull": true,
		"repository:team/app:delete":    false,
		"repository:team/other:pull":    false,
		"registry:catalog:*":            false,
	} {
		if got := s.covers(scope); got != want {
			t.Errorf("covers(%q) = %v, want %v", scope, got, want)
		}
	}
}
