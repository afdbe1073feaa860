package bitbucket

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/forge"
)

const (
	dcToken = "BBDC-NjQ0OTk2MzQ1ODk2OgtokenValue"
	dcBasic = "admin:s3cretPassw0rd"
	// The server runs under the context path /bitbucket.
	dcRepo = "/bitbucket/rest/api/latest/projects/PRJ/repos/demo"
)

type dcOptions struct {
	repoDefaultBranch string // sent in the repository's defaultBranch
	noDefaultBranch   bool   // …/default-branch is missing (older servers)
	publicProject     bool
}

// newLocalBitbucketDC is a local stand-in for a Bitbucket Data Center
// server's REST API.
func newLocalBitbucketDC(t *testing.T, o dcOptions) *recorder {
	notFound := func(w http.ResponseWriter, msg string) {
		reply(w, http.StatusNotFound, map[string]any{"errors": []map[string]any{{"context": nil, "message": msg,
			"exceptionName": "com.atlassian.bitbucket.NoSuchEntityException"}}})
	}
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		p := r.URL.EscapedPath()
		switch {
		case r.Method == http.MethodPost && p == dcRepo+"/commits/"+sha+"/builds":
			switch body["state"] {
			case "INPROGRESS", "SUCCESSFUL", "FAILED", "CANCELLED", "UNKNOWN":
			default:
				reply(w, http.StatusBadRequest, map[string]any{"errors": []map[string]any{{"message": "state is invalid"}}})
				return
			}
			if body["key"] == "" || body["url"] == "" {
				reply(w, http.StatusBadRequest, map[string]any{"errors": []map[string]any{{"message": "key and url are required"}}})
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodGet && p == dcRepo:
			repo := map[string]any{
				"slug": "demo", "id": 11, "name": "Demo", "scmId": "git", "state": "AVAILABLE", "forkable": true, "public": false,
				"project": map[string]any{"key": "PRJ", "id": 1, "name": "Project", "public": o.publicProject, "type": "NORMAL"},
				"links": map[string]any{
					"clone": []map[string]any{
						{"href": "ssh://git@bitbucket.example.com:7999/prj/demo.git", "name": "ssh"},
						{"href": "https://admin@bitbucket.example.com/bitbucket/scm/prj/demo.git", "name": "http"},
					},
					"self": []map[string]any{{"href": "https://bitbucket.example.com/bitbucket/projects/PRJ/repos/demo/browse"}},
				},
			}
			if o.repoDefaultBranch != "" {
				repo["defaultBranch"] = o.repoDefaultBranch
			}
			reply(w, http.StatusOK, repo)
		case r.Method == http.MethodGet && p == dcRepo+"/default-branch" && !o.noDefaultBranch:
			reply(w, http.StatusOK, map[string]any{"id": "refs/heads/develop", "displayId": "develop", "type": "BRANCH"})
		case r.Method == http.MethodGet && p == dcRepo+"/branches/default":
			reply(w, http.StatusOK, map[string]any{"id": "refs/heads/master", "displayId": "master", "type": "BRANCH",
				"latestCommit": sha, "isDefault": true})
		case r.Method == http.MethodPost && p == dcRepo+"/webhooks":
			reply(w, http.StatusCreated, map[string]any{"id": 10, "name": body["name"], "url": body["url"],
				"events": body["events"], "active": body["active"], "configuration": body["configuration"],
				"scopeType": "repository", "sslVerificationRequired": true})
		case r.Method == http.MethodDelete && p == dcRepo+"/webhooks/10":
			w.WriteHeader(http.StatusNoContent)
		default:
			notFound(w, "No such resource: "+p)
		}
	})
	rec.auth = []string{"Bearer " + dcToken, basicOf(dcBasic)}
	rec.unauthorized = `{"errors":[{"context":null,"message":"Authentication failed. Please check your credentials and try again.","exceptionName":"com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]}`
	return rec
}

func dcConn(rec *recorder, token string) forge.Conn {
	return forge.Conn{APIURL: rec.srv.URL + "/bitbucket/", FullName: "PRJ/demo", Token: token}
}

