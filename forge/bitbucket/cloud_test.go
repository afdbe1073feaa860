package bitbucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/slipway-build/slipway/forge"
)

const (
	cloudRepo = "/2.0/repositories/acme/demo"
	hookUUID  = "{0b6e7c7a-7a3e-4a43-9c55-6f1b7c0e3c21}"
)

// newLocalBitbucketCloud is a local stand-in for api.bitbucket.org/2.0.
func newLocalBitbucketCloud(t *testing.T) *recorder {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		p := r.URL.EscapedPath()
		switch {
		case r.Method == http.MethodPost && p == cloudRepo+"/commit/"+sha+"/statuses/build":
			key, _ := body["key"].(string)
			if n := utf8.RuneCountInString(key); n > 40 {
				reply(w, http.StatusBadRequest, map[string]any{"type": "error", "error": map[string]any{
					"message": fmt.Sprintf("key: Ensure this value has at most 40 characters (it has %d).", n),
					"fields":  map[string]any{"key": []string{"Ensure this value has at most 40 characters"}}}})
				return
			}
			switch body["state"] {
			case "INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED":
			default:
				reply(w, http.StatusBadRequest, map[string]any{"type": "error", "error": map[string]any{"message": "state: not a valid choice"}})
				return
			}
			reply(w, http.StatusCreated, map[string]any{"type": "build", "key": key, "state": body["state"], "name": body["name"],
				"url": body["url"], "description": body["description"], "uuid": "{9b1c1b0e-0000-4000-8000-000000000001}"})
		case r.Method == http.MethodGet && p == cloudRepo:
			reply(w, http.StatusOK, map[string]any{
				"type": "repository", "full_name": "acme/demo", "name": "demo", "slug": "demo", "is_private": true,
				"mainbranch": map[string]any{"type": "branch", "name": "main"},
				"links": map[string]any{
					"html": map[string]any{"href": "https://bitbucket.org/acme/demo"},
					"clone": []map[string]any{
						{"name": "https", "href": "https://jdoe@bitbucket.org/acme/demo.git"},
						{"name": "ssh", "href": "git@bitbucket.org:acme/demo.git"},
					},
				},
			})
		case r.Method == http.MethodPost && p == cloudRepo+"/hooks":
			reply(w, http.StatusCreated, map[string]any{"type": "webhook_subscription", "uuid": hookUUID, "url": body["url"],
				"description": body["description"], "subject_type": "repository", "active": body["active"],
				"events": body["events"], "secret_set": body["secret"] != ""})
		case r.Method == http.MethodDelete && p == cloudRepo+"/hooks/%7B0b6e7c7a-7a3e-4a43-9c55-6f1b7c0e3c21%7D":
			w.WriteHeader(http.StatusNoContent)
		default:
			reply(w, http.StatusNotFound, map[string]any{"type": "error", "error": map[string]any{"message": "Resource not found"}})
		}
	})
	rec.auth = []string{basicOf(appPassword), "Bearer " + bearer}
	rec.unauthorized = `{"type":"error","error":{"message":"Token is invalid, expired, or not supported for this endpoint."}}`
	return rec
}

func cloudConn(rec *recorder, token string) forge.Conn {
	return forge.Conn{APIURL: rec.srv.URL + "/2.0", FullName: "acme/demo", Token: token}
}

func TestSetStatusAgainstLocalBitbucketCloudAPIServer(t *testing.T) {
	longKey := "slipway/" + strings.Repeat("very-long-tag-name-", 3)
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
			map[string]any{"key": "slipway/v1", "state": "STOPPED", "name": "slipway/v1", "url": "https://ci.example.com/b/4", "description": "Cancelled"}},
		{"default key", forge.Status{Commit: sha, State: forge.Success, URL: "https://ci.example.com/b/5"},
			map[string]any{"key": "slipway", "state": "SUCCESSFUL", "name": "slipway", "url": "https://ci.example.com/b/5", "description": ""}},
		{"long key shortened, name kept", forge.Status{Commit: sha, State: forge.Success, Key: longKey, URL: "https://ci.example.com/b/6"},
			map[string]any{"key": shortKey(longKey, 40), "state": "SUCCESSFUL", "name": longKey, "url": "https://ci.example.com/b/6", "description": ""}},
		{"description truncated to 140", forge.Status{Commit: sha, State: forge.Failure, Key: "k", Description: strings.Repeat("x", 300), URL: "https://ci.example.com/b/7"},
			map[string]any{"key": "k", "state": "FAILED", "name": "k", "url": "https://ci.example.com/b/7", "description": strings.Repeat("x", 139) + "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newLocalBitbucketCloud(t)
			if err := (Cloud{}).SetStatus(context.Background(), cloudConn(rec, appPassword), tt.s); err != nil {
				t.Fatalf("SetStatus: %v", err)
			}
			reqs := rec.recorded()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.URI != cloudRepo+"/commit/"+sha+"/statuses/build" {
				t.Errorf("request = %s %s", r.Method, r.URI)
			}
			if got := r.Header.Get("Authorization"); got != basicOf(appPassword) {
				t.Errorf("Authorization = %q", got)
			}
			if !reflect.DeepEqual(r.Body, tt.want) {
				t.Errorf("body = %v\nwant   %v", r.Body, tt.want)
			}
		})
	}
}

