package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/forge/hosts"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/outbound"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/store"
)

// testKeys seal the repositories of every store the tests open; stores
// sharing one NATS must share their keys.
var testKeys = seal.Ephemeral()

const (
	testToken = "slp_test-token-0123456789"
	// tipSHA is what the test resolver says refs/heads/main points at.
	tipSHA = "1111111111111111111111111111111111111111"
)

// base is where the test clock starts; every reading advances it a second,
// so records made one after another get increasing times.
var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

type resolveCall struct{ cloneURL, ref string }

// harness is an API server on a real embedded JetStream store.
type harness struct {
	t      *testing.T
	store  *store.Store
	access *access.Directory
	queue  *queue.Queue
	srv    *httptest.Server
	client api.Client

	ticks    atomic.Int64
	mu       sync.Mutex
	resolves []resolveCall
}

// newHarness starts a fresh embedded NATS server (own store dir), opens the
// production Store and Queue on it and serves the API; change adjusts the
// Server before it is registered.
func newHarness(t *testing.T, change ...func(*api.Server)) *harness {
	t.Helper()
	e, err := natsd.Start(natsd.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("natsd.Start: %v", err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	st, err := store.Open(testCtx(t), nc, store.Options{Replicas: 1, Keys: testKeys})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	q, err := queue.Open(testCtx(t), nc, st, queue.Options{})
	if err != nil {
		t.Fatalf("queue.Open: %v", err)
	}
	dir, err := access.Open(testCtx(t), nc, 1)
	if err != nil {
		t.Fatalf("access.Open: %v", err)
	}
	dir.Bootstrap, dir.Now = testToken, func() time.Time { return base }
	h := &harness{t: t, store: st, queue: q, access: dir}
	s := &api.Server{
		Tokens:   dir,
		Orgs:     dir,
		Sealer:   testKeys,
		Repos:    st,
		Builds:   st,
		Queue:    q,
		Seen:     st,
		Resolve:  h.resolve,
		Checks:   []api.Check{{Name: "nats", Func: st.Ping}},
		Now:      h.now,
		Logger:   slog.New(slog.NewTextHandler(t.Output(), nil)),
		NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		Hosts:    append(apiHosts(), api.Host{Name: "fakehost", HookPath: "/hooks/fakehost", API: fakeForge{}}),
		// Names resolve through testDNS, never real DNS; the embedded
		// registry's address is open for images, as cmd/slipway opens it.
		Outbound:         &outbound.Guard{Lookup: testDNS},
		RegistryOutbound: (&outbound.Guard{Lookup: testDNS}).With(netip.MustParseAddrPort("127.0.0.1:5000")),
		Live:             st,
		TagOwners:        st,
	}
	for _, c := range change {
		c(s)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	h.client = api.Client{BaseURL: h.srv.URL, Token: testToken, HTTP: h.srv.Client()}
	return h
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (h *harness) now() time.Time {
	return base.Add(time.Duration(h.ticks.Add(1)) * time.Second)
}

func (h *harness) resolve(ctx context.Context, repo model.Repo, ref string) (string, error) {
	cloneURL := repo.CloneURL
	h.mu.Lock()
	h.resolves = append(h.resolves, resolveCall{cloneURL, ref})
	h.mu.Unlock()
	if ref == "refs/heads/main" {
		return tipSHA, nil
	}
	return "", fmt.Errorf("ls-remote %s: no ref %s on the remote", cloneURL, ref)
}

func (h *harness) resolveCalls() []resolveCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]resolveCall(nil), h.resolves...)
}

// do sends a raw request; token "" sends no Authorization header.
func (h *harness) do(method, path, token, body string) (int, http.Header, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(testCtx(h.t), method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, raw
}

// call is do with the right token and v as the JSON body (nil: none).
func (h *harness) call(method, path string, v any) (int, []byte) {
	h.t.Helper()
	body := ""
	if v != nil {
		raw, err := json.Marshal(v)
		if err != nil {
			h.t.Fatalf("marshal: %v", err)
		}
		body = string(raw)
	}
	code, _, raw := h.do(method, path, testToken, body)
	return code, raw
}

func decodeInto[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

func errorOf(t *testing.T, raw []byte) string {
	t.Helper()
	return decodeInto[struct {
		Error string `json:"error"`
	}](t, raw).Error
}

// apiError asserts err is an *api.Error with the code and returns its
// message.
func apiError(t *testing.T, err error, code int) string {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *api.Error with HTTP %d", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("err = %v, want HTTP %d", err, code)
	}
	return e.Message
}

// The two answers to a request without a usable token.
const (
	missingToken = "missing API token: send 'Authorization: Bearer <token>'"
	wrongToken   = "unknown, revoked or expired API token"
)

func TestAuth(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))

	routes := []struct {
		method, path, body string
		authorized         int // status with the right token
	}{
		{"GET", "/api/v1/repos", "", http.StatusOK},
		{"POST", "/api/v1/repos", `{}`, http.StatusBadRequest},
		{"GET", "/api/v1/repos/" + repo.ID, "", http.StatusOK},
		{"GET", "/api/v1/repos/nope", "", http.StatusNotFound},
		{"DELETE", "/api/v1/repos/nope", "", http.StatusNotFound},
		{"POST", "/api/v1/repos/" + repo.ID + "/builds", `{}`, http.StatusBadRequest},
		{"GET", "/api/v1/builds", "", http.StatusOK},
		{"GET", "/api/v1/builds/nope", "", http.StatusNotFound},
		{"GET", "/api/v1/builds/nope/log", "", http.StatusNotFound},
		{"POST", "/api/v1/builds/nope/cancel", "", http.StatusNotFound},
		{"POST", "/api/v1/builds/nope/rebuild", "", http.StatusNotFound},
	}
	type header struct{ name, value string }
	creds := []struct {
		name   string
		header *header // nil: no Authorization header
		want   func(authorized int) int
		msg    string
	}{
		{"missing", nil, func(int) int { return http.StatusUnauthorized }, missingToken},
		{"wrong token", &header{"Authorization", "Bearer wrong"}, func(int) int { return http.StatusUnauthorized }, wrongToken},
		{"token with extra suffix", &header{"Authorization", "Bearer " + testToken + "x"}, func(int) int { return http.StatusUnauthorized }, wrongToken},
		{"empty bearer", &header{"Authorization", "Bearer "}, func(int) int { return http.StatusUnauthorized }, missingToken},
		{"not bearer scheme", &header{"Authorization", "Basic " + testToken}, func(int) int { return http.StatusUnauthorized }, missingToken},
		{"bare token", &header{"Authorization", testToken}, func(int) int { return http.StatusUnauthorized }, missingToken},
		{"token in another header", &header{"X-Api-Token", testToken}, func(int) int { return http.StatusUnauthorized }, missingToken},
		{"right token", &header{"Authorization", "Bearer " + testToken}, func(a int) int { return a }, ""},
	}
	for _, rt := range routes {
		for _, c := range creds {
			t.Run(rt.method+" "+rt.path+"/"+c.name, func(t *testing.T) {
				var body io.Reader
				if rt.body != "" {
					body = strings.NewReader(rt.body)
				}
				req, err := http.NewRequestWithContext(testCtx(t), rt.method, h.srv.URL+rt.path, body)
				if err != nil {
					t.Fatal(err)
				}
				if c.header != nil {
					req.Header.Set(c.header.name, c.header.value)
				}
				resp, err := h.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := c.want(rt.authorized)
				if resp.StatusCode != want {
					t.Fatalf("HTTP %d (%s), want %d", resp.StatusCode, raw, want)
				}
				if want != http.StatusUnauthorized {
					return
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
				}
				if msg := errorOf(t, raw); msg != c.msg {
					t.Errorf("error = %q", msg)
				}
			})
		}
	}

	t.Run("rejected requests change nothing", func(t *testing.T) {
		n := len(h.listRepos())
		body, _ := json.Marshal(validRepo("acme/sneaky"))
		if code, _, raw := h.do("POST", "/api/v1/repos", "wrong", string(body)); code != http.StatusUnauthorized {
			t.Fatalf("POST with wrong token: HTTP %d %s", code, raw)
		}
		if code, _, raw := h.do("DELETE", "/api/v1/repos/"+repo.ID, "", ""); code != http.StatusUnauthorized {
			t.Fatalf("DELETE without token: HTTP %d %s", code, raw)
		}
		if code, _, raw := h.do("POST", "/api/v1/repos/"+repo.ID+"/builds", "wrong", `{"ref":"refs/heads/main"}`); code != http.StatusUnauthorized {
			t.Fatalf("trigger with wrong token: HTTP %d %s", code, raw)
		}
		if got := len(h.listRepos()); got != n {
			t.Errorf("repos after rejected requests = %d, want %d", got, n)
		}
		if _, err := h.store.GetRepo(testCtx(t), repo.ID); err != nil {
			t.Errorf("repo deleted by an unauthenticated DELETE: %v", err)
		}
		if got := h.storedBuilds(""); len(got) != 0 {
			t.Errorf("builds after rejected trigger = %d, want 0", len(got))
		}
		if n := len(h.resolveCalls()); n != 0 {
			t.Errorf("Resolve called %d times by rejected requests", n)
		}
	})

	t.Run("client with wrong token", func(t *testing.T) {
		c := h.client
		c.Token = "wrong"
		_, err := c.Repos(testCtx(t))
		if msg := apiError(t, err, http.StatusUnauthorized); msg != wrongToken {
			t.Errorf("message = %q", msg)
		}
	})
}

