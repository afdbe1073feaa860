package worker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
)

func TestSourceURL(t *testing.T) {
	tests := map[string]string{
		"https://github.com/acme/demo.git":                    "https://github.com/acme/demo",
		"https://x-access-token:secret@github.com/acme/d.git": "https://github.com/acme/d",
		"http://127.0.0.1:9000/demo.git":                      "http://127.0.0.1:9000/demo",
		"https://git.example/a/b@c.git":                       "https://git.example/a/b@c",
	}
	for in, want := range tests {
		if got := SourceURL(in); got != want {
			t.Errorf("SourceURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCacheRef(t *testing.T) {
	img := "reg/acme/demo"
	main := CacheRef(img, model.Rule{Dockerfile: "Dockerfile", Context: "."})
	if main != img+":buildcache" {
		t.Errorf("main cache ref %q", main)
	}
	other := CacheRef(img, model.Rule{Dockerfile: "web/Dockerfile", Context: "web"})
	arm := CacheRef(img, model.Rule{Dockerfile: "Dockerfile", Context: ".", Platforms: "linux/arm64"})
	if other == main || arm == main || other == arm {
		t.Errorf("rules building different things must not share a cache: %q %q %q", main, other, arm)
	}
	if again := CacheRef(img, model.Rule{Dockerfile: "web/Dockerfile", Context: "web"}); again != other {
		t.Errorf("cache ref not stable: %q vs %q", again, other)
	}
}

func TestBuildArgsOnlyDeclaredHubVariables(t *testing.T) {
	b := model.Build{Ref: "refs/tags/v1.2.3", Commit: "abc123", Message: "Release\n", Image: "reg/acme/demo",
		Tags: []string{"1.2.3", "latest"}, BuildArgs: map[string]string{"VERSION": "1.2.3", "DOCKER_TAG": "mine"}}
	got := buildArgs(b, map[string]bool{"SOURCE_BRANCH": true, "COMMIT_MSG": true, "IMAGE_NAME": true, "DOCKER_TAG": true})
	want := map[string]string{
		"SOURCE_BRANCH": "v1.2.3", "COMMIT_MSG": "Release", "IMAGE_NAME": "reg/acme/demo:1.2.3",
		"DOCKER_TAG": "mine", // the rule's own value wins
		"VERSION":    "1.2.3",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("buildArgs = %v, want %v", got, want)
	}
}

func TestDeclaredArgs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Dockerfile")
	df := "ARG BASE=busybox\nFROM $BASE\n  arg SOURCE_COMMIT\nARG\tDOCKER_TAG=x\nRUN echo ARG NOT_THIS\n# ARG COMMENTED\n"
	if err := os.WriteFile(path, []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := declaredArgs(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"BASE": true, "SOURCE_COMMIT": true, "DOCKER_TAG": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("declaredArgs = %v, want %v", got, want)
	}
	if _, err := declaredArgs(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing Dockerfile must be an error")
	}
}

func TestMetadataVersionSkipsLatest(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	m := metadata(model.Build{Commit: "c0ffee", CloneURL: "https://github.com/acme/demo.git", Tags: []string{"latest", "1.2.3"}}, now)
	want := map[string]string{
		"org.opencontainers.image.revision": "c0ffee",
		"org.opencontainers.image.source":   "https://github.com/acme/demo",
		"org.opencontainers.image.url":      "https://github.com/acme/demo",
		"org.opencontainers.image.created":  "2026-11-26T10:00:00Z",
		"org.opencontainers.image.version":  "1.2.3",
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("metadata = %v", m)
	}
	if m := metadata(model.Build{Tags: []string{"latest"}}, now); m["org.opencontainers.image.version"] != "" {
		t.Errorf("latest alone is no version: %v", m)
	}
}

func TestOutcomeApply(t *testing.T) {
	tests := []struct {
		name   string
		out    outcome
		status string
	}{
		{"success clears a late cancel request", outcome{digest: "sha256:1"}, model.StatusSucceeded},
		{"failure", outcome{err: os.ErrNotExist}, model.StatusFailed},
		{"gave up", outcome{err: os.ErrDeadlineExceeded, gaveUp: true}, model.StatusFailed},
		{"skip", outcome{skip: "all ignored"}, model.StatusSkipped},
		{"cancel", outcome{cancelled: true}, model.StatusCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := model.Build{Status: model.StatusRunning, Reason: "cancelled through the API", CancelRequested: true}
			tt.out.apply(&b)
			if b.Status != tt.status {
				t.Fatalf("status %s, want %s", b.Status, tt.status)
			}
			if tt.status == model.StatusSucceeded && (b.CancelRequested || b.Reason != "" || b.Digest != "sha256:1") {
				t.Errorf("succeeded build keeps stale cancel state: %+v", b)
			}
			if tt.status == model.StatusFailed && b.Error == "" {
				t.Errorf("failed build without error")
			}
			if b.GaveUp != tt.out.gaveUp {
				t.Errorf("GaveUp = %v, want %v", b.GaveUp, tt.out.gaveUp)
			}
		})
	}
}

// The log's last line of an attempt: one whose BuildKit died under it is
// handed back and retried, so its log says so rather than "build failed".
func TestEndLine(t *testing.T) {
	gone := infraError{errors.New("buildkit went away during the build: buildkit daemon gone: unix:///bk-1.sock: EOF")}
	b := model.Build{Image: "reg/acme/demo"}
	fork := model.Build{Image: "reg/acme/demo", PullRequest: &model.PullRequest{Fork: true}}
	for _, tc := range []struct {
		name    string
		stopped error
		b       model.Build
		out     outcome
		want    string
	}{
		{"daemon gone", nil, b, outcome{err: gone},
			"\n==> interrupted, the build will be retried: buildkit went away during the build: buildkit daemon gone: unix:///bk-1.sock: EOF\n"},
		{"daemon gone, wrapped", nil, b, outcome{err: fmt.Errorf("build: %w", gone)},
			"\n==> interrupted, the build will be retried: build: buildkit went away during the build: buildkit daemon gone: unix:///bk-1.sock: EOF\n"},
		{"Dockerfile error", nil, b, outcome{err: errors.New("build: exit code: 4")}, "\n==> build failed: build: exit code: 4\n"},
		{"cancelled", errCancelled, b, outcome{err: gone}, "\n==> stopped: build cancelled\n"},
		{"skipped", nil, b, outcome{skip: "no file matches the paths"}, "\n==> skipped: no file matches the paths\n"},
		{"fork", nil, fork, outcome{}, "\n==> built; not pushed: " + forkNote + "\n"},
		{"pushed", nil, b, outcome{digest: "sha256:1"}, "\n==> pushed reg/acme/demo@sha256:1\n"},
	} {
		if got := endLine(tc.stopped, tc.b, tc.out); got != tc.want {
			t.Errorf("%s: endLine = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	base := 5 * time.Second
	for _, tc := range []struct {
		attempts int
		want     time.Duration
	}{{0, base}, {1, base}, {2, 10 * time.Second}, {3, 20 * time.Second}, {5, 80 * time.Second}, {6, 2 * time.Minute}, {10, 2 * time.Minute}} {
		if got := backoff(base, tc.attempts); got != tc.want {
			t.Errorf("backoff after %d attempts = %s, want %s", tc.attempts, got, tc.want)
		}
	}
}

// A build records its repository's network setting; its request carries it
// to BuildKit.
func TestRequestNetwork(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for network, want := range map[string]bool{"": false, model.NetworkNone: true} {
		b := model.Build{Commit: "abc123", Image: "reg/acme/demo", Network: network,
			Rule: model.Rule{Dockerfile: "Dockerfile", Context: "."}}
		req, err := request(dir, b, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if req.NoNetwork != want {
			t.Errorf("network %q: NoNetwork = %v, want %v", network, req.NoNetwork, want)
		}
	}
}
