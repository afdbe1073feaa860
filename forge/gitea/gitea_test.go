package gitea

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slipway-build/slipway/forge"
)

// These tests run against a local httptest server that implements the
// documented Gitea/Forgejo API v1 endpoints Slipway uses (commit statuses,
// repositories, repository hooks) and records every request. No real Gitea
// or Forgejo is contacted.

const (
	token    = "4f9c0e8d1b2a3c4d5e6f7a8b9c0d1e2f3a4b5c6d"
	sha      = "e83c5163316f89bfbde7d9ab23ca2e25604af290"
	fullName = "acme/demo.app"
	repoPath = "/api/v1/repos/acme/demo.app"
)

type request struct {
	Method string
	URI    string
	Header http.Header
	Body   map[string]any
}

// localGitea is a local stand-in for a Gitea or Forgejo API under /api/v1.
type localGitea struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	requests []request
	failWith int
	failBody string
}

func newLocalGitea(t *testing.T) *localGitea {
	g := &localGitea{t: t}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *localGitea) conn() forge.Conn {
	return forge.Conn{APIURL: g.srv.URL + "/api/v1/", FullName: fullName, Token: token}
}

func (g *localGitea) recorded() []request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]request(nil), g.requests...)
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter) {
	reply(w, http.StatusNotFound, map[string]any{"errors": nil, "message": "The target couldn't be found.", "url": "https://gitea.example.com/api/swagger"})
}

func (g *localGitea) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			g.t.Errorf("%s %s: body is not JSON: %q", r.Method, r.RequestURI, raw)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			g.t.Errorf("%s %s: Content-Type %q", r.Method, r.RequestURI, ct)
		}
	}
	g.mu.Lock()
	g.requests = append(g.requests, request{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: body})
	g.mu.Unlock()
	if g.failWith != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(g.failWith)
		_, _ = io.WriteString(w, g.failBody)
		return
	}
	if r.Header.Get("Authorization") != "token "+token {
		reply(w, http.StatusUnauthorized, map[string]string{"message": "user does not exist [uid: 0, name: ]", "url": "https://gitea.example.com/api/swagger"})
		return
	}
	p := r.URL.EscapedPath()
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(p, repoPath+"/statuses/"):
		switch body["state"] {
		case "pending", "success", "error", "failure", "warning":
		default:
			reply(w, http.StatusUnprocessableEntity, map[string]string{"message": "invalid state", "url": ""})
			return
		}
		reply(w, http.StatusCreated, map[string]any{"id": 12, "status": body["state"], "context": body["context"],
			"target_url": body["target_url"], "description": body["description"]})
	case r.Method == http.MethodGet && p == repoPath:
		reply(w, http.StatusOK, map[string]any{
			"id": 5, "name": "demo.app", "full_name": fullName, "private": false, "internal": false,
			"default_branch": "trunk", "clone_url": "https://gitea.example.com/acme/demo.app.git",
			"ssh_url": "git@gitea.example.com:acme/demo.app.git", "html_url": "https://gitea.example.com/acme/demo.app",
		})
	case r.Method == http.MethodPost && p == repoPath+"/hooks":
		cfg, _ := body["config"].(map[string]any)
		if cfg["url"] == nil || cfg["content_type"] == nil {
			reply(w, http.StatusUnprocessableEntity, map[string]string{"message": "Missing config option: url"})
			return
		}
		reply(w, http.StatusCreated, map[string]any{
			"id": 7, "type": body["type"], "active": body["active"], "events": body["events"],
			// Gitea does not return the secret.
			"config": map[string]any{"url": cfg["url"], "content_type": cfg["content_type"]},
		})
	case r.Method == http.MethodDelete && p == repoPath+"/hooks/7":
		w.WriteHeader(http.StatusNoContent)
	default:
		notFound(w)
	}
}