func TestHealth(t *testing.T) {
	var deadlineSet atomic.Bool
	passing := api.Check{Name: "disk", Func: func(ctx context.Context) error {
		_, ok := ctx.Deadline()
		deadlineSet.Store(ok)
		return nil
	}}
	failing := api.Check{Name: "buildkit", Func: func(context.Context) error {
		return errors.New("dial unix /run/buildkit/buildkitd.sock: connect: no such file or directory")
	}}

	tests := []struct {
		name     string
		checks   []api.Check
		wantCode int
		want     map[string]string
	}{
		{"no checks", nil, http.StatusOK, map[string]string{}},
		{"all pass", []api.Check{passing}, http.StatusOK, map[string]string{"nats": "ok", "disk": "ok"}},
		{"one fails", []api.Check{passing, failing}, http.StatusServiceUnavailable, map[string]string{
			"nats": "ok", "disk": "ok",
			"buildkit": "dial unix /run/buildkit/buildkitd.sock: connect: no such file or directory",
		}},
		// One daemon of a pool down while another serves: reported, still ready.
		{"soft check fails", []api.Check{passing, {Name: "buildkit tcp://10.0.0.9:1234", Soft: true, Func: func(context.Context) error {
			return errors.New("down: connection refused")
		}}}, http.StatusOK, map[string]string{"nats": "ok", "disk": "ok", "buildkit tcp://10.0.0.9:1234": "down: connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(s *api.Server) {
				if tt.checks == nil {
					s.Checks = nil
				} else {
					s.Checks = append(s.Checks, tt.checks...) // the real store.Ping first
				}
			})
			for _, token := range []string{"", "wrong", testToken} {
				code, hdr, raw := h.do("GET", "/healthz", token, "")
				if code != http.StatusOK {
					t.Fatalf("/healthz with token %q: HTTP %d %s", token, code, raw)
				}
				if got := decodeInto[map[string]string](t, raw); got["status"] != "ok" {
					t.Errorf("/healthz = %s", raw)
				}
				if ct := hdr.Get("Content-Type"); ct != "application/json" {
					t.Errorf("/healthz Content-Type = %q", ct)
				}

				code, _, raw = h.do("GET", "/readyz", token, "")
				if code != tt.wantCode {
					t.Fatalf("/readyz with token %q: HTTP %d %s, want %d", token, code, raw, tt.wantCode)
				}
				got := decodeInto[map[string]string](t, raw)
				if len(got) != len(tt.want) {
					t.Errorf("/readyz = %v, want %v", got, tt.want)
				}
				for k, v := range tt.want {
					if got[k] != v {
						t.Errorf("/readyz[%q] = %q, want %q", k, got[k], v)
					}
				}
			}
			if tt.checks != nil && !deadlineSet.Load() {
				t.Error("a readiness check ran without a deadline on its context")
			}
		})
	}
}