func TestSetStatusAgainstLocalBitbucketDataCenterAPIServer(t *testing.T) {
	longKey := strings.Repeat("slipway/", 40)
	tests := []struct {
		name string
		s    forge.Status
		want map[string]any
	}{
		{"pending", forge.Status{Commit: sha, State: forge.Pending, Key: "slipway/latest", Description: "Queued", URL: "https://ci.example.com/b/1"},
			map[string]any{"key": "slipway/latest", "state": "INPROGRESS", "name": "slipway/latest", "url": "https://ci.example.com/b/1", "description": "Queued"}},
		{"running", forge.Status{Commit: sha, State: forge.Running, Key: "slipway/latest", Description: "Building", URL: "https://ci.example.com/b/1"},
			map[string]any{"key": "slipway/latest", "state": "INPROGRESS", "name": "slipway/latest", "url": "https://ci.example.com/b/1", "description": "Building"}},
		{"success", forge.Status{Commit: sha, State: forge.Success, Key: "slipway/latest", Description: "Pushed", URL: "https://ci.example.com/b/1"},
			map[string]any{"key": "slipway/latest", "state": "SUCCESSFUL", "name": "slipway/latest", "url": "https://ci.example.com/b/1", "description": "Pushed"}},
		{"failure", forge.Status{Commit: sha, State: forge.Failure, Key: "slipway/v1", Description: "Failed", URL: "https://ci.example.com/b/2"},
			map[string]any{"key": "slipway/v1", "state": "FAILED", "name": "slipway/v1", "url": "https://ci.example.com/b/2", "description": "Failed"}},
		{"error", forge.Status{Commit: sha, State: forge.Error, Key: "slipway/v1", Description: "Gave up", URL: "https://ci.example.com/b/3"},
			map[string]any{"key": "slipway/v1", "state": "FAILED", "name": "slipway/v1", "url": "https://ci.example.com/b/3", "description": "Gave up"}},
		{"cancelled", forge.Status{Commit: sha, State: forge.Cancelled, Key: "slipway/v1", Description: "Cancelled", URL: "https://ci.example.com/b/4"},
			map[string]any{"key": "slipway/v1", "state": "CANCELLED", "name": "slipway/v1", "url": "https://ci.example.com/b/4", "description": "Cancelled"}},
		{"default key", forge.Status{Commit: sha, State: forge.Pending, URL: "https://ci.example.com/b/5"},
			map[string]any{"key": "slipway", "state": "INPROGRESS", "name": "slipway", "url": "https://ci.example.com/b/5", "description": ""}},
		{"key over 255 shortened", forge.Status{Commit: sha, State: forge.Pending, Key: longKey, URL: "https://ci.example.com/b/6"},
			map[string]any{"key": shortKey(longKey, 255), "state": "INPROGRESS", "name": longKey[:255], "url": "https://ci.example.com/b/6", "description": ""}},
		{"description truncated to 140", forge.Status{Commit: sha, State: forge.Success, Key: "k", Description: strings.Repeat("y", 141), URL: "https://ci.example.com/b/7"},
			map[string]any{"key": "k", "state": "SUCCESSFUL", "name": "k", "url": "https://ci.example.com/b/7", "description": strings.Repeat("y", 139) + "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newLocalBitbucketDC(t, dcOptions{})
			if err := (Server{}).SetStatus(context.Background(), dcConn(rec, dcToken), tt.s); err != nil {
				t.Fatalf("SetStatus: %v", err)
			}
			reqs := rec.recorded()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.URI != dcRepo+"/commits/"+sha+"/builds" {
				t.Errorf("request = %s %s", r.Method, r.URI)
			}
			if got := r.Header.Get("Authorization"); got != "Bearer "+dcToken {
				t.Errorf("Authorization = %q", got)
			}
			if !reflect.DeepEqual(r.Body, tt.want) {
				t.Errorf("body = %v\nwant   %v", r.Body, tt.want)
			}
		})
	}
}

func TestDataCenterBasicAuthAndPersonalRepoAtLocalBitbucketDataCenterAPIServer(t *testing.T) {
	rec := newLocalBitbucketDC(t, dcOptions{})
	_ = Server{}.SetStatus(context.Background(), dcConn(rec, dcBasic), forge.Status{Commit: sha, State: forge.Pending, URL: "https://ci.example.com/b/1"})
	if got := rec.last().Header.Get("Authorization"); got != basicOf(dcBasic) {
		t.Errorf("Authorization = %q", got)
	}
	// Personal repositories live under ~USER; an APIURL naming the REST
	// root is accepted too.
	c := forge.Conn{APIURL: rec.srv.URL + "/bitbucket/rest/api/1.0", FullName: "~jdoe/dotfiles", Token: dcToken}
	_ = Server{}.DeleteHook(context.Background(), c, "10")
	if r := rec.last(); r.URI != "/bitbucket/rest/api/latest/projects/~jdoe/repos/dotfiles/webhooks/10" {
		t.Errorf("request = %s %s", r.Method, r.URI)
	}
}

