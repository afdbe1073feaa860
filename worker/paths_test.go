package worker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/source"
)

// checkout commits files and symlinks (name → target) to a repository on a
// loopback git http-backend server and checks the commit out with
// source.Clone, as a build does.
func checkout(t *testing.T, files, links map[string]string) (string, string) {
	t.Helper()
	src := rig.StartGitServer(t).NewRepo(t, "paths")
	for name, content := range files {
		p := filepath.Join(src.Dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(src.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	rig.Git(t, src.Dir, "add", "-A")
	rig.Git(t, src.Dir, "commit", "-q", "-m", "paths")
	commit := src.Head()
	src.Push("main")
	dir := filepath.Join(t.TempDir(), "checkout")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := source.Clone(ctx, source.Checkout{URL: src.CloneURL, Ref: "refs/heads/main", Commit: commit, Dir: dir}); err != nil {
		t.Fatalf("clone: %v", err)
	}
	return dir, commit
}

// Rule paths are followed through committed symlinks and must end inside
// the checkout; what BuildKit gets is the real path.
func TestRequestPathsStayInsideTheCheckout(t *testing.T) {
	dir, commit := checkout(t, map[string]string{
		"Dockerfile":          "FROM busybox\n",
		"web/Dockerfile":      "FROM busybox\nARG SOURCE_COMMIT\n",
		"web/index.html":      "hello\n",
		"ignored/Dockerfile":  "FROM busybox\n",
		"ignored/placeholder": "x\n",
	}, map[string]string{
		"app":                   "../..",
		"abs":                   "/",
		"site":                  "web",
		"Dockerfile.passwd":     "/etc/passwd",
		"Dockerfile.up":         "../../../etc/passwd",
		"Dockerfile.site":       "site/Dockerfile",
		"ignored/.dockerignore": "/etc/passwd",
		"loop":                  "loop",
	})
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	build := func(context, dockerfile string) (string, string, string) {
		b := model.Build{Commit: commit, Image: "reg/acme/paths", Rule: model.Rule{Context: context, Dockerfile: dockerfile}}
		req, err := request(dir, b, time.Unix(0, 0))
		if err != nil {
			return "", "", err.Error()
		}
		return req.ContextDir, req.Dockerfile, ""
	}
	short := commit[:7]
	tests := []struct {
		context, dockerfile            string
		wantContext, wantDF, wantError string
	}{
		{".", "Dockerfile", real, filepath.Join(real, "Dockerfile"), ""},
		{"site", "Dockerfile.site", filepath.Join(real, "web"), filepath.Join(real, "web", "Dockerfile"), ""},
		{"app", "Dockerfile", "", "", `build context "app" resolves outside the repository`},
		{"abs", "Dockerfile", "", "", `build context "abs" resolves outside the repository`},
		{"app/etc", "Dockerfile", "", "", `build context "app/etc" resolves outside the repository`},
		{".", "Dockerfile.passwd", "", "", `dockerfile "Dockerfile.passwd" resolves outside the repository`},
		{".", "Dockerfile.up", "", "", `dockerfile "Dockerfile.up" resolves outside the repository`},
		{"ignored", "ignored/Dockerfile", "", "", `"ignored/.dockerignore" resolves outside the repository`},
		{"missing", "Dockerfile", "", "", `build context "missing" not found in commit ` + short},
		{".", "nope/Dockerfile", "", "", `dockerfile "nope/Dockerfile" not found in commit ` + short},
		{".", "Dockerfile/Dockerfile", "", "", `dockerfile "Dockerfile/Dockerfile" not found in commit ` + short},
		{"loop", "Dockerfile", "", "", `build context "loop" in commit ` + short + `: more than 40 symlinks`},
	}
	for _, tt := range tests {
		ctxDir, df, errText := build(tt.context, tt.dockerfile)
		if ctxDir != tt.wantContext || df != tt.wantDF || errText != tt.wantError {
			t.Errorf("context %q, dockerfile %q:\n got %q, %q, error %q\nwant %q, %q, error %q",
				tt.context, tt.dockerfile, ctxDir, df, errText, tt.wantContext, tt.wantDF, tt.wantError)
		}
	}
}