// TestClientErrors covers the client's handling of answers that are not
// the API's JSON errors, and of its base URL.
func TestClientErrors(t *testing.T) {
	h := newHarness(t)

	t.Run("trailing slash in BaseURL", func(t *testing.T) {
		repo := h.createRepo(validRepo("acme/demo"))
		// Record what reaches the server: the mux would redirect "//api/..."
		// and hide a doubled slash.
		var mu sync.Mutex
		var seen []string
		rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.Method+" "+r.RequestURI)
			mu.Unlock()
			h.srv.Config.Handler.ServeHTTP(w, r)
		}))
		defer rec.Close()
		c := api.Client{BaseURL: rec.URL + "/", Token: testToken}
		b, err := c.Trigger(testCtx(t), repo.ID, "", commitA)
		if err != nil || b.Commit != commitA {
			t.Fatalf("Trigger = %+v, %v", b, err)
		}
		repos, err := c.Repos(testCtx(t))
		if err != nil || len(repos) != 1 {
			t.Fatalf("Repos = %v, %v; want one", repos, err)
		}
		mu.Lock()
		defer mu.Unlock()
		want := []string{"POST /api/v1/repos/" + repo.ID + "/builds", "GET /api/v1/repos"}
		if !reflect.DeepEqual(seen, want) {
			t.Errorf("requests = %q, want %q", seen, want)
		}
	})

	t.Run("plain-text error body", func(t *testing.T) {
		c := h.client
		c.BaseURL += "/elsewhere" // the mux answers 404 in plain text
		_, err := c.Build(testCtx(t), "x")
		if msg := apiError(t, err, http.StatusNotFound); msg != "404 page not found" {
			t.Errorf("message = %q, want the trimmed plain-text body", msg)
		}
		if got := err.Error(); got != "HTTP 404: 404 page not found" {
			t.Errorf("Error() = %q", got)
		}
	})

	t.Run("unreachable server", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		c := api.Client{BaseURL: srv.URL, Token: testToken}
		_, err := c.Builds(testCtx(t), "")
		var e *api.Error
		if err == nil || errors.As(err, &e) {
			t.Fatalf("err = %v, want a transport error", err)
		}
		if !strings.Contains(err.Error(), "GET /api/v1/builds") {
			t.Errorf("err = %v, want it to name the request", err)
		}
	})
}