func TestSetStatusAgainstLocalGiteaAPIServer(t *testing.T) {
	long := strings.Repeat("ü", 141)
	tests := []struct {
		name string
		s    forge.Status
		want map[string]any
	}{
		{"pending", forge.Status{Commit: sha, State: forge.Pending, Key: "slipway/latest", Description: "Queued", URL: "https://ci.example.com/b/1"},
			map[string]any{"state": "pending", "context": "slipway/latest", "target_url": "https://ci.example.com/b/1", "description": "Queued"}},
		{"running is pending", forge.Status{Commit: sha, State: forge.Running, Key: "slipway/latest", Description: "Building", URL: "https://ci.example.com/b/1"},
			map[string]any{"state": "pending", "context": "slipway/latest", "target_url": "https://ci.example.com/b/1", "description": "Building"}},
		{"success", forge.Status{Commit: sha, State: forge.Success, Key: "slipway/latest", Description: "Pushed", URL: "https://ci.example.com/b/1"},
			map[string]any{"state": "success", "context": "slipway/latest", "target_url": "https://ci.example.com/b/1", "description": "Pushed"}},
		{"failure", forge.Status{Commit: sha, State: forge.Failure, Key: "slipway/v1", Description: "Failed", URL: "https://ci.example.com/b/2"},
			map[string]any{"state": "failure", "context": "slipway/v1", "target_url": "https://ci.example.com/b/2", "description": "Failed"}},
		{"error", forge.Status{Commit: sha, State: forge.Error, Key: "slipway/v1", Description: "Gave up", URL: "https://ci.example.com/b/3"},
			map[string]any{"state": "error", "context": "slipway/v1", "target_url": "https://ci.example.com/b/3", "description": "Gave up"}},
		{"cancelled is warning", forge.Status{Commit: sha, State: forge.Cancelled, Key: "slipway/v1", Description: "Cancelled", URL: "https://ci.example.com/b/4"},
			map[string]any{"state": "warning", "context": "slipway/v1", "target_url": "https://ci.example.com/b/4", "description": "Cancelled"}},
		{"default context, no URL", forge.Status{Commit: sha, State: forge.Success},
			map[string]any{"state": "success", "context": "slipway", "description": ""}},
		{"description truncated to 140", forge.Status{Commit: sha, State: forge.Failure, Key: "k", Description: long, URL: "https://ci.example.com/b/5"},
			map[string]any{"state": "failure", "context": "k", "target_url": "https://ci.example.com/b/5", "description": strings.Repeat("ü", 139) + "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newLocalGitea(t)
			if err := (Forge{}).SetStatus(context.Background(), g.conn(), tt.s); err != nil {
				t.Fatalf("SetStatus: %v", err)
			}
			reqs := g.recorded()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.URI != repoPath+"/statuses/"+sha {
				t.Errorf("request = %s %s", r.Method, r.URI)
			}
			if got := r.Header.Get("Authorization"); got != "token "+token {
				t.Errorf("Authorization = %q", got)
			}
			if !reflect.DeepEqual(r.Body, tt.want) {
				t.Errorf("body = %v\nwant   %v", r.Body, tt.want)
			}
			if d, _ := r.Body["description"].(string); utf8.RuneCountInString(d) > 140 {
				t.Errorf("description has %d characters", utf8.RuneCountInString(d))
			}
		})
	}
}