func TestCloudAuthAgainstLocalBitbucketCloudAPIServer(t *testing.T) {
	for token, want := range map[string]string{
		appPassword:                          basicOf(appPassword),
		"jdoe@example.com:ATATT3xFfGF0token": basicOf("jdoe@example.com:ATATT3xFfGF0token"),
		bearer:                               "Bearer " + bearer,
	} {
		rec := newLocalBitbucketCloud(t)
		_ = Cloud{}.SetStatus(context.Background(), cloudConn(rec, token), forge.Status{Commit: sha, State: forge.Pending, URL: "https://ci.example.com/b/1"})
		if got := rec.last().Header.Get("Authorization"); got != want {
			t.Errorf("token %q: Authorization = %q, want %q", token, got, want)
		}
	}
}

func TestBuildStatusesArriveInOrderAtLocalBitbucketCloudAPIServer(t *testing.T) {
	rec := newLocalBitbucketCloud(t)
	for _, st := range []forge.State{forge.Pending, forge.Running, forge.Success} {
		if err := (Cloud{}).SetStatus(context.Background(), cloudConn(rec, bearer), forge.Status{Commit: sha, State: st, Key: "slipway/latest", Description: string(st), URL: "https://ci.example.com/b/1"}); err != nil {
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

func TestUnauthorizedFromLocalBitbucketCloudAPIServer(t *testing.T) {
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		rec := newLocalBitbucketCloud(t)
		rec.fail(code, `{"type":"error","error":{"message":"Your credentials `+appPassword+` lack one or more required privilege scopes."}}`)
		f := Cloud{}
		c := cloudConn(rec, appPassword)
		errs := map[string]error{
			"SetStatus":  f.SetStatus(context.Background(), c, forge.Status{Commit: sha, State: forge.Pending, URL: "https://ci.example.com/b/1"}),
			"DeleteHook": f.DeleteHook(context.Background(), c, hookUUID),
		}
		_, errs["Repo"] = f.Repo(context.Background(), c)
		_, errs["CreateHook"] = f.CreateHook(context.Background(), c, "https://ci.example.com/hooks/bitbucket", "hook-secret")
		for name, err := range errs {
			if !errors.Is(err, forge.ErrUnauthorized) {
				t.Errorf("%d %s: err = %v", code, name, err)
				continue
			}
			for _, secret := range []string{appPassword, "ATBBsecretAppPassword42", "hook-secret", strings.TrimPrefix(basicOf(appPassword), "Basic ")} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%d %s: the error shows %q: %v", code, name, secret, err)
				}
			}
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), fmt.Sprint(code)) || !strings.Contains(err.Error(), "privilege scopes") {
				t.Errorf("%d %s: err = %v", code, name, err)
			}
		}
	}
	rec := newLocalBitbucketCloud(t)
	_, err := Cloud{}.Repo(context.Background(), cloudConn(rec, "not-a-valid-token"))
	if !errors.Is(err, forge.ErrUnauthorized) || strings.Contains(err.Error(), "not-a-valid-token") || !strings.Contains(err.Error(), "Token is invalid") {
		t.Errorf("err = %v", err)
	}
}

