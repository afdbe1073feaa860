package worker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/model"
)

func prBuild(fork bool) model.Build {
	return model.Build{ID: "b-pr", Ref: "refs/pull/7/head", Commit: "abc123", Image: "reg/acme/demo", Tags: []string{"pr-7"},
		Rule:        model.Rule{Dockerfile: "Dockerfile", Context: "."},
		PullRequest: &model.PullRequest{Number: 7, Head: "abc123", HeadRef: "feature", Base: "main", Fork: fork, FetchRef: "refs/merge-requests/7/head"}}
}

// A fork's build is built but never pushed, and exports no cache (an
// export is a push); an internal pull request's build pushes like any.
func TestRequestPullRequest(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nARG SOURCE_BRANCH\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		fork     bool
		push     bool
		cacheRef string
	}{
		{false, true, "reg/acme/demo:buildcache"},
		{true, false, ""},
	}
	for _, tt := range tests {
		req, err := request(dir, prBuild(tt.fork), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if req.Push != tt.push || req.CacheRef != tt.cacheRef {
			t.Errorf("fork %v: push %v cache %q, want %v %q", tt.fork, req.Push, req.CacheRef, tt.push, tt.cacheRef)
		}
		if got := req.BuildArgs["SOURCE_BRANCH"]; got != "feature" {
			t.Errorf("fork %v: SOURCE_BRANCH = %q, want the head branch feature", tt.fork, got)
		}
	}
}

// RegistryLogin is never asked for a fork's build: it gets no credentials
// whatever the login would have given.
func TestRegistryLoginNoneForFork(t *testing.T) {
	var asked []string
	w := &Worker{RegistryLogin: func(_ context.Context, b model.Build) (builder.Credentials, error) {
		asked = append(asked, b.ID)
		return func(string) (string, string) { return "slipway-build", "pass" }, nil
	}}
	creds, err := w.registryLogin(context.Background(), prBuild(true))
	if err != nil || creds != nil || len(asked) != 0 {
		t.Fatalf("fork: creds %v, err %v, asked %v; want none, nil, never asked", creds != nil, err, asked)
	}
	creds, err = w.registryLogin(context.Background(), prBuild(false))
	if err != nil || creds == nil || len(asked) != 1 {
		t.Fatalf("internal: creds %v, err %v, asked %v; want the login's", creds != nil, err, asked)
	}
	if u, p := creds("reg"); u != "slipway-build" || p != "pass" {
		t.Errorf("internal creds %q %q", u, p)
	}
}

// The clone falls back to the host's ref of the head, not the ref the
// build is recorded under.
func TestFetchRef(t *testing.T) {
	if got := fetchRef(prBuild(false)); got != "refs/merge-requests/7/head" {
		t.Errorf("pull request: %q", got)
	}
	if got := fetchRef(model.Build{Ref: "refs/heads/main"}); got != "refs/heads/main" {
		t.Errorf("push: %q", got)
	}
}