func TestBuildStatusesArriveInOrderAtLocalGiteaAPIServer(t *testing.T) {
	g := newLocalGitea(t)
	for _, st := range []forge.State{forge.Pending, forge.Running, forge.Success} {
		if err := (Forge{}).SetStatus(context.Background(), g.conn(), forge.Status{Commit: sha, State: st, Key: "slipway/latest", Description: string(st)}); err != nil {
			t.Fatalf("SetStatus(%s): %v", st, err)
		}
	}
	var got []string
	for _, r := range g.recorded() {
		got = append(got, r.Body["state"].(string)+"/"+r.Body["description"].(string))
	}
	if want := []string{"pending/pending", "pending/running", "success/success"}; !reflect.DeepEqual(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

func TestUnauthorizedFromLocalGiteaAPIServer(t *testing.T) {
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			g := newLocalGitea(t)
			g.failWith, g.failBody = code, `{"message":"token `+token+` lacks write:repository","url":"https://gitea.example.com/api/swagger"}`
			f := Forge{}
			calls := map[string]func() error{
				"SetStatus": func() error {
					return f.SetStatus(context.Background(), g.conn(), forge.Status{Commit: sha, State: forge.Pending})
				},
				"Repo": func() error { _, err := f.Repo(context.Background(), g.conn()); return err },
				"CreateHook": func() error {
					_, err := f.CreateHook(context.Background(), g.conn(), "https://ci.example.com/hooks/gitea", "hook-secret")
					return err
				},
				"DeleteHook": func() error { return f.DeleteHook(context.Background(), g.conn(), "7") },
			}
			for name, call := range calls {
				err := call()
				if !errors.Is(err, forge.ErrUnauthorized) {
					t.Errorf("%s: err = %v, want forge.ErrUnauthorized", name, err)
					continue
				}
				if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "hook-secret") {
					t.Errorf("%s: the error shows a credential: %v", name, err)
				}
				if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), fmt.Sprint(code)) || !strings.Contains(err.Error(), "lacks write:repository") {
					t.Errorf("%s: err = %v", name, err)
				}
			}
		})
	}
	g := newLocalGitea(t)
	c := g.conn()
	c.Token = "wrong-token-value"
	_, err := Forge{}.Repo(context.Background(), c)
	if !errors.Is(err, forge.ErrUnauthorized) || strings.Contains(err.Error(), "wrong-token-value") || !strings.Contains(err.Error(), "user does not exist") {
		t.Errorf("err = %v", err)
	}
}

func TestServerErrorFromLocalGiteaAPIServer(t *testing.T) {
	g := newLocalGitea(t)
	g.failWith, g.failBody = http.StatusInternalServerError, `{"message":"database is locked","url":"https://gitea.example.com/api/swagger"}`
	err := Forge{}.SetStatus(context.Background(), g.conn(), forge.Status{Commit: sha, State: forge.Success})
	want := "gitea: SetStatus: POST /repos/acme/demo.app/statuses/" + sha + ": HTTP 500 Internal Server Error: database is locked"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
	if errors.Is(err, forge.ErrUnauthorized) {
		t.Error("a 500 is unauthorized")
	}
}

func TestRepoFromLocalGiteaAPIServer(t *testing.T) {
	g := newLocalGitea(t)
	got, err := Forge{}.Repo(context.Background(), g.conn())
	if err != nil {
		t.Fatal(err)
	}
	want := forge.Repo{FullName: fullName, DefaultBranch: "trunk", CloneURL: "https://gitea.example.com/acme/demo.app.git"}
	if got != want {
		t.Errorf("Repo = %+v, want %+v", got, want)
	}
	if r := g.recorded()[0]; r.Method != http.MethodGet || r.URI != repoPath {
		t.Errorf("request = %s %s", r.Method, r.URI)
	}
	for _, tc := range []struct {
		private, internal, want bool
	}{{false, false, false}, {true, false, true}, {false, true, true}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reply(w, http.StatusOK, map[string]any{"full_name": fullName, "private": tc.private, "internal": tc.internal})
		}))
		got, err := Forge{}.Repo(context.Background(), forge.Conn{APIURL: srv.URL, FullName: fullName, Token: token})
		srv.Close()
		if err != nil || got.Private != tc.want {
			t.Errorf("private=%v internal=%v: Private = %v, %v", tc.private, tc.internal, got.Private, err)
		}
	}
}

