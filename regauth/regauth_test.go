package regauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipway-build/slipway/registry"
)

const (
	testService = "slipway-registry"
	testIssuer  = "slipway"
)

// The accounts of the test registry, by their API token.
var (
	acmeReader  = Account{Name: "rita", Org: "acme", Role: "read"}
	acmeAdmin   = Account{Name: "ada", Org: "acme", Role: "admin"}
	otherReader = Account{Name: "otto", Org: "other", Role: "read"}
	testAccess  = staticAccess{
		tokens: map[string]Account{"tok-rita": acmeReader, "tok-ada": acmeAdmin, "tok-otto": otherReader},
		public: []string{"acme/public"},
	}
)

// rig is a token Server on httptest and an embedded registry trusting it,
// both on loopback.
type rig struct {
	srv  *Server
	reg  string // registry host:port
	http *httptest.Server
}

func newRig(t *testing.T) *rig {
	t.Helper()
	signer := testSigner(t)
	certPath, err := signer.WriteCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Signer: signer, Access: testAccess, Service: testService, Issuer: testIssuer}
	mux := http.NewServeMux()
	mux.Handle("/v2/token", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(hs.URL, "http://"))
	// localhost, not 127.0.0.1: go-containerregistry refuses a realm on a
	// loopback IP that is not the registry's own host:port.
	realm := "http://localhost:" + port + "/v2/token"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := registry.StartEmbeddedWith(ctx, registry.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: t.TempDir(), Auth: configuration.Auth{
		"token": configuration.Parameters{"realm": realm, "service": testService, "issuer": testIssuer, "rootcertbundle": certPath},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return &rig{srv: srv, reg: e.Addr(), http: hs}
}

// loopback is a transport that dials loopback only, "localhost" as
// 127.0.0.1, so that no test request leaves the machine.
var loopback = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("test: dial %s refused: not loopback", addr)
	}
	return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, net.JoinHostPort(host, port))
}}

func opts(auth authn.Authenticator) []crane.Option {
	return []crane.Option{crane.Insecure, crane.WithTransport(loopback), crane.WithAuth(auth)}
}

func basic(user, pass string) authn.Authenticator {
	return &authn.Basic{Username: user, Password: pass}
}

// push puts a random image at ref.
func push(ref string, auth authn.Authenticator) error {
	img, err := random.Image(256, 1)
	if err != nil {
		return err
	}
	return crane.Push(img, ref, opts(auth)...)
}

func pull(ref string, auth authn.Authenticator) error {
	_, err := crane.Digest(ref, opts(auth)...)
	return err
}

// wantStatus fails unless err is the registry's (or token server's) answer
// with status and, when code is set, that error code.
func wantStatus(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var terr *transport.Error
	if !errors.As(err, &terr) {
		t.Fatalf("%s: err = %v, want a transport error %d %s", what, err, status, code)
	}
	if terr.StatusCode != status {
		t.Errorf("%s: status %d, want %d (%v)", what, terr.StatusCode, status, err)
	}
	if code != "" && (len(terr.Errors) == 0 || string(terr.Errors[0].Code) != code) {
		t.Errorf("%s: codes %v, want %s", what, terr.Errors, code)
	}
}

