package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/crypto/bcrypt"
)

// account is a user of the test registries, with the actions the token
// service grants it. htpasswd knows no actions: every user may do all.
type account struct{ password, actions string }

var accounts = map[string]account{
	"ci":     {"s3cr3t-ci-password", "pull,push"},
	"reader": {"s3cr3t-reader-password", "pull"},
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
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

// startHtpasswd starts an embedded registry that wants basic auth for the
// accounts, from an htpasswd file of bcrypt hashes.
func startHtpasswd(t *testing.T) *Embedded {
	t.Helper()
	var lines []string
	for user, a := range accounts {
		// MinCost: the registry checks the hash on every request.
		hash, err := bcrypt.GenerateFromPassword([]byte(a.password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, user+":"+string(hash))
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startWith(t, EmbeddedOptions{Addr: "127.0.0.1:0", Dir: t.TempDir(), Auth: configuration.Auth{
		"htpasswd": configuration.Parameters{"realm": "slipway-test", "path": path},
	}})
}

const (
	tokenService = "slipway-test-registry"
	tokenIssuer  = "slipway-test-issuer"
)

// tokenServer is a Docker token service on loopback: it checks basic auth
// against the accounts and signs JWTs granting what the account may do of
// the asked scopes, with a key whose self-signed certificate the registry
// trusts (rootcertbundle). Like some real services, its refusals carelessly
// echo the password they were sent.
type tokenServer struct {
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	certPath string
	anonPull bool // hand out pull tokens without credentials

	mu     sync.Mutex
	scopes [][]string // scope parameters of each token request
	issued []string
}

func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: tokenIssuer},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{key: key, certPath: filepath.Join(t.TempDir(), "token.crt")}
	if err := os.WriteFile(ts.certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	return ts
}

// realm is the token service's URL for the registry's challenges. It names
// localhost rather than 127.0.0.1: go-containerregistry refuses a realm on
// a loopback or private IP address unless it is the registry's own
// host:port (against SSRF through a registry's challenge). Tests resolve
// "localhost" without a resolver (newLoopbackOnly).
func (ts *tokenServer) realm() string {
	_, port, _ := strings.Cut(strings.TrimPrefix(ts.srv.URL, "http://"), ":")
	return "http://localhost:" + port + "/token"
}

// startTokenRegistry starts an embedded registry that sends clients to
// realm for tokens signed by ts's key.
func startTokenRegistry(t *testing.T, ts *tokenServer, realm string) *Embedded {
	t.Helper()
	return startWith(t, EmbeddedOptions{Addr: "127.0.0.1:0", Dir: t.TempDir(), Auth: configuration.Auth{
		"token": configuration.Parameters{
			"realm": realm, "service": tokenService, "issuer": tokenIssuer, "rootcertbundle": ts.certPath,
		},
	}})
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ts.mu.Lock()
	ts.scopes = append(ts.scopes, q["scope"])
	ts.mu.Unlock()
	if q.Get("service") != tokenService {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	allowed, ok := ts.allowed(r)
	if !ok {
		_, pass, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"errors":[{"code":"UNAUTHORIZED","message":"refused password %q"}]}`, pass)
		return
	}
	tok, err := ts.sign(grant(q["scope"], allowed))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
}

// allowed returns the actions the request's sender may do.
func (ts *tokenServer) allowed(r *http.Request) (string, bool) {
	user, pass, hasAuth := r.BasicAuth()
	switch a, known := accounts[user]; {
	case hasAuth && known && a.password == pass:
		return a.actions, true
	case !hasAuth && ts.anonPull:
		return "pull", true
	}
	return "", false
}

// grant turns scope parameters ("repository:team/app:pull,push") into the
// access claim, keeping the actions in allowed.
func grant(scopes []string, allowed string) []*token.ResourceActions {
	var access []*token.ResourceActions
	for _, scope := range scopes {
		typ, rest, _ := strings.Cut(scope, ":")
		i := strings.LastIndexByte(rest, ':')
		if typ != "repository" || i < 0 {
			continue
		}
		ra := &token.ResourceActions{Type: typ, Name: rest[:i], Actions: []string{}}
		for _, a := range strings.Split(rest[i+1:], ",") {
			if slices.Contains(strings.Split(allowed, ","), a) {
				ra.Actions = append(ra.Actions, a)
			}
		}
		access = append(access, ra)
	}
	return access
}

// sign makes a token the registry accepts: ES256, with the key ID
// distribution derives from the trusted certificate's key.
func (ts *tokenServer) sign(access []*token.ResourceActions) (string, error) {
	now := time.Now()
	jti := make([]byte, 8)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": tokenIssuer, "sub": "test", "aud": tokenService,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": hex.EncodeToString(jti), "access": access,
	})
	tok.Header["kid"] = token.GetJWKThumbprint(&ts.key.PublicKey)
	s, err := tok.SignedString(ts.key)
	if err != nil {
		return "", err
	}
	ts.mu.Lock()
	ts.issued = append(ts.issued, s)
	ts.mu.Unlock()
	return s, nil
}

// bearer returns an Authorization value for actions on name, for the test's
// own look at the registry.
func (ts *tokenServer) bearer(t *testing.T, name, actions string) string {
	t.Helper()
	tok, err := ts.sign([]*token.ResourceActions{{Type: "repository", Name: name, Actions: strings.Split(actions, ",")}})
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

// secrets returns every password and token issued, raw and as basic auth.
func (ts *tokenServer) secrets() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := slices.Clone(ts.issued)
	for user, a := range accounts {
		out = append(out, a.password, basicAuth(user, a.password))
	}
	return out
}

func (ts *tokenServer) tokenRequests() [][]string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.scopes)
}

// TestTagBearer tags through distribution's token auth, with the token
// service above, for accounts that may and may not push.
func TestTagBearer(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		user, pass string
		anonPull   bool
		wantErr    string // with %s for the registry host; "" = success
	}{
		{"credentials", "ci", accounts["ci"].password, false, ""},
		{"no credentials", "", "", false, "authentication required and no credentials are configured for %s"},
		{"no credentials, anonymous pull", "", "", true, "authentication required and no credentials are configured for %s"},
		{"wrong password", "ci", "wr0ng-s3cr3t", false, "authentication failed: the credentials for %s were refused"},
		{"pull-only account", "reader", accounts["reader"].password, false, "the credentials for %s were refused or do not allow pull,push"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t)
			e := startTokenRegistry(t, ts, ts.realm())
			img := pushTestImage(t, e.Addr(), &authn.Basic{Username: "ci", Password: accounts["ci"].password})
			idxDigest, _, idxRaw := manifestOf(t, img.idx)
			ts.anonPull = tc.anonPull
			var hosts []string
			c := Client{Transport: newLoopbackOnly()}
			if tc.user != "" {
				c.Credentials = credentials(tc.user, tc.pass, &hosts)
			}
			before := len(ts.tokenRequests())

			err := c.Tag(ctx, e.Addr()+"/"+img.repo, idxDigest, "v2")
			checkNoSecrets(t, err, append(ts.secrets(), tc.pass, basicAuth(tc.user, tc.pass))...)
			pull := ts.bearer(t, img.repo, "pull")
			if tc.wantErr != "" {
				if want := fmt.Sprintf(tc.wantErr, e.Addr()); err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Tag error = %v, want one containing %q", err, want)
				}
				for _, want := range []string{e.Addr(), img.repo, "v2"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Tag error %q does not name %q", err, want)
					}
				}
				if errors.Is(err, ErrUnreachable) {
					t.Errorf("Tag error %v is ErrUnreachable", err)
				}
				if got := getManifest(t, e.Addr(), img.repo, "v2", pull); got.status != http.StatusNotFound {
					t.Errorf("the tag was stored despite the error: GET status %d", got.status)
				}
				return
			}
			if err != nil {
				t.Fatalf("Tag: %v", err)
			}
			checkServed(t, e.Addr(), img.repo, "v2", pull, idxDigest, ociIndex, idxRaw)
			if !slices.Equal(hosts, []string{e.Addr()}) {
				t.Errorf("Credentials asked for hosts %q, want [%q]", hosts, e.Addr())
			}
			want := [][]string{{"repository:" + img.repo + ":push,pull"}}
			if got := ts.tokenRequests()[before:]; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("token requests of Tag asked for scopes %q, want %q", got, want)
			}
		})
	}
}

// TestBasicAuth tags through distribution's htpasswd auth.
func TestBasicAuth(t *testing.T) {
	ctx := context.Background()
	e := startHtpasswd(t)
	ci := accounts["ci"]
	img := pushTestImage(t, e.Addr(), &authn.Basic{Username: "ci", Password: ci.password})
	idxDigest, _, idxRaw := manifestOf(t, img.idx)
	image := e.Addr() + "/" + img.repo
	var hosts []string
	c := Client{Credentials: credentials("ci", ci.password, &hosts)}

	if err := c.Tag(ctx, image, idxDigest, "v3"); err != nil {
		t.Fatalf("Tag with basic auth: %v", err)
	}
	checkServed(t, e.Addr(), img.repo, "v3", "Basic "+basicAuth("ci", ci.password), idxDigest, ociIndex, idxRaw)
	if !slices.Equal(hosts, []string{e.Addr()}) {
		t.Errorf("Credentials asked for hosts %q, want [%q]", hosts, e.Addr())
	}
	if err := c.Ping(ctx, e.Addr()); err != nil {
		t.Errorf("Ping of a registry that wants authentication: %v", err)
	}

	for _, tc := range []struct{ name, user, pass, wantErr string }{
		{"no credentials", "", "", "authentication required and no credentials are configured for " + e.Addr()},
		{"wrong password", "ci", "wr0ng-s3cr3t", "authentication failed: the credentials for " + e.Addr() + " were refused"},
	} {
		c := Client{}
		if tc.user != "" {
			c.Credentials = credentials(tc.user, tc.pass, new([]string))
		}
		err := c.Tag(ctx, image, idxDigest, "v4")
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, ErrUnreachable) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.wantErr)
		}
		checkNoSecrets(t, err, tc.pass, basicAuth(tc.user, tc.pass), ci.password, basicAuth("ci", ci.password))
	}
	if got := getManifest(t, e.Addr(), img.repo, "v4", "Basic "+basicAuth("ci", ci.password)); got.status != http.StatusNotFound {
		t.Errorf("refused Tags stored the tag: GET status %d", got.status)
	}
}