func TestServerErrorFromLocalBitbucketCloudAPIServer(t *testing.T) {
	rec := newLocalBitbucketCloud(t)
	rec.fail(http.StatusInternalServerError, `{"type":"error","error":{"message":"Something went wrong","id":"a1b2"}}`)
	err := Cloud{}.SetStatus(context.Background(), cloudConn(rec, bearer), forge.Status{Commit: sha, State: forge.Success, URL: "https://ci.example.com/b/1"})
	want := "bitbucket: SetStatus: POST /repositories/acme/demo/commit/" + sha + "/statuses/build: HTTP 500 Internal Server Error: Something went wrong"
	if err == nil || err.Error() != want || errors.Is(err, forge.ErrUnauthorized) {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
}

func TestRepoFromLocalBitbucketCloudAPIServer(t *testing.T) {
	rec := newLocalBitbucketCloud(t)
	got, err := Cloud{}.Repo(context.Background(), cloudConn(rec, bearer))
	if err != nil {
		t.Fatal(err)
	}
	want := forge.Repo{FullName: "acme/demo", DefaultBranch: "main", CloneURL: "https://bitbucket.org/acme/demo.git", Private: true}
	if got != want {
		t.Errorf("Repo = %+v, want %+v", got, want)
	}
	if r := rec.last(); r.Method != http.MethodGet || r.URI != cloudRepo || r.Header.Get("Authorization") != "Bearer "+bearer {
		t.Errorf("request = %s %s", r.Method, r.URI)
	}
}

func TestCreateHookAtLocalBitbucketCloudAPIServer(t *testing.T) {
	rec := newLocalBitbucketCloud(t)
	h, err := Cloud{}.CreateHook(context.Background(), cloudConn(rec, appPassword), "https://ci.example.com/hooks/bitbucket", "hook-secret")
	if err != nil {
		t.Fatal(err)
	}
	if h != (forge.Hook{ID: hookUUID, URL: "https://ci.example.com/hooks/bitbucket"}) {
		t.Errorf("hook = %+v", h)
	}
	r := rec.last()
	if r.Method != http.MethodPost || r.URI != cloudRepo+"/hooks" {
		t.Errorf("request = %s %s", r.Method, r.URI)
	}
	want := map[string]any{"description": "Slipway", "url": "https://ci.example.com/hooks/bitbucket", "active": true,
		"secret": "hook-secret", "events": []any{"repo:push"}}
	if !reflect.DeepEqual(r.Body, want) {
		t.Errorf("body = %v\nwant   %v", r.Body, want)
	}
}

func TestDeleteHookAtLocalBitbucketCloudAPIServer(t *testing.T) {
	rec := newLocalBitbucketCloud(t)
	if err := (Cloud{}).DeleteHook(context.Background(), cloudConn(rec, appPassword), hookUUID); err != nil {
		t.Fatal(err)
	}
	if r := rec.last(); r.Method != http.MethodDelete || r.URI != cloudRepo+"/hooks/%7B0b6e7c7a-7a3e-4a43-9c55-6f1b7c0e3c21%7D" {
		t.Errorf("request = %s %s", r.Method, r.URI)
	}
	err := Cloud{}.DeleteHook(context.Background(), cloudConn(rec, appPassword), "{00000000-0000-0000-0000-000000000000}")
	if err == nil || !strings.Contains(err.Error(), "DELETE /repositories/acme/demo/hooks/%7B00000000-0000-0000-0000-000000000000%7D: HTTP 404 Not Found: Resource not found") {
		t.Errorf("err = %v", err)
	}
}

// The public host is only named, never reached: a transport stands in.
func TestEmptyAPIURLMeansBitbucketOrgWithoutNetwork(t *testing.T) {
	var got string
	hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		got = r.URL.String()
		return &http.Response{StatusCode: http.StatusCreated, Body: io.NopCloser(strings.NewReader(`{}`)), Header: http.Header{}}, nil
	})}
	err := Cloud{}.SetStatus(context.Background(), forge.Conn{FullName: "acme/demo", Token: bearer, HTTP: hc}, forge.Status{Commit: sha, State: forge.Pending, URL: "https://ci.example.com/b/1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://api.bitbucket.org/2.0/repositories/acme/demo/commit/" + sha + "/statuses/build"; got != want {
		t.Errorf("URL = %s, want %s", got, want)
	}
}

func TestBadInputNeverReachesLocalBitbucketCloudAPIServer(t *testing.T) {
	rec := newLocalBitbucketCloud(t)
	f := Cloud{}
	for name, err := range map[string]error{
		"unknown state": f.SetStatus(context.Background(), cloudConn(rec, bearer), forge.Status{Commit: sha, State: "paused"}),
		"no commit":     f.SetStatus(context.Background(), cloudConn(rec, bearer), forge.Status{State: forge.Pending}),
		"no workspace":  f.DeleteHook(context.Background(), forge.Conn{APIURL: rec.srv.URL, FullName: "demo", Token: bearer}, hookUUID),
		"empty hook id": f.DeleteHook(context.Background(), cloudConn(rec, bearer), ""),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if n := len(rec.recorded()); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}