func TestRegistryAccess(t *testing.T) {
	r := newRig(t)
	admin := basic("ada", "tok-ada")
	for _, repo := range []string{"acme/app", "acme/public", "acme/lib"} {
		if err := push(r.reg+"/"+repo+":v1", admin); err != nil {
			t.Fatalf("admin pushes %s: %v", repo, err)
		}
	}
	app := r.reg + "/acme/app:v1"

	t.Run("read account of acme pulls acme/app", func(t *testing.T) {
		if err := pull(app, basic("rita", "tok-rita")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("anonymous pull of acme/app", func(t *testing.T) {
		wantStatus(t, "anonymous pull", pull(app, authn.Anonymous), http.StatusUnauthorized, "UNAUTHORIZED")
	})
	t.Run("account of org other pulls acme/app: denied at the token server", func(t *testing.T) {
		wantStatus(t, "other org pull", pull(app, basic("otto", "tok-otto")), http.StatusForbidden, "DENIED")
	})
	t.Run("anonymous pull of a public repository", func(t *testing.T) {
		if err := pull(r.reg+"/acme/public:v1", authn.Anonymous); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("anonymous cannot push to a public repository", func(t *testing.T) {
		wantStatus(t, "anonymous push", push(r.reg+"/acme/public:v2", authn.Anonymous), http.StatusUnauthorized, "UNAUTHORIZED")
	})
	t.Run("read account cannot push", func(t *testing.T) {
		wantStatus(t, "read push", push(r.reg+"/acme/app:v2", basic("rita", "tok-rita")), http.StatusUnauthorized, "UNAUTHORIZED")
	})
	t.Run("wrong password", func(t *testing.T) {
		wantStatus(t, "wrong password", pull(app, basic("rita", "tok-ada")), http.StatusUnauthorized, "UNAUTHORIZED")
	})
	t.Run("admin deletes", func(t *testing.T) {
		ref := r.reg + "/acme/lib:v1"
		d, err := crane.Digest(ref, opts(admin)...)
		if err != nil {
			t.Fatal(err)
		}
		byDigest := r.reg + "/acme/lib@" + d
		wantStatus(t, "read delete", crane.Delete(byDigest, opts(basic("rita", "tok-rita"))...), http.StatusUnauthorized, "UNAUTHORIZED")
		if err := crane.Delete(byDigest, opts(admin)...); err != nil {
			t.Fatalf("admin delete: %v", err)
		}
		wantStatus(t, "pull of the deleted tag", pull(ref, admin), http.StatusNotFound, "MANIFEST_UNKNOWN")
	})
}

func TestPass(t *testing.T) {
	r := newRig(t)
	if err := push(r.reg+"/acme/lib:v1", basic("ada", "tok-ada")); err != nil {
		t.Fatal(err)
	}
	user, secret := r.srv.Pass("acme", "acme/app", time.Minute)
	if user != PassUser {
		t.Errorf("pass user = %q, want %q", user, PassUser)
	}
	pass := basic(user, secret)
	if err := push(r.reg+"/acme/app:v1", pass); err != nil {
		t.Fatalf("a pass pushes to its repository: %v", err)
	}
	if err := pull(r.reg+"/acme/lib:v1", pass); err != nil {
		t.Errorf("a pass pulls in its org: %v", err)
	}
	wantStatus(t, "pass pushes to another repository", push(r.reg+"/acme/lib:v2", pass), http.StatusUnauthorized, "UNAUTHORIZED")

	_, expired := r.srv.Pass("acme", "acme/app", -time.Second)
	wantStatus(t, "expired pass", push(r.reg+"/acme/app:v2", basic(user, expired)), http.StatusUnauthorized, "UNAUTHORIZED")
	for what, s := range map[string]string{
		"altered MAC":         secret[:len(secret)-2] + "AA",
		"pass of another key": mustPass(t),
		"API token as pass":   "tok-ada",
	} {
		wantStatus(t, what, push(r.reg+"/acme/app:v3", basic(user, s)), http.StatusUnauthorized, "UNAUTHORIZED")
	}
}

func mustSigner(t *testing.T) *Signer {
	t.Helper()
	raw, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustPass is a well-formed pass for acme/app under another key.
func mustPass(t *testing.T) string {
	_, secret := (&Server{Signer: mustSigner(t)}).Pass("acme", "acme/app", time.Minute)
	return secret
}

// TestLogin is what docker login and crane auth login's check do: a
// token request without a scope.
func TestLogin(t *testing.T) {
	r := newRig(t)
	reg, err := name.NewRegistry(r.reg, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		auth   authn.Authenticator
		status int // 0: accepted
	}{
		{"right token", basic("rita", "tok-rita"), 0},
		{"wrong token", basic("rita", "wrong"), http.StatusUnauthorized},
		{"unknown user", basic("nobody", "tok-rita"), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := transport.NewWithContext(ctx, reg, tc.auth, loopback, nil)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("login: %v", err)
				}
				resp, err := (&http.Client{Transport: rt}).Get("http://" + r.reg + "/v2/")
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET /v2/ with the login's token: %d, want 200", resp.StatusCode)
				}
				return
			}
			wantStatus(t, tc.name, err, tc.status, "UNAUTHORIZED")
		})
	}
}

func testSigner(t *testing.T) *Signer {
	t.Helper()
	raw, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseKeyRefusesGarbage(t *testing.T) {
	if _, err := ParseKey([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); err == nil {
		t.Error("ParseKey of garbage: no error")
	}
}

// A build's pass cannot delete; a delete pass deletes in its own
// repository and nowhere else.
func TestDeletePass(t *testing.T) {
	r := newRig(t)
	for _, ref := range []string{r.reg + "/acme/app:pr-7", r.reg + "/acme/lib:pr-7"} {
		if err := push(ref, basic("ada", "tok-ada")); err != nil {
			t.Fatal(err)
		}
	}
	build := basic(r.srv.Pass("acme", "acme/app", time.Minute))
	wantStatus(t, "build pass deletes", crane.Delete(r.reg+"/acme/app:pr-7", opts(build)...), http.StatusUnauthorized, "UNAUTHORIZED")
	del := basic(r.srv.DeletePass("acme", "acme/app", time.Minute))
	wantStatus(t, "delete pass in another repository", crane.Delete(r.reg+"/acme/lib:pr-7", opts(del)...), http.StatusUnauthorized, "UNAUTHORIZED")
	if err := crane.Delete(r.reg+"/acme/app:pr-7", opts(del)...); err != nil {
		t.Fatalf("delete pass in its repository: %v", err)
	}
	wantStatus(t, "pull of the deleted tag", pull(r.reg+"/acme/app:pr-7", basic("ada", "tok-ada")), http.StatusNotFound, "MANIFEST_UNKNOWN")
	_, expired := r.srv.DeletePass("acme", "acme/app", -time.Second)
	wantStatus(t, "expired delete pass", crane.Delete(r.reg+"/acme/lib:pr-7", opts(basic(PassUser, expired))...), http.StatusUnauthorized, "UNAUTHORIZED")
}

// A read pass pulls from its own repository and does nothing else: not
// push there, not pull from the organization's other repositories, not
// delete.
func TestReadPass(t *testing.T) {
	r := newRig(t)
	for _, ref := range []string{r.reg + "/acme/app:v1", r.reg + "/acme/lib:v1"} {
		if err := push(ref, basic("ada", "tok-ada")); err != nil {
			t.Fatal(err)
		}
	}
	user, secret := r.srv.ReadPass("acme", "acme/app", time.Minute)
	if user != PassUser {
		t.Errorf("read pass user = %q, want %q", user, PassUser)
	}
	read := basic(user, secret)
	if err := pull(r.reg+"/acme/app:v1", read); err != nil {
		t.Fatalf("a read pass pulls from its repository: %v", err)
	}
	wantStatus(t, "read pass pushes", push(r.reg+"/acme/app:v2", read), http.StatusUnauthorized, "UNAUTHORIZED")
	wantStatus(t, "read pass pulls another repository", pull(r.reg+"/acme/lib:v1", read), http.StatusForbidden, "DENIED")
	wantStatus(t, "read pass deletes", crane.Delete(r.reg+"/acme/app:v1", opts(read)...), http.StatusUnauthorized, "UNAUTHORIZED")
	_, expired := r.srv.ReadPass("acme", "acme/app", -time.Second)
	wantStatus(t, "expired read pass", pull(r.reg+"/acme/app:v1", basic(PassUser, expired)), http.StatusUnauthorized, "UNAUTHORIZED")
}

// The API's browse pass lists the catalog and every repository's tags,
// and can neither push nor delete; nobody else lists the catalog.
func TestBrowsePass(t *testing.T) {
	r := newRig(t)
	admin := basic("ada", "tok-ada")
	for _, ref := range []string{"acme/app:v1", "acme/app:v2"} {
		if err := push(r.reg+"/"+ref, admin); err != nil {
			t.Fatal(err)
		}
	}
	if err := push(r.reg+"/other/tool:1.0", basic(r.srv.Pass("other", "other/tool", time.Minute))); err != nil {
		t.Fatal(err)
	}
	v1, err := crane.Digest(r.reg+"/acme/app:v1", opts(admin)...)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := crane.Digest(r.reg+"/acme/app:v2", opts(admin)...)
	if err != nil {
		t.Fatal(err)
	}
	browse := func(login func() (string, string)) registry.Browser {
		return registry.Browser{Host: r.reg, Transport: loopback, Login: login}
	}
	ctx := context.Background()
	b := browse(func() (string, string) { return r.srv.BrowsePass(time.Minute) })
	repos, err := b.Catalog(ctx)
	if err != nil || strings.Join(repos, " ") != "acme/app other/tool" {
		t.Errorf("catalog = %q, %v; want [acme/app other/tool]", repos, err)
	}
	tags, err := b.Tags(ctx, "acme/app")
	if want := []registry.Tag{{Name: "v1", Digest: v1}, {Name: "v2", Digest: v2}}; err != nil || fmt.Sprint(tags) != fmt.Sprint(want) {
		t.Errorf("tags of acme/app = %v, %v; want %v", tags, err, want)
	}
	if names, err := b.TagNames(ctx, "other/tool"); err != nil || strings.Join(names, " ") != "1.0" {
		t.Errorf("tag names of other/tool = %q, %v; want [1.0]", names, err)
	}
	if names, err := b.TagNames(ctx, "acme/never-pushed"); err != nil || len(names) != 0 {
		t.Errorf("tag names of a repository never pushed = %q, %v; want none", names, err)
	}

	user, secret := r.srv.BrowsePass(time.Minute)
	pass := basic(user, secret)
	wantStatus(t, "browse pass pushes", push(r.reg+"/acme/app:v3", pass), http.StatusUnauthorized, "UNAUTHORIZED")
	wantStatus(t, "browse pass deletes", crane.Delete(r.reg+"/acme/app@"+v1, opts(pass)...), http.StatusUnauthorized, "UNAUTHORIZED")
	_, expired := r.srv.BrowsePass(-time.Second)
	// A pass that names a repository and browses is no pass Slipway mints.
	both := r.srv.Signer.mintPass(passBody{Repo: "acme/app", Browse: true, Exp: time.Now().Add(time.Minute).Unix()})
	for what, login := range map[string]func() (string, string){
		"expired browse pass":     func() (string, string) { return PassUser, expired },
		"browse pass with a repo": func() (string, string) { return PassUser, both },
		"an admin of acme":        func() (string, string) { return "ada", "tok-ada" },
		"a build pass":            func() (string, string) { return r.srv.Pass("acme", "acme/app", time.Minute) },
		"anonymous":               nil,
		"a reader of acme":        func() (string, string) { return "rita", "tok-rita" },
	} {
		if repos, err := browse(login).Catalog(ctx); err == nil {
			t.Errorf("%s lists the catalog: %q", what, repos)
		}
	}
}
