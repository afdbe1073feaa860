package github

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/forge"
)

const testAppID = 987654

// newFakeApp starts the local GitHub API server knowing a fresh app key and
// returns an App that signs with it.
func newFakeApp(t *testing.T, prefix string) (*fakeGitHub, *App) {
	t.Helper()
	key, pemBytes := newRSAKey(t)
	f := newFakeGitHub(t, prefix)
	f.mu.Lock()
	f.appID, f.appPub = testAppID, &key.PublicKey
	f.mu.Unlock()
	app, err := NewApp(testAppID, pemBytes, f.apiURL(), nil)
	if err != nil {
		t.Fatalf("NewApp: %v", err)
	}
	return f, app
}

func (f *fakeGitHub) checkNoJWTRejects(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.jwtRejects) > 0 {
		t.Fatalf("the local server rejected app JWTs: %v", f.jwtRejects)
	}
}

func TestAppInstallationTokenIsCachedAgainstLocalGitHubAPIServer(t *testing.T) {
	f, app := newFakeApp(t, "")
	ctx := context.Background()
	first, err := app.InstallationToken(ctx, 42, "acme/demo")
	if err != nil {
		t.Fatalf("InstallationToken: %v", err)
	}
	f.checkNoJWTRejects(t)
	if n := f.exchangeCount(42); n != 1 {
		t.Fatalf("%d exchanges after the first call, want 1", n)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Path != "/app/installations/42/access_tokens" {
		t.Fatalf("requests %+v, want one POST /app/installations/42/access_tokens", reqs)
	}
	if !strings.HasPrefix(reqs[0].Header.Get("Authorization"), "Bearer ") {
		t.Fatalf("exchange Authorization %q", reqs[0].Header.Get("Authorization"))
	}
	if first != "ghs_fake_installation_42_1" {
		t.Fatalf("token %q", first)
	}
	for i := range 5 {
		tok, err := app.InstallationToken(ctx, 42, "acme/demo")
		if err != nil {
			t.Fatalf("call %d: %v", i+2, err)
		}
		if tok != first {
			t.Fatalf("call %d: token %q, want the cached %q", i+2, tok, first)
		}
	}
	if n := f.exchangeCount(42); n != 1 {
		t.Fatalf("%d exchanges after 6 calls, want 1", n)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests after 6 calls, want 1", n)
	}
}

func TestAppRefreshesTokenNearExpiryAgainstLocalGitHubAPIServer(t *testing.T) {
	f, app := newFakeApp(t, "")
	f.mu.Lock()
	f.tokenTTL = func(n int) time.Duration {
		if n == 1 {
			return 30 * time.Second // inside the one-minute margin
		}
		return time.Hour
	}
	f.mu.Unlock()
	ctx := context.Background()
	t1, err := app.InstallationToken(ctx, 42, "acme/demo")
	if err != nil {
		t.Fatal(err)
	}
	t2, err := app.InstallationToken(ctx, 42, "acme/demo")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.exchangeCount(42); n != 2 || t2 == t1 {
		t.Fatalf("after a token 30 s from expiry: %d exchanges, tokens %q then %q; want a second exchange and a new token", n, t1, t2)
	}
	t3, err := app.InstallationToken(ctx, 42, "acme/demo")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.exchangeCount(42); n != 2 || t3 != t2 {
		t.Fatalf("an hour-long token was not reused: %d exchanges, %q then %q", n, t2, t3)
	}
	f.checkNoJWTRejects(t)
}

func TestAppConcurrentCallsShareOneExchangePerInstallationAgainstLocalGitHubAPIServer(t *testing.T) {
	f, app := newFakeApp(t, "")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	tokens := make([]map[string]bool, 2)
	var mu sync.Mutex
	for i := range tokens {
		tokens[i] = map[string]bool{}
	}
	for i := range 32 {
		wg.Go(func() {
			id := int64(42 + i%2)
			tok, err := app.InstallationToken(context.Background(), id, "acme/demo")
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			tokens[i%2][tok] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if a, b := f.exchangeCount(42), f.exchangeCount(43); a != 1 || b != 1 {
		t.Fatalf("exchanges: installation 42 %d, 43 %d; want 1 each", a, b)
	}
	if len(tokens[0]) != 1 || len(tokens[1]) != 1 {
		t.Fatalf("tokens handed out: %v", tokens)
	}
	f.checkNoJWTRejects(t)
}

func TestAppConnAuthenticatesForgeCallsOnEnterpriseLayoutAgainstLocalGitHubAPIServer(t *testing.T) {
	f, app := newFakeApp(t, "/api/v3")
	ctx := context.Background()
	c, err := app.Conn(ctx, 42, "acme/app")
	if err != nil {
		t.Fatalf("Conn: %v", err)
	}
	if c.FullName != "acme/app" || c.APIURL != f.apiURL() || c.Token == "" {
		t.Fatalf("conn %+v", c)
	}
	if err := (Forge{}).SetStatus(ctx, c, forge.Status{Commit: testSHA, State: forge.Success}); err != nil {
		t.Fatalf("SetStatus with the installation token: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].Path != "/api/v3/app/installations/42/access_tokens" ||
		reqs[1].Path != "/api/v3/repos/acme/app/statuses/"+testSHA {
		t.Fatalf("requests %+v", reqs)
	}
	if got := reqs[1].Header.Get("Authorization"); got != "Bearer "+c.Token {
		t.Fatalf("status Authorization %q, want the installation token", got)
	}
	f.checkNoJWTRejects(t)
}

func TestAppWrongKeyIsUnauthorizedAndNotCachedAgainstLocalGitHubAPIServer(t *testing.T) {
	f, _ := newFakeApp(t, "")
	_, otherPEM := newRSAKey(t) // not the key the server knows
	app, err := NewApp(testAppID, otherPEM, f.apiURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		tok, err := app.InstallationToken(context.Background(), 42, "acme/demo")
		if err == nil {
			t.Fatalf("exchange with the wrong key gave %q", tok)
		}
		if !errors.Is(err, forge.ErrUnauthorized) {
			t.Fatalf("error %v does not wrap forge.ErrUnauthorized", err)
		}
		if !strings.Contains(err.Error(), "POST /app/installations/42/access_tokens") || !strings.Contains(err.Error(), "401") {
			t.Fatalf("error %q does not name the endpoint and status", err)
		}
	}
	f.mu.Lock()
	rejects := len(f.jwtRejects)
	f.mu.Unlock()
	if rejects != 2 {
		t.Fatalf("%d JWTs rejected, want 2 (a failure must not be cached)", rejects)
	}
}

func TestAppExchangeTimesOutWithClientTimeoutAgainstLocalGitHubAPIServer(t *testing.T) {
	key, pemBytes := newRSAKey(t)
	f := newFakeGitHub(t, "")
	f.mu.Lock()
	f.appID, f.appPub = testAppID, &key.PublicKey
	f.exchangeDelay = make(chan struct{}) // never answers until cleanup
	f.mu.Unlock()
	app, err := NewApp(testAppID, pemBytes, f.apiURL(), &http.Client{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The caller's own deadline is a backstop: the App's 200 ms must win.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err = app.InstallationToken(ctx, 42, "acme/demo")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v: the client's 200 ms timeout was not applied", d)
	}
}

func TestNewAppRejectsBadKeys(t *testing.T) {
	_, good := newRSAKey(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	escaped := []byte(strings.ReplaceAll(string(good), "\n", `\n`))
	cases := map[string]struct {
		id   int64
		key  []byte
		want string
	}{
		"not PEM":          {1, []byte("definitely not a key"), "not PEM"},
		"empty":            {1, nil, "not PEM"},
		"escaped newlines": {1, escaped, "not PEM"},
		"wrong block":      {1, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), `"CERTIFICATE"`},
		"corrupt RSA":      {1, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("garbage")}), "does not parse"},
		"ECDSA PKCS8":      {1, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), "RSA"},
		"zero app id":      {0, good, "app id"},
	}
	for name, tc := range cases {
		app, err := NewApp(tc.id, tc.key, "", nil)
		if err == nil || app != nil {
			t.Errorf("%s: NewApp accepted it", name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q lacks %q", name, err, tc.want)
		}
	}
	if _, err := NewApp(1, good, "not a url", nil); err == nil {
		t.Error("NewApp accepted a relative API URL")
	}
}

func TestNewAppAcceptsPKCS1AndPKCS8(t *testing.T) {
	key, pkcs1 := newRSAKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for name, b := range map[string][]byte{"PKCS1": pkcs1, "PKCS8": pkcs8} {
		if _, err := NewApp(1, b, "", nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestAppLiteralWithoutNewAppWorksAgainstLocalGitHubAPIServer(t *testing.T) {
	key, pemBytes := newRSAKey(t)
	f := newFakeGitHub(t, "")
	f.mu.Lock()
	f.appID, f.appPub = testAppID, &key.PublicKey
	f.mu.Unlock()
	app := &App{ID: testAppID, PrivateKey: pemBytes, APIURL: f.apiURL()}
	if _, err := app.InstallationToken(context.Background(), 7, "acme/demo"); err != nil {
		t.Fatalf("InstallationToken: %v", err)
	}
	if _, err := (&App{ID: 1, PrivateKey: []byte("x")}).InstallationToken(context.Background(), 7, "acme/demo"); err == nil {
		t.Fatal("an App literal with a bad key got a token")
	}
	if _, err := app.InstallationToken(context.Background(), 0, "acme/demo"); err == nil {
		t.Fatal("installation id 0 accepted")
	}
	f.checkNoJWTRejects(t)
}

func TestAppTokenIsNarrowedToOneRepositoryAndTwoPermissions(t *testing.T) {
	f, app := newFakeApp(t, "")
	if _, err := app.InstallationToken(context.Background(), 42, "acme/demo"); err != nil {
		t.Fatalf("InstallationToken: %v", err)
	}
	req := f.only(t)
	const want = `{"repositories":["demo"],"permissions":{"contents":"read","statuses":"write"}}`
	if got := strings.TrimSpace(string(req.Body)); got != want {
		t.Fatalf("exchange body\n got %s\nwant %s", got, want)
	}
	f.checkNoJWTRejects(t)
}

func TestAppCachesTokensPerInstallationAndRepository(t *testing.T) {
	f, app := newFakeApp(t, "")
	ctx := context.Background()
	demo, err := app.InstallationToken(ctx, 42, "acme/demo")
	if err != nil {
		t.Fatal(err)
	}
	other, err := app.InstallationToken(ctx, 42, "acme/other")
	if err != nil {
		t.Fatal(err)
	}
	again, err := app.InstallationToken(ctx, 42, "acme/demo")
	if err != nil {
		t.Fatal(err)
	}
	if demo == other || again != demo {
		t.Fatalf("tokens demo %q, other %q, demo again %q: want two tokens, demo's reused", demo, other, again)
	}
	reqs := f.requests()
	if len(reqs) != 2 || !strings.Contains(string(reqs[1].Body), `"repositories":["other"]`) {
		t.Fatalf("%d exchanges, second body %q; want 2, the second for other", len(reqs), reqs[len(reqs)-1].Body)
	}
}

func TestAppRefusesARepositoryThatIsNotOwnerSlashName(t *testing.T) {
	f, app := newFakeApp(t, "")
	for _, name := range []string{"", "demo", "/demo", "acme/", "acme/demo/x"} {
		if _, err := app.InstallationToken(context.Background(), 42, name); err == nil {
			t.Errorf("repository %q accepted", name)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d exchanges for refused names", n)
	}
}
