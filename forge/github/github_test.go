package github

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/forge"
)

const (
	testToken = "ghp_localTestToken0123456789abcdefABCDEF"
	testSHA   = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
)

func testConn(f *fakeGitHub) forge.Conn {
	f.allowToken(testToken)
	return forge.Conn{APIURL: f.apiURL(), FullName: "acme/app", Token: testToken}
}

func bodyMap(t *testing.T, r recorded) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("request body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

func TestNameIsGithub(t *testing.T) {
	var f forge.Forge = Forge{}
	if f.Name() != "github" {
		t.Fatalf("Name() = %q", f.Name())
	}
}

func TestSetStatusAgainstLocalGitHubAPIServer(t *testing.T) {
	cases := []struct {
		state    forge.State
		desc     string
		wantWord string
		wantDesc string
	}{
		{forge.Pending, "Queued", "pending", "Queued"},
		{forge.Running, "Building", "pending", "Building"},
		{forge.Success, "Pushed ghcr.io/acme/app:latest", "success", "Pushed ghcr.io/acme/app:latest"},
		{forge.Failure, "Dockerfile step 3 failed", "failure", "Dockerfile step 3 failed"},
		{forge.Error, "BuildKit unreachable", "error", "BuildKit unreachable"},
		{forge.Cancelled, "", "error", "cancelled"},
		{forge.Cancelled, "superseded by 1a2b3c", "error", "cancelled: superseded by 1a2b3c"},
		{forge.Cancelled, "Cancelled by alice", "error", "Cancelled by alice"},
	}
	for _, tc := range cases {
		t.Run(string(tc.state)+"/"+tc.desc, func(t *testing.T) {
			f := newFakeGitHub(t, "")
			err := Forge{}.SetStatus(context.Background(), testConn(f), forge.Status{
				Commit:      testSHA,
				State:       tc.state,
				Key:         "slipway/latest",
				Description: tc.desc,
				URL:         "https://slipway.example.com/builds/42",
			})
			if err != nil {
				t.Fatalf("SetStatus: %v", err)
			}
			r := f.only(t)
			if r.Method != http.MethodPost || r.Path != "/repos/acme/app/statuses/"+testSHA {
				t.Fatalf("request %s %s, want POST /repos/acme/app/statuses/%s", r.Method, r.Path, testSHA)
			}
			if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
				t.Fatalf("Authorization %q, want Bearer token", got)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			want := map[string]any{
				"state":       tc.wantWord,
				"context":     "slipway/latest",
				"description": tc.wantDesc,
				"target_url":  "https://slipway.example.com/builds/42",
			}
			if got := bodyMap(t, r); !reflect.DeepEqual(got, want) {
				t.Fatalf("body %v, want %v", got, want)
			}
		})
	}
}

func TestSetStatusDefaultsAndLongDescriptionAgainstLocalGitHubAPIServer(t *testing.T) {
	f := newFakeGitHub(t, "")
	long := strings.Repeat("é", 100) + strings.Repeat("x", 100) // 200 runes, 300 bytes
	err := Forge{}.SetStatus(context.Background(), testConn(f), forge.Status{
		Commit: testSHA, State: forge.Failure, Description: long,
	})
	if err != nil {
		t.Fatalf("SetStatus: %v (the local server refuses descriptions over 140 characters)", err)
	}
	got := bodyMap(t, f.only(t))
	desc, _ := got["description"].(string)
	if n := len([]rune(desc)); n == 0 || n > 140 {
		t.Fatalf("description arrived with %d characters, want 1..140", n)
	}
	if desc != forge.Describe(long) {
		t.Fatalf("description %q, want forge.Describe's %q", desc, forge.Describe(long))
	}
	if got["context"] != "slipway" {
		t.Fatalf("context %v, want the default \"slipway\"", got["context"])
	}
	if _, ok := got["target_url"]; ok {
		t.Fatalf("target_url sent for an empty Status.URL: %v", got)
	}
}

func TestSetStatusRejectsBadInputWithoutCallingLocalGitHubAPIServer(t *testing.T) {
	f := newFakeGitHub(t, "")
	c := testConn(f)
	for name, tc := range map[string]struct {
		c forge.Conn
		s forge.Status
	}{
		"unknown state": {c, forge.Status{Commit: testSHA, State: "weird"}},
		"no commit":     {c, forge.Status{State: forge.Success}},
		"bad full name": {forge.Conn{APIURL: c.APIURL, FullName: "acme", Token: testToken}, forge.Status{Commit: testSHA, State: forge.Success}},
		"dotdot name":   {forge.Conn{APIURL: c.APIURL, FullName: "acme/..", Token: testToken}, forge.Status{Commit: testSHA, State: forge.Success}},
		"bad API URL":   {forge.Conn{APIURL: "ftp://x", FullName: "acme/app", Token: testToken}, forge.Status{Commit: testSHA, State: forge.Success}},
	} {
		if err := (Forge{}).SetStatus(context.Background(), tc.c, tc.s); err == nil {
			t.Errorf("%s: SetStatus succeeded", name)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("the local server received %d requests for invalid input", n)
	}
}

func TestSetStatusUnauthorizedAgainstLocalGitHubAPIServer(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		f := newFakeGitHub(t, "")
		// A hostile or buggy server echoing the token must not get it into
		// the error text either.
		f.setFail(&cannedAnswer{status: status, body: `{"message":"Bad credentials: ` + testToken + `","documentation_url":"https://docs.github.com/rest"}`})
		err := Forge{}.SetStatus(context.Background(), testConn(f), forge.Status{Commit: testSHA, State: forge.Success})
		if err == nil {
			t.Fatalf("%d: SetStatus succeeded", status)
		}
		if !errors.Is(err, forge.ErrUnauthorized) {
			t.Fatalf("%d: error %v does not wrap forge.ErrUnauthorized", status, err)
		}
		msg := err.Error()
		if strings.Contains(msg, testToken) {
			t.Fatalf("%d: the token is in the error: %s", status, msg)
		}
		if !strings.Contains(msg, "POST /repos/acme/app/statuses/"+testSHA) || !strings.Contains(msg, http.StatusText(status)) {
			t.Fatalf("%d: error %q does not name the endpoint and status", status, msg)
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != status {
			t.Fatalf("%d: error %v is not an *APIError with that status", status, err)
		}
	}
}

func TestTokenNeverSentWhenWrongOrMissingAgainstLocalGitHubAPIServer(t *testing.T) {
	f := newFakeGitHub(t, "")
	f.allowToken(testToken)
	// The server answers 401 "Bad credentials" for an unknown token.
	err := Forge{}.SetStatus(context.Background(), forge.Conn{APIURL: f.apiURL(), FullName: "acme/app", Token: "ghp_wrong"},
		forge.Status{Commit: testSHA, State: forge.Success})
	if !errors.Is(err, forge.ErrUnauthorized) || strings.Contains(err.Error(), "ghp_wrong") {
		t.Fatalf("wrong token: error %v", err)
	}
	// No token: no Authorization header at all.
	_, err = Forge{}.Repo(context.Background(), forge.Conn{APIURL: f.apiURL(), FullName: "acme/app"})
	if !errors.Is(err, forge.ErrUnauthorized) {
		t.Fatalf("no token: error %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[1].Header.Get("Authorization") != "" {
		t.Fatalf("requests %+v: want the second without Authorization", reqs)
	}
}

func TestOtherErrorsNameEndpointAndStatusAgainstLocalGitHubAPIServer(t *testing.T) {
	cases := []struct {
		name         string
		answer       cannedAnswer
		status       int
		wantInText   string
		unauthorized bool
		rateLimited  bool
	}{
		{"not found", cannedAnswer{status: 404, body: `{"message":"Not Found"}`}, 404, "Not Found", false, false},
		{"validation", cannedAnswer{status: 422, body: `{"message":"Validation Failed","errors":[{"resource":"Status","code":"custom","message":"This SHA and context has reached the maximum number of statuses."}]}`},
			422, "maximum number of statuses", false, false},
		{"server error, not JSON", cannedAnswer{status: 502, body: `<html>bad gateway</html>`}, 502, "502", false, false},
		{"primary rate limit", cannedAnswer{status: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},
			body: `{"message":"API rate limit exceeded"}`}, 403, "rate limit", false, true},
		{"secondary rate limit", cannedAnswer{status: 403,
			body: `{"message":"You have exceeded a secondary rate limit","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits"}`}, 403, "secondary rate limit", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeGitHub(t, "")
			f.setFail(&tc.answer)
			_, err := Forge{}.Repo(context.Background(), testConn(f))
			if err == nil {
				t.Fatal("Repo succeeded")
			}
			if errors.Is(err, forge.ErrUnauthorized) != tc.unauthorized {
				t.Fatalf("errors.Is(ErrUnauthorized) = %v for %v", !tc.unauthorized, err)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || ae.RateLimited != tc.rateLimited {
				t.Fatalf("error %#v, want *APIError status %d rate limited %v", err, tc.status, tc.rateLimited)
			}
			if msg := err.Error(); !strings.Contains(msg, "GET /repos/acme/app") || !strings.Contains(msg, tc.wantInText) || strings.Contains(msg, testToken) {
				t.Fatalf("error text %q", msg)
			}
		})
	}
}

func TestRepoAgainstLocalGitHubAPIServer(t *testing.T) {
	f := newFakeGitHub(t, "")
	got, err := Forge{}.Repo(context.Background(), testConn(f))
	if err != nil {
		t.Fatalf("Repo: %v", err)
	}
	want := forge.Repo{FullName: "acme/app", DefaultBranch: "trunk", CloneURL: "https://github.com/acme/app.git", Private: true}
	if got != want {
		t.Fatalf("Repo = %+v, want %+v", got, want)
	}
	r := f.only(t)
	if r.Method != http.MethodGet || r.Path != "/repos/acme/app" || r.Header.Get("Authorization") != "Bearer "+testToken {
		t.Fatalf("request %s %s auth %q", r.Method, r.Path, r.Header.Get("Authorization"))
	}
}

func TestCreateHookAgainstLocalGitHubAPIServer(t *testing.T) {
	f := newFakeGitHub(t, "")
	hook, err := Forge{}.CreateHook(context.Background(), testConn(f), "https://slipway.example.com/hooks/github", "s3cret")
	if err != nil {
		t.Fatalf("CreateHook: %v", err)
	}
	if hook.ID != "12345678901" || hook.URL != "https://slipway.example.com/hooks/github" {
		t.Fatalf("hook %+v", hook)
	}
	r := f.only(t)
	if r.Method != http.MethodPost || r.Path != "/repos/acme/app/hooks" || r.Header.Get("Authorization") != "Bearer "+testToken {
		t.Fatalf("request %s %s auth %q", r.Method, r.Path, r.Header.Get("Authorization"))
	}
	want := map[string]any{
		"name":   "web",
		"active": true,
		"events": []any{"push"},
		"config": map[string]any{
			"url":          "https://slipway.example.com/hooks/github",
			"content_type": "json",
			"secret":       "s3cret",
			"insecure_ssl": "0",
		},
	}
	if got := bodyMap(t, r); !reflect.DeepEqual(got, want) {
		t.Fatalf("body %v, want %v", got, want)
	}
}

func TestCreateHookRejectsEmptySecretWithoutCallingLocalGitHubAPIServer(t *testing.T) {
	f := newFakeGitHub(t, "")
	if _, err := (Forge{}).CreateHook(context.Background(), testConn(f), "https://x.example/hooks/github", ""); err == nil {
		t.Fatal("CreateHook with an empty secret succeeded")
	}
	if _, err := (Forge{}).CreateHook(context.Background(), testConn(f), "", "s"); err == nil {
		t.Fatal("CreateHook with an empty URL succeeded")
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func TestDeleteHookAgainstLocalGitHubAPIServer(t *testing.T) {
	f := newFakeGitHub(t, "")
	if err := (Forge{}).DeleteHook(context.Background(), testConn(f), "12345678901"); err != nil {
		t.Fatalf("DeleteHook: %v", err)
	}
	r := f.only(t)
	if r.Method != http.MethodDelete || r.Path != "/repos/acme/app/hooks/12345678901" || r.Header.Get("Authorization") != "Bearer "+testToken {
		t.Fatalf("request %s %s auth %q", r.Method, r.Path, r.Header.Get("Authorization"))
	}
	if len(r.Body) != 0 {
		t.Fatalf("DELETE carried a body: %q", r.Body)
	}

	// A hook that is gone: 404, named, not unauthorized.
	err := Forge{}.DeleteHook(context.Background(), testConn(f), "7")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 404 || errors.Is(err, forge.ErrUnauthorized) ||
		!strings.Contains(err.Error(), "DELETE /repos/acme/app/hooks/7") {
		t.Fatalf("deleting a missing hook: %v", err)
	}

	for _, bad := range []string{"", "abc", "-1", "0", "1/../2"} {
		if err := (Forge{}).DeleteHook(context.Background(), testConn(f), bad); err == nil {
			t.Fatalf("DeleteHook(%q) succeeded", bad)
		}
	}
	if n := len(f.requests()); n != 2 {
		t.Fatalf("%d requests, want 2 (bad ids must not be sent)", n)
	}
}

func TestEnterpriseAPIURLWithoutTrailingSlashAgainstLocalGitHubAPIServer(t *testing.T) {
	f := newFakeGitHub(t, "/api/v3")
	c := testConn(f)
	if strings.HasSuffix(c.APIURL, "/") {
		t.Fatalf("test setup: %q should lack the trailing slash", c.APIURL)
	}
	if _, err := (Forge{}).Repo(context.Background(), c); err != nil {
		t.Fatalf("Repo: %v", err)
	}
	c.APIURL += "/"
	if err := (Forge{}).DeleteHook(context.Background(), c, "12345678901"); err != nil {
		t.Fatalf("DeleteHook: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].Path != "/api/v3/repos/acme/app" || reqs[1].Path != "/api/v3/repos/acme/app/hooks/12345678901" {
		t.Fatalf("requests %+v", reqs)
	}
	for _, r := range reqs {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			t.Fatalf("token not sent to the enterprise host: %+v", r)
		}
	}
}

// roundTripFunc lets a test answer requests without any network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestEmptyAPIURLTargetsPublicGitHubThroughRecordingTransport(t *testing.T) {
	// No request leaves the machine: the transport records and answers.
	var got *http.Request
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		return &http.Response{
			StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body:    io.NopCloser(strings.NewReader(`{"full_name":"acme/app","default_branch":"main","clone_url":"https://github.com/acme/app.git","private":false}`)),
			Request: r,
		}, nil
	})}
	repo, err := Forge{}.Repo(context.Background(), forge.Conn{FullName: "acme/app", Token: testToken, HTTP: hc})
	if err != nil {
		t.Fatalf("Repo: %v", err)
	}
	if got == nil || got.URL.String() != "https://api.github.com/repos/acme/app" {
		t.Fatalf("request went to %v, want https://api.github.com/repos/acme/app", got.URL)
	}
	if got.Header.Get("Authorization") != "Bearer "+testToken {
		t.Fatalf("Authorization %q", got.Header.Get("Authorization"))
	}
	if repo.DefaultBranch != "main" || repo.Private {
		t.Fatalf("repo %+v", repo)
	}
}