func TestBuildStatusesArriveInOrderAtLocalBitbucketDataCenterAPIServer(t *testing.T) {
	rec := newLocalBitbucketDC(t, dcOptions{})
	for _, st := range []forge.State{forge.Pending, forge.Running, forge.Success} {
		if err := (Server{}).SetStatus(context.Background(), dcConn(rec, dcToken), forge.Status{Commit: sha, State: st, Key: "slipway/latest", Description: string(st), URL: "https://ci.example.com/b/1"}); err != nil {
			t.Fatalf("SetStatus(%s): %v", st, err)
		}
	}
	var got []string
	for _, r := range rec.recorded() {
		got = append(got, r.Body["state"].(string)+"/"+r.Body["description"].(string))
	}
	if want := []string{"INPROGRESS/pending", "INPROGRESS/running", "SUCCESSFUL/success"}; !reflect.DeepEqual(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

func TestUnauthorizedFromLocalBitbucketDataCenterAPIServer(t *testing.T) {
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		rec := newLocalBitbucketDC(t, dcOptions{})
		rec.fail(code, `{"errors":[{"context":null,"message":"You are not permitted to access this resource (token `+dcToken+`)","exceptionName":"com.atlassian.bitbucket.AuthorisationException"}]}`)
		f := Server{}
		c := dcConn(rec, dcToken)
		errs := map[string]error{
			"SetStatus":  f.SetStatus(context.Background(), c, forge.Status{Commit: sha, State: forge.Pending, URL: "https://ci.example.com/b/1"}),
			"DeleteHook": f.DeleteHook(context.Background(), c, "10"),
		}
		_, errs["Repo"] = f.Repo(context.Background(), c)
		_, errs["CreateHook"] = f.CreateHook(context.Background(), c, "https://ci.example.com/hooks/bitbucket-server", "hook-secret")
		for name, err := range errs {
			if !errors.Is(err, forge.ErrUnauthorized) {
				t.Errorf("%d %s: err = %v", code, name, err)
				continue
			}
			if strings.Contains(err.Error(), dcToken) || strings.Contains(err.Error(), "hook-secret") {
				t.Errorf("%d %s: the error shows a credential: %v", code, name, err)
			}
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), fmt.Sprint(code)) || !strings.Contains(err.Error(), "not permitted") {
				t.Errorf("%d %s: err = %v", code, name, err)
			}
		}
	}
	rec := newLocalBitbucketDC(t, dcOptions{})
	err := Server{}.SetStatus(context.Background(), dcConn(rec, "admin:wrong-password"), forge.Status{Commit: sha, State: forge.Pending, URL: "u"})
	if !errors.Is(err, forge.ErrUnauthorized) || strings.Contains(err.Error(), "wrong-password") || !strings.Contains(err.Error(), "Authentication failed") {
		t.Errorf("err = %v", err)
	}
}

func TestServerErrorFromLocalBitbucketDataCenterAPIServer(t *testing.T) {
	rec := newLocalBitbucketDC(t, dcOptions{})
	rec.fail(http.StatusInternalServerError, `{"errors":[{"context":null,"message":"An unexpected error occurred","exceptionName":"java.lang.IllegalStateException"}]}`)
	err := Server{}.SetStatus(context.Background(), dcConn(rec, dcToken), forge.Status{Commit: sha, State: forge.Success, URL: "https://ci.example.com/b/1"})
	want := "bitbucket-server: SetStatus: POST /rest/api/latest/projects/PRJ/repos/demo/commits/" + sha + "/builds: HTTP 500 Internal Server Error: An unexpected error occurred"
	if err == nil || err.Error() != want || errors.Is(err, forge.ErrUnauthorized) {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
}

func TestRepoFromLocalBitbucketDataCenterAPIServer(t *testing.T) {
	tests := []struct {
		name    string
		o       dcOptions
		want    forge.Repo
		wantReq []string
	}{
		{"default-branch endpoint", dcOptions{},
			forge.Repo{FullName: "PRJ/demo", DefaultBranch: "develop", CloneURL: "https://bitbucket.example.com/bitbucket/scm/prj/demo.git", Private: true},
			[]string{"GET " + dcRepo, "GET " + dcRepo + "/default-branch"}},
		{"older server: branches/default", dcOptions{noDefaultBranch: true},
			forge.Repo{FullName: "PRJ/demo", DefaultBranch: "master", CloneURL: "https://bitbucket.example.com/bitbucket/scm/prj/demo.git", Private: true},
			[]string{"GET " + dcRepo, "GET " + dcRepo + "/default-branch", "GET " + dcRepo + "/branches/default"}},
		{"default branch in the repository, public project", dcOptions{repoDefaultBranch: "main", publicProject: true},
			forge.Repo{FullName: "PRJ/demo", DefaultBranch: "main", CloneURL: "https://bitbucket.example.com/bitbucket/scm/prj/demo.git", Private: false},
			[]string{"GET " + dcRepo}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newLocalBitbucketDC(t, tt.o)
			got, err := Server{}.Repo(context.Background(), dcConn(rec, dcToken))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Repo = %+v, want %+v", got, tt.want)
			}
			var reqs []string
			for _, r := range rec.recorded() {
				reqs = append(reqs, r.Method+" "+r.URI)
				if r.Header.Get("Authorization") != "Bearer "+dcToken {
					t.Errorf("%s: Authorization = %q", r.URI, r.Header.Get("Authorization"))
				}
			}
			if !reflect.DeepEqual(reqs, tt.wantReq) {
				t.Errorf("requests = %v, want %v", reqs, tt.wantReq)
			}
		})
	}
	rec := newLocalBitbucketDC(t, dcOptions{})
	_, err := Server{}.Repo(context.Background(), forge.Conn{APIURL: rec.srv.URL + "/bitbucket", FullName: "PRJ/nope", Token: dcToken})
	if err == nil || !strings.Contains(err.Error(), "GET /rest/api/latest/projects/PRJ/repos/nope: HTTP 404 Not Found: No such resource") {
		t.Errorf("missing repository: err = %v", err)
	}
}