func TestCreateHookAtLocalGiteaAPIServer(t *testing.T) {
	g := newLocalGitea(t)
	h, err := Forge{}.CreateHook(context.Background(), g.conn(), "https://ci.example.com/hooks/gitea", "hook-secret")
	if err != nil {
		t.Fatal(err)
	}
	if h != (forge.Hook{ID: "7", URL: "https://ci.example.com/hooks/gitea"}) {
		t.Errorf("hook = %+v", h)
	}
	r := g.recorded()[0]
	if r.Method != http.MethodPost || r.URI != repoPath+"/hooks" || r.Header.Get("Authorization") != "token "+token {
		t.Errorf("request = %s %s", r.Method, r.URI)
	}
	want := map[string]any{"type": "gitea", "active": true, "events": []any{"push"},
		"config": map[string]any{"url": "https://ci.example.com/hooks/gitea", "content_type": "json", "secret": "hook-secret"}}
	if !reflect.DeepEqual(r.Body, want) {
		t.Errorf("body = %v\nwant   %v", r.Body, want)
	}
}

func TestDeleteHookAtLocalGiteaAPIServer(t *testing.T) {
	g := newLocalGitea(t)
	if err := (Forge{}).DeleteHook(context.Background(), g.conn(), "7"); err != nil {
		t.Fatal(err)
	}
	if r := g.recorded()[0]; r.Method != http.MethodDelete || r.URI != repoPath+"/hooks/7" || r.Header.Get("Authorization") != "token "+token {
		t.Errorf("request = %s %s", r.Method, r.URI)
	}
	err := Forge{}.DeleteHook(context.Background(), g.conn(), "8")
	if err == nil || !strings.Contains(err.Error(), "DELETE /repos/acme/demo.app/hooks/8: HTTP 404 Not Found: The target couldn't be found.") {
		t.Errorf("err = %v", err)
	}
}

func TestEmptyAPIURLIsAnErrorWithoutRequest(t *testing.T) {
	called := false
	hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		called = true
		return nil, errors.New("no network")
	})}
	c := forge.Conn{FullName: fullName, Token: token, HTTP: hc}
	f := Forge{}
	errs := map[string]error{
		"SetStatus":  f.SetStatus(context.Background(), c, forge.Status{Commit: sha, State: forge.Pending}),
		"DeleteHook": f.DeleteHook(context.Background(), c, "7"),
	}
	_, errs["Repo"] = f.Repo(context.Background(), c)
	_, errs["CreateHook"] = f.CreateHook(context.Background(), c, "https://ci.example.com/hooks/gitea", "s")
	for name, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "Conn.APIURL") || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want one naming Conn.APIURL", name, err)
		}
	}
	if called {
		t.Error("a request was sent")
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBadInputNeverReachesLocalGiteaAPIServer(t *testing.T) {
	g := newLocalGitea(t)
	f := Forge{}
	for name, err := range map[string]error{
		"unknown state":  f.SetStatus(context.Background(), g.conn(), forge.Status{Commit: sha, State: "skipped"}),
		"no commit":      f.SetStatus(context.Background(), g.conn(), forge.Status{State: forge.Pending}),
		"nested name":    f.SetStatus(context.Background(), forge.Conn{APIURL: g.srv.URL, FullName: "a/b/c", Token: token}, forge.Status{Commit: sha, State: forge.Pending}),
		"no owner":       f.DeleteHook(context.Background(), forge.Conn{APIURL: g.srv.URL, FullName: "demo", Token: token}, "7"),
		"empty hook id":  f.DeleteHook(context.Background(), g.conn(), ""),
		"not an http(s)": f.DeleteHook(context.Background(), forge.Conn{APIURL: "ftp://gitea.example.com", FullName: fullName}, "7"),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if n := len(g.recorded()); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}

func TestNilHTTPClientHasThirtySecondTimeout(t *testing.T) {
	a, _, err := open("Repo", forge.Conn{APIURL: "https://gitea.example.com/api/v1", FullName: fullName})
	if err != nil {
		t.Fatal(err)
	}
	if a.Timeout() != 30*time.Second {
		t.Errorf("timeout = %v", a.Timeout())
	}
}