func TestNilHTTPClientHasThirtySecondTimeout(t *testing.T) {
	if d := httpClient(nil).Timeout; d != 30*time.Second {
		t.Fatalf("default timeout %v", d)
	}
	c, err := newClient(forge.Conn{FullName: "acme/app"})
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Client().Timeout; d != 30*time.Second {
		t.Fatalf("go-github client timeout %v", d)
	}
	if c.BaseURL() != DefaultAPIURL {
		t.Fatalf("base URL %q", c.BaseURL())
	}
	own := &http.Client{Timeout: 5 * time.Second}
	if c, _ := newClient(forge.Conn{HTTP: own}); c.Client().Timeout != 5*time.Second {
		t.Fatalf("the Conn's client timeout was not used")
	}
}

func TestSharedHTTPClientSendsEachConnsOwnTokenAgainstLocalGitHubAPIServer(t *testing.T) {
	f := newFakeGitHub(t, "")
	f.allowToken("ghp_first")
	f.allowToken("ghp_second")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	shared := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, tok := range []string{"ghp_first", "ghp_second", "ghp_first"} {
		if _, err := (Forge{}).Repo(context.Background(), forge.Conn{APIURL: f.apiURL(), FullName: "acme/app", Token: tok, HTTP: shared}); err != nil {
			t.Fatalf("Repo with %s: %v", tok, err)
		}
	}
	if shared.Transport != tr {
		t.Fatal("the caller's http.Client was modified")
	}
	reqs := f.requests()
	for i, want := range []string{"ghp_first", "ghp_second", "ghp_first"} {
		if got := reqs[i].Header.Get("Authorization"); got != "Bearer "+want {
			t.Fatalf("request %d Authorization %q, want Bearer %s", i, got, want)
		}
	}
}

func TestContextDeadlineIsKeptInTransportErrorsAgainstLocalGitHubAPIServer(t *testing.T) {
	f := newFakeGitHub(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Forge{}.SetStatus(ctx, testConn(f), forge.Status{Commit: testSHA, State: forge.Running})
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), testToken) ||
		!strings.Contains(err.Error(), "POST /repos/acme/app/statuses/") {
		t.Fatalf("error %v", err)
	}
}