// storedBuilds reads builds straight from the store.
func (h *harness) storedBuilds(repoID string) []model.Build {
	h.t.Helper()
	bs, err := h.store.ListBuilds(testCtx(h.t), repoID)
	if err != nil {
		h.t.Fatalf("store.ListBuilds: %v", err)
	}
	return bs
}

// TestMalformedIDs: an id no record can have is simply not found. It must
// not reach the store, whose "invalid key" error would be answered 503.
func TestMalformedIDs(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	for _, id := range []string{"x%2A", "x%3E", "a%20b", "a.b", "id.%2A"} {
		for _, route := range []struct{ method, path, body string }{
			{"GET", "/api/v1/repos/" + id, ""},
			{"DELETE", "/api/v1/repos/" + id, ""},
			{"POST", "/api/v1/repos/" + id + "/builds", `{"ref":"refs/heads/main"}`},
			{"GET", "/api/v1/builds/" + id, ""},
			{"GET", "/api/v1/builds/" + id + "/log", ""},
			{"POST", "/api/v1/builds/" + id + "/cancel", ""},
			{"POST", "/api/v1/builds/" + id + "/rebuild", ""},
		} {
			code, _, raw := h.do(route.method, route.path, testToken, route.body)
			if code != http.StatusNotFound {
				t.Errorf("%s %s: HTTP %d %s, want 404", route.method, route.path, code, raw)
			}
		}
	}
	if got := repoIDs(h.listRepos()); !reflect.DeepEqual(got, []string{repo.ID}) {
		t.Errorf("repos = %v, want [%s]", got, repo.ID)
	}
	if n := len(h.resolveCalls()); n != 0 {
		t.Errorf("Resolve called %d times", n)
	}
}

// apiHosts is the hosts table as cmd/slipway hands it to the API.
func apiHosts() []api.Host {
	var out []api.Host
	for _, h := range hosts.All() {
		out = append(out, api.Host{Name: h.Name, HookPath: h.HookPath(), API: h.API})
	}
	return out
}

// testDNS answers the names the tests use: evil.example stands for a name
// an attacker points at loopback; every other name does not resolve, which
// registration does not refuse.
func testDNS(_ context.Context, host string) ([]netip.Addr, error) {
	switch host {
	case "evil.example":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	case "public.example":
		return []netip.Addr{netip.MustParseAddr("140.82.112.3")}, nil
	}
	return nil, fmt.Errorf("test DNS: no such host %s", host)
}

// fakeForge is a Git host whose API knows every repository but acme/gone,
// and answers the clone URL its full name names.
type fakeForge struct{}

func (fakeForge) Name() string { return "fakehost" }

func (fakeForge) SetStatus(context.Context, forge.Conn, forge.Status) error { return nil }

func (fakeForge) Repo(_ context.Context, c forge.Conn) (forge.Repo, error) {
	switch c.FullName {
	case "acme/gone":
		return forge.Repo{}, errors.New("fakehost: GET /repos/acme/gone: HTTP 404 Not Found")
	case "acme/sneaky":
		return forge.Repo{FullName: c.FullName, CloneURL: "file:///etc"}, nil
	}
	return forge.Repo{FullName: c.FullName, CloneURL: "https://git.example/" + c.FullName + ".git"}, nil
}

func (fakeForge) CreateHook(context.Context, forge.Conn, string, string) (forge.Hook, error) {
	return forge.Hook{}, errors.New("not needed")
}

func (fakeForge) DeleteHook(context.Context, forge.Conn, string) error { return nil }
