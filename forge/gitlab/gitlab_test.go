package gitlab

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
// documented GitLab REST v4 endpoints Slipway uses (commit statuses with
// GitLab's state machine, projects, project hooks) and records every
// request. The real gitlab.com is never contacted.

const (
	token    = "glpat-Secret-Token-123"
	sha      = "e83c5163316f89bfbde7d9ab23ca2e25604af290"
	fullName = "acme/sub/demo"
	escaped  = "acme%2Fsub%2Fdemo"
)

type request struct {
	Method string
	URI    string // as sent: escaped path and query
	Header http.Header
	Body   map[string]any
}

// localGitLab is a local stand-in for GitLab's API under /api/v4.
type localGitLab struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	requests []request
	statuses map[string]string // sha + name → state
	// failWith, when set, answers every request with this status and body.
	failWith int
	failBody string
}

func newLocalGitLab(t *testing.T) *localGitLab {
	g := &localGitLab{t: t, statuses: map[string]string{}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *localGitLab) conn() forge.Conn {
	return forge.Conn{APIURL: g.srv.URL + "/api/v4", FullName: fullName, Token: token}
}

func (g *localGitLab) recorded() []request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]request(nil), g.requests...)
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (g *localGitLab) serve(w http.ResponseWriter, r *http.Request) {
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
	if r.Header.Get("PRIVATE-TOKEN") != token {
		reply(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/api/v4/"), "/")
	if len(parts) < 2 || parts[0] != "projects" {
		reply(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
		return
	}
	if parts[1] != escaped {
		reply(w, http.StatusNotFound, map[string]string{"message": "404 Project Not Found"})
		return
	}
	switch {
	case r.Method == http.MethodPost && len(parts) == 4 && parts[2] == "statuses":
		g.postStatus(w, parts[3], body)
	case r.Method == http.MethodGet && len(parts) == 2:
		reply(w, http.StatusOK, map[string]any{
			"id": 3, "name": "demo", "path": "demo", "path_with_namespace": fullName,
			"default_branch": "main", "visibility": "internal",
			"ssh_url_to_repo":  "git@gitlab.example.com:acme/sub/demo.git",
			"http_url_to_repo": "https://gitlab.example.com/acme/sub/demo.git",
			"web_url":          "https://gitlab.example.com/acme/sub/demo",
		})
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "hooks":
		reply(w, http.StatusCreated, map[string]any{
			"id": 1042, "url": body["url"], "project_id": 3, "push_events": body["push_events"],
			"tag_push_events": body["tag_push_events"], "enable_ssl_verification": body["enable_ssl_verification"],
			"created_at": "2026-01-02T03:04:05Z",
		})
	case r.Method == http.MethodDelete && len(parts) == 4 && parts[2] == "hooks":
		if parts[3] != "1042" {
			reply(w, http.StatusNotFound, map[string]string{"message": "404 Not found"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		reply(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	}
}

// postStatus follows GitLab's commit status state machine: setting a
// status to the state it already has while pending or running is refused.
func (g *localGitLab) postStatus(w http.ResponseWriter, commit string, body map[string]any) {
	state, _ := body["state"].(string)
	name, _ := body["name"].(string)
	events := map[string]string{"pending": "enqueue", "running": "run", "success": "success", "failed": "drop", "canceled": "cancel"}
	event, ok := events[state]
	if !ok {
		reply(w, http.StatusBadRequest, map[string]string{"error": "state does not have a valid value"})
		return
	}
	g.mu.Lock()
	prev := g.statuses[commit+" "+name]
	if prev == state && (prev == "pending" || prev == "running") {
		g.mu.Unlock()
		reply(w, http.StatusBadRequest, map[string]string{"message": fmt.Sprintf(
			"Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via %q)", event, prev, event)})
		return
	}
	g.statuses[commit+" "+name] = state
	g.mu.Unlock()
	reply(w, http.StatusCreated, map[string]any{"id": 93, "sha": commit, "status": state, "name": name,
		"target_url": body["target_url"], "description": body["description"]})
}

func TestSetStatusAgainstLocalGitLabAPIServer(t *testing.T) {
	long := strings.Repeat("é", 150)
	tests := []struct {
		name  string
		s     forge.Status
		want  map[string]any
		wantR string // request URI
	}{
		{"pending", forge.Status{Commit: sha, State: forge.Pending, Key: "slipway/latest", Description: "Queued", URL: "https://ci.example.com/api/v1/builds/b1"},
			map[string]any{"state": "pending", "name": "slipway/latest", "target_url": "https://ci.example.com/api/v1/builds/b1", "description": "Queued"}, ""},
		{"running", forge.Status{Commit: sha, State: forge.Running, Key: "slipway/latest", Description: "Building reg/demo", URL: "https://ci.example.com/b/1"},
			map[string]any{"state": "running", "name": "slipway/latest", "target_url": "https://ci.example.com/b/1", "description": "Building reg/demo"}, ""},
		{"success", forge.Status{Commit: sha, State: forge.Success, Key: "slipway/latest", Description: "Pushed", URL: "https://ci.example.com/b/1"},
			map[string]any{"state": "success", "name": "slipway/latest", "target_url": "https://ci.example.com/b/1", "description": "Pushed"}, ""},
		{"failure", forge.Status{Commit: sha, State: forge.Failure, Key: "slipway/v1", Description: "Failed: RUN make", URL: "https://ci.example.com/b/2"},
			map[string]any{"state": "failed", "name": "slipway/v1", "target_url": "https://ci.example.com/b/2", "description": "Failed: RUN make"}, ""},
		{"error", forge.Status{Commit: sha, State: forge.Error, Key: "slipway/v2", Description: "Failed: gave up after 3 tries", URL: "https://ci.example.com/b/3"},
			map[string]any{"state": "failed", "name": "slipway/v2", "target_url": "https://ci.example.com/b/3", "description": "Failed: gave up after 3 tries"}, ""},
		{"cancelled", forge.Status{Commit: sha, State: forge.Cancelled, Key: "slipway/v3", Description: "Cancelled: superseded", URL: "https://ci.example.com/b/4"},
			map[string]any{"state": "canceled", "name": "slipway/v3", "target_url": "https://ci.example.com/b/4", "description": "Cancelled: superseded"}, ""},
		{"default key, no URL", forge.Status{Commit: sha, State: forge.Pending},
			map[string]any{"state": "pending", "name": "slipway", "description": ""}, ""},
		{"description truncated to 140", forge.Status{Commit: sha, State: forge.Running, Key: "slipway/long", Description: long, URL: "https://ci.example.com/b/5"},
			map[string]any{"state": "running", "name": "slipway/long", "target_url": "https://ci.example.com/b/5", "description": strings.Repeat("é", 139) + "…"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newLocalGitLab(t)
			if err := (Forge{}).SetStatus(context.Background(), g.conn(), tt.s); err != nil {
				t.Fatalf("SetStatus: %v", err)
			}
			reqs := g.recorded()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.URI != "/api/v4/projects/"+escaped+"/statuses/"+sha {
				t.Errorf("request = %s %s, want POST /api/v4/projects/%s/statuses/%s", r.Method, r.URI, escaped, sha)
			}
			if got := r.Header.Get("PRIVATE-TOKEN"); got != token {
				t.Errorf("PRIVATE-TOKEN = %q", got)
			}
			if got := r.Header.Get("Authorization"); got != "" {
				t.Errorf("Authorization = %q, want none", got)
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

func TestBuildStatusesArriveInOrderAtLocalGitLabAPIServer(t *testing.T) {
	g := newLocalGitLab(t)
	f := Forge{}
	for _, st := range []forge.State{forge.Pending, forge.Running, forge.Success} {
		if err := f.SetStatus(context.Background(), g.conn(), forge.Status{Commit: sha, State: st, Key: "slipway/latest", URL: "https://ci.example.com/b/1"}); err != nil {
			t.Fatalf("SetStatus(%s): %v", st, err)
		}
	}
	var got []string
	for _, r := range g.recorded() {
		got = append(got, r.Body["state"].(string))
	}
	if want := []string{"pending", "running", "success"}; !reflect.DeepEqual(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	if s := g.statuses[sha+" slipway/latest"]; s != "success" {
		t.Errorf("the local GitLab holds %q", s)
	}
}

func TestRepeatedStateIsNoErrorAtLocalGitLabAPIServer(t *testing.T) {
	g := newLocalGitLab(t)
	f := Forge{}
	s := forge.Status{Commit: sha, State: forge.Running, Key: "slipway/latest", URL: "https://ci.example.com/b/1"}
	for i := range 2 {
		if err := f.SetStatus(context.Background(), g.conn(), s); err != nil {
			t.Fatalf("SetStatus running #%d: %v", i+1, err)
		}
	}
	if n := len(g.recorded()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	// A 400 about another state is still an error.
	g.statuses[sha+" slipway/x"] = "running"
	g.failWith, g.failBody = http.StatusBadRequest, `{"message":"Cannot transition status via :enqueue from :running (Reason(s): Status cannot transition via \"enqueue\")"}`
	err := f.SetStatus(context.Background(), g.conn(), forge.Status{Commit: sha, State: forge.Pending, Key: "slipway/x"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), ":enqueue from :running") {
		t.Errorf("err = %v, want the 400 with GitLab's message", err)
	}
}

func TestUnauthorizedFromLocalGitLabAPIServer(t *testing.T) {
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			g := newLocalGitLab(t)
			// A host that echoes the token must not get it into the error.
			g.failWith, g.failBody = code, `{"message":"`+fmt.Sprint(code)+` token `+token+` is revoked"}`
			f := Forge{}
			calls := map[string]func() error{
				"SetStatus": func() error {
					return f.SetStatus(context.Background(), g.conn(), forge.Status{Commit: sha, State: forge.Pending})
				},
				"Repo": func() error { _, err := f.Repo(context.Background(), g.conn()); return err },
				"CreateHook": func() error {
					_, err := f.CreateHook(context.Background(), g.conn(), "https://ci.example.com/hooks/gitlab", "s3cret-hook")
					return err
				},
				"DeleteHook": func() error { return f.DeleteHook(context.Background(), g.conn(), "1042") },
			}
			for name, call := range calls {
				err := call()
				if !errors.Is(err, forge.ErrUnauthorized) {
					t.Errorf("%s: err = %v, want forge.ErrUnauthorized", name, err)
					continue
				}
				if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "s3cret-hook") {
					t.Errorf("%s: the error shows a credential: %v", name, err)
				}
				if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), fmt.Sprint(code)) || !strings.Contains(err.Error(), "is revoked") {
					t.Errorf("%s: err = %v, want method, status and message", name, err)
				}
			}
		})
	}
	// A wrong token gets GitLab's own 401.
	g := newLocalGitLab(t)
	c := g.conn()
	c.Token = "glpat-wrong-token"
	err := Forge{}.SetStatus(context.Background(), c, forge.Status{Commit: sha, State: forge.Pending})
	if !errors.Is(err, forge.ErrUnauthorized) || strings.Contains(err.Error(), "glpat-wrong-token") {
		t.Errorf("err = %v", err)
	}
}

func TestServerErrorFromLocalGitLabAPIServer(t *testing.T) {
	g := newLocalGitLab(t)
	g.failWith, g.failBody = http.StatusInternalServerError, `{"message":"500 Internal Server Error"}`
	err := Forge{}.SetStatus(context.Background(), g.conn(), forge.Status{Commit: sha, State: forge.Success})
	if err == nil {
		t.Fatal("no error")
	}
	if errors.Is(err, forge.ErrUnauthorized) {
		t.Errorf("a 500 is not unauthorized: %v", err)
	}
	want := "gitlab: SetStatus: POST /projects/" + escaped + "/statuses/" + sha + ": HTTP 500 Internal Server Error: 500 Internal Server Error"
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
	// Validation messages are objects; HTML pages are text.
	for body, wantMsg := range map[string]string{
		`{"message":{"url":["is blocked: Requests to localhost are not allowed"]}}`: `{"url":["is blocked: Requests to localhost are not allowed"]}`,
		"<html><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>":          "502 Bad Gateway nginx",
		`{"error":"state does not have a valid value"}`:                             "state does not have a valid value",
	} {
		g.failWith, g.failBody = http.StatusBadGateway, body
		_, err := Forge{}.Repo(context.Background(), g.conn())
		if err == nil || !strings.HasSuffix(err.Error(), ": "+wantMsg) || !strings.Contains(err.Error(), "GET /projects/"+escaped+": HTTP 502") {
			t.Errorf("body %q: err = %v, want message %q", body, err, wantMsg)
		}
	}
	g.failBody = `{"message":"` + strings.Repeat("x", 500) + `"}`
	_, err = Forge{}.Repo(context.Background(), g.conn())
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("a long message is not shortened: %d bytes", len(fmt.Sprint(err)))
	}
}

func TestRepoFromLocalGitLabAPIServer(t *testing.T) {
	g := newLocalGitLab(t)
	got, err := Forge{}.Repo(context.Background(), g.conn())
	if err != nil {
		t.Fatal(err)
	}
	want := forge.Repo{FullName: fullName, DefaultBranch: "main", CloneURL: "https://gitlab.example.com/acme/sub/demo.git", Private: true}
	if got != want {
		t.Errorf("Repo = %+v, want %+v", got, want)
	}
	r := g.recorded()[0]
	if r.Method != http.MethodGet || r.URI != "/api/v4/projects/"+escaped || r.Body != nil {
		t.Errorf("request = %s %s %v", r.Method, r.URI, r.Body)
	}
	for vis, private := range map[string]bool{"public": false, "internal": true, "private": true, "": true} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reply(w, http.StatusOK, map[string]any{"path_with_namespace": fullName, "visibility": vis})
		}))
		got, err := Forge{}.Repo(context.Background(), forge.Conn{APIURL: srv.URL, FullName: fullName, Token: token})
		srv.Close()
		if err != nil || got.Private != private {
			t.Errorf("visibility %q: Private = %v, %v; want %v", vis, got.Private, err, private)
		}
	}
}

func TestCreateHookAtLocalGitLabAPIServer(t *testing.T) {
	g := newLocalGitLab(t)
	h, err := Forge{}.CreateHook(context.Background(), g.conn(), "https://ci.example.com/hooks/gitlab", "hook-secret")
	if err != nil {
		t.Fatal(err)
	}
	if h != (forge.Hook{ID: "1042", URL: "https://ci.example.com/hooks/gitlab"}) {
		t.Errorf("hook = %+v", h)
	}
	r := g.recorded()[0]
	if r.Method != http.MethodPost || r.URI != "/api/v4/projects/"+escaped+"/hooks" {
		t.Errorf("request = %s %s", r.Method, r.URI)
	}
	want := map[string]any{"url": "https://ci.example.com/hooks/gitlab", "push_events": true, "tag_push_events": true,
		"token": "hook-secret", "enable_ssl_verification": true}
	if !reflect.DeepEqual(r.Body, want) {
		t.Errorf("body = %v\nwant   %v", r.Body, want)
	}
	if r.Header.Get("PRIVATE-TOKEN") != token {
		t.Errorf("PRIVATE-TOKEN = %q", r.Header.Get("PRIVATE-TOKEN"))
	}
}

func TestDeleteHookAtLocalGitLabAPIServer(t *testing.T) {
	g := newLocalGitLab(t)
	if err := (Forge{}).DeleteHook(context.Background(), g.conn(), "1042"); err != nil {
		t.Fatal(err)
	}
	r := g.recorded()[0]
	if r.Method != http.MethodDelete || r.URI != "/api/v4/projects/"+escaped+"/hooks/1042" || r.Header.Get("PRIVATE-TOKEN") != token {
		t.Errorf("request = %s %s", r.Method, r.URI)
	}
	err := Forge{}.DeleteHook(context.Background(), g.conn(), "7")
	if err == nil || !strings.Contains(err.Error(), "DELETE /projects/"+escaped+"/hooks/7: HTTP 404") {
		t.Errorf("missing hook: err = %v", err)
	}
	if err := (Forge{}).DeleteHook(context.Background(), g.conn(), ""); err == nil {
		t.Error("an empty hook id is accepted")
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The public host is only named, never reached: a transport stands in.
func TestEmptyAPIURLMeansGitLabComWithoutNetwork(t *testing.T) {
	var got string
	hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		got = r.URL.Scheme + "://" + r.URL.Host + r.URL.EscapedPath()
		return &http.Response{StatusCode: http.StatusCreated, Body: io.NopCloser(strings.NewReader(`{}`)), Header: http.Header{}}, nil
	})}
	err := Forge{}.SetStatus(context.Background(), forge.Conn{FullName: fullName, Token: token, HTTP: hc}, forge.Status{Commit: sha, State: forge.Pending})
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://gitlab.com/api/v4/projects/" + escaped + "/statuses/" + sha; got != want {
		t.Errorf("URL = %s, want %s", got, want)
	}
	a, _, err := open("Repo", forge.Conn{FullName: fullName})
	if err != nil || a.Timeout() != 30*time.Second {
		t.Errorf("nil Conn.HTTP: client timeout %v, %v", a.Timeout(), err)
	}
}

func TestBadInputNeverReachesLocalGitLabAPIServer(t *testing.T) {
	g := newLocalGitLab(t)
	f := Forge{}
	bad := map[string]error{
		"unknown state": f.SetStatus(context.Background(), g.conn(), forge.Status{Commit: sha, State: "queued"}),
		"no commit":     f.SetStatus(context.Background(), g.conn(), forge.Status{State: forge.Pending}),
		"no project":    f.SetStatus(context.Background(), forge.Conn{APIURL: g.srv.URL, Token: token}, forge.Status{Commit: sha, State: forge.Pending}),
		"bad APIURL":    f.SetStatus(context.Background(), forge.Conn{APIURL: "gitlab.example.com", FullName: fullName, Token: token}, forge.Status{Commit: sha, State: forge.Pending}),
	}
	for name, err := range bad {
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), token) {
			t.Errorf("%s: token in %v", name, err)
		}
	}
	if n := len(g.recorded()); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}

// A redirect to another host would carry PRIVATE-TOKEN along (Go only
// drops Authorization), so it is refused.
func TestRedirectOffLocalGitLabAPIServerKeepsToken(t *testing.T) {
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get("PRIVATE-TOKEN"))
		reply(w, http.StatusOK, map[string]any{})
	}))
	defer other.Close()
	g := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/api/v4/projects/"+escaped, http.StatusFound)
	}))
	defer g.Close()
	_, err := Forge{}.Repo(context.Background(), forge.Conn{APIURL: g.URL + "/api/v4", FullName: fullName, Token: token})
	if err == nil || !strings.Contains(err.Error(), "refused a redirect") {
		t.Errorf("err = %v", err)
	}
	if len(leaked) != 0 {
		t.Errorf("the other host got %d requests", len(leaked))
	}
}