func TestCreateHookAtLocalBitbucketDataCenterAPIServer(t *testing.T) {
	rec := newLocalBitbucketDC(t, dcOptions{})
	h, err := Server{}.CreateHook(context.Background(), dcConn(rec, dcToken), "https://ci.example.com/hooks/bitbucket-server", "hook-secret")
	if err != nil {
		t.Fatal(err)
	}
	if h != (forge.Hook{ID: "10", URL: "https://ci.example.com/hooks/bitbucket-server"}) {
		t.Errorf("hook = %+v", h)
	}
	r := rec.last()
	if r.Method != http.MethodPost || r.URI != dcRepo+"/webhooks" {
		t.Errorf("request = %s %s", r.Method, r.URI)
	}
	want := map[string]any{"name": "Slipway", "url": "https://ci.example.com/hooks/bitbucket-server", "active": true,
		"events": []any{"repo:refs_changed"}, "configuration": map[string]any{"secret": "hook-secret"}}
	if !reflect.DeepEqual(r.Body, want) {
		t.Errorf("body = %v\nwant   %v", r.Body, want)
	}
}

func TestDeleteHookAtLocalBitbucketDataCenterAPIServer(t *testing.T) {
	rec := newLocalBitbucketDC(t, dcOptions{})
	if err := (Server{}).DeleteHook(context.Background(), dcConn(rec, dcToken), "10"); err != nil {
		t.Fatal(err)
	}
	if r := rec.last(); r.Method != http.MethodDelete || r.URI != dcRepo+"/webhooks/10" {
		t.Errorf("request = %s %s", r.Method, r.URI)
	}
}

func TestDataCenterNeedsAPIURLAndProjectSlug(t *testing.T) {
	f := Server{}
	errs := map[string]error{
		"SetStatus":  f.SetStatus(context.Background(), forge.Conn{FullName: "PRJ/demo", Token: dcToken}, forge.Status{Commit: sha, State: forge.Pending}),
		"DeleteHook": f.DeleteHook(context.Background(), forge.Conn{FullName: "PRJ/demo", Token: dcToken}, "10"),
	}
	_, errs["Repo"] = f.Repo(context.Background(), forge.Conn{FullName: "PRJ/demo", Token: dcToken})
	_, errs["CreateHook"] = f.CreateHook(context.Background(), forge.Conn{FullName: "PRJ/demo", Token: dcToken}, "u", "s")
	for name, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "Conn.APIURL") || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	rec := newLocalBitbucketDC(t, dcOptions{})
	for name, err := range map[string]error{
		"no project":    f.DeleteHook(context.Background(), forge.Conn{APIURL: rec.srv.URL, FullName: "demo", Token: dcToken}, "10"),
		"unknown state": f.SetStatus(context.Background(), dcConn(rec, dcToken), forge.Status{Commit: sha, State: "done"}),
		"no commit":     f.SetStatus(context.Background(), dcConn(rec, dcToken), forge.Status{State: forge.Success}),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if n := len(rec.recorded()); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}
