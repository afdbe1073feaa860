package source_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/source"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// closedURL is a git URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/app.git"
}

func TestCloneTipCommit(t *testing.T) {
	g := newGitServer(t, true)
	h := newHistory(t, g)
	dir := filepath.Join(t.TempDir(), "checkout")
	var progress bytes.Buffer

	err := source.Clone(testCtx(t), source.Checkout{
		URL: h.url, Ref: "refs/heads/main", Commit: h.c4, Dir: dir, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("Clone: %v\n%s", err, progress.String())
	}
	if got := readFile(t, filepath.Join(dir, "version.txt")); got != "4\n" {
		t.Fatalf("version.txt = %q, want 4", got)
	}
	if got := readFile(t, filepath.Join(dir, "sub/dir/four.txt")); got != "four\n" {
		t.Fatalf("sub/dir/four.txt = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "Dockerfile")); got != "FROM scratch\n" {
		t.Fatalf("Dockerfile = %q", got)
	}
	if head := runGit(t, dir, "rev-parse", "HEAD"); head != h.c4 {
		t.Fatalf("HEAD = %s, want %s", head, h.c4)
	}
	if st := runGit(t, dir, "status", "--porcelain"); st != "" {
		t.Fatalf("worktree not clean after clone:\n%s", st)
	}
	if !strings.Contains(progress.String(), "checked out "+h.c4) {
		t.Fatalf("progress log lacks the checkout line:\n%s", progress.String())
	}
}

func TestCloneOlderCommit(t *testing.T) {
	t.Run("by hash", func(t *testing.T) {
		g := newGitServer(t, true)
		h := newHistory(t, g)
		dir := filepath.Join(t.TempDir(), "checkout")
		var progress bytes.Buffer

		err := source.Clone(testCtx(t), source.Checkout{
			URL: h.url, Ref: "refs/heads/main", Commit: h.c1, Dir: dir, Progress: &progress,
		})
		if err != nil {
			t.Fatalf("Clone: %v\n%s", err, progress.String())
		}
		checkAtC1(t, dir, h)
		if strings.Contains(progress.String(), "does not serve commits by hash") {
			t.Fatalf("fell back to the ref although the server serves commits by hash:\n%s", progress.String())
		}
		// Only that commit was fetched.
		if got := runGit(t, dir, "rev-parse", "--is-shallow-repository"); got != "true" {
			t.Fatalf("clone by hash is not shallow (is-shallow-repository = %s)", got)
		}
		if n := runGit(t, dir, "rev-list", "--count", "HEAD"); n != "1" {
			t.Fatalf("clone by hash holds %s commits of history, want 1", n)
		}
	})

	t.Run("ref fallback", func(t *testing.T) {
		g := newGitServer(t, false)
		h := newHistory(t, g)
		dir := filepath.Join(t.TempDir(), "checkout")
		var progress bytes.Buffer

		err := source.Clone(testCtx(t), source.Checkout{
			URL: h.url, Ref: "refs/heads/main", Commit: h.c1, Dir: dir, Progress: &progress,
		})
		if err != nil {
			t.Fatalf("Clone: %v\n%s", err, progress.String())
		}
		checkAtC1(t, dir, h)
		if !strings.Contains(progress.String(), "server does not serve commits by hash; fetching refs/heads/main") {
			t.Fatalf("progress log does not mention the fallback to the ref:\n%s", progress.String())
		}
	})

	t.Run("no ref to fall back to", func(t *testing.T) {
		g := newGitServer(t, false)
		h := newHistory(t, g)
		err := source.Clone(testCtx(t), source.Checkout{
			URL: h.url, Commit: h.c1, Dir: filepath.Join(t.TempDir(), "checkout"),
		})
		if err == nil || !strings.Contains(err.Error(), h.url) {
			t.Fatalf("Clone by hash from a server that refuses it, without a ref: err = %v, want an error naming %s", err, h.url)
		}
	})
}

func checkAtC1(t *testing.T, dir string, h history) {
	t.Helper()
	if head := runGit(t, dir, "rev-parse", "HEAD"); head != h.c1 {
		t.Fatalf("HEAD = %s, want the old commit %s", head, h.c1)
	}
	if got := readFile(t, filepath.Join(dir, "version.txt")); got != "1\n" {
		t.Fatalf("version.txt = %q, want the old commit's 1", got)
	}
	mustNotExist(t, filepath.Join(dir, "two.txt"))
	mustNotExist(t, filepath.Join(dir, "sub"))
	if st := runGit(t, dir, "status", "--porcelain"); st != "" {
		t.Fatalf("worktree not clean after clone:\n%s", st)
	}
}

func TestCloneMissingCommit(t *testing.T) {
	const missing = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name     string
		allowSHA bool
	}{{"by hash", true}, {"ref fallback", false}} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGitServer(t, tc.allowSHA)
			h := newHistory(t, g)
			var progress bytes.Buffer
			err := source.Clone(testCtx(t), source.Checkout{
				URL: h.url, Ref: "refs/heads/main", Commit: missing,
				Dir: filepath.Join(t.TempDir(), "checkout"), Progress: &progress,
			})
			if err == nil {
				t.Fatalf("Clone of a commit that does not exist succeeded:\n%s", progress.String())
			}
			if !strings.Contains(err.Error(), h.url) {
				t.Fatalf("error %q does not name the URL %s", err, h.url)
			}
			if !tc.allowSHA && (!strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "refs/heads/main")) {
				t.Fatalf("error %q should name commit %s and refs/heads/main", err, missing)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestCloneRejectsNonHashCommit(t *testing.T) {
	for _, commit := range []string{
		"",
		"main",
		"refs/heads/main",
		"0123456", // abbreviated
		"0123456789abcdef0123456789abcdef0123456",   // 39
		"0123456789abcdef0123456789abcdef012345678", // 41
		"g123456789abcdef0123456789abcdef01234567",  // not hex
		"0123456789abcdef0123456789abcdef0123456 ",  // trailing space
	} {
		dir := filepath.Join(t.TempDir(), "checkout")
		err := source.Clone(testCtx(t), source.Checkout{
			URL: "http://127.0.0.1:1/app.git", Commit: commit, Dir: dir,
		})
		if err == nil || !strings.Contains(err.Error(), "not a full commit hash") {
			t.Fatalf("Clone(commit %q): err = %v, want 'not a full commit hash'", commit, err)
		}
		mustNotExist(t, dir)
	}
}

func TestCloneUnreachableURL(t *testing.T) {
	url := closedURL(t)
	start := time.Now()
	err := source.Clone(testCtx(t), source.Checkout{
		URL: url, Ref: "refs/heads/main", Commit: strings.Repeat("a", 40),
		Dir: filepath.Join(t.TempDir(), "checkout"),
	})
	if err == nil || !strings.Contains(err.Error(), url) {
		t.Fatalf("Clone from %s: err = %v, want an error naming the URL", url, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Clone from a closed port took %v", d)
	}
}

func TestResolve(t *testing.T) {
	g := newGitServer(t, false)
	h := newHistory(t, g)
	ctx := testCtx(t)

	for _, tc := range []struct{ ref, want string }{
		{"refs/heads/main", h.c4},
		{"refs/tags/light", h.c2},
		{"refs/tags/v3", h.c3}, // annotated: the commit, not the tag object
	} {
		got, err := source.Resolve(ctx, h.url, tc.ref, nil)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", tc.ref, err)
		}
		if got != tc.want {
			if got == h.annotatedTagObject {
				t.Fatalf("Resolve(%s) = %s, the tag object; want its commit %s", tc.ref, got, tc.want)
			}
			t.Fatalf("Resolve(%s) = %s, want %s", tc.ref, got, tc.want)
		}
	}

	for _, ref := range []string{"refs/heads/nope", "refs/tags/v4", "refs/heads/mai", "main"} {
		got, err := source.Resolve(ctx, h.url, ref, nil)
		if err == nil {
			t.Fatalf("Resolve(%s) = %s, want an error", ref, got)
		}
		if !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), h.url) {
			t.Fatalf("Resolve(%s): error %q should name the ref and the URL", ref, err)
		}
	}

	url := closedURL(t)
	if _, err := source.Resolve(ctx, url, "refs/heads/main", nil); err == nil || !strings.Contains(err.Error(), url) {
		t.Fatalf("Resolve on %s: err = %v, want an error naming the URL", url, err)
	}
}

// TestRefusedRemotes: a clone URL registration would refuse is refused at
// fetch time too, before anything is read or created: local files, ext::
// commands, git://, credentials in the URL, no URL at all.
func TestRefusedRemotes(t *testing.T) {
	for _, url := range []string{
		"", "file:///etc", "/srv/git/app.git", "ext::sh -c touch% /tmp/pwned", "git://127.0.0.1/app.git",
		"https://user:hunter2@127.0.0.1/app.git",
	} {
		dir := filepath.Join(t.TempDir(), "checkout")
		err := source.Clone(testCtx(t), source.Checkout{URL: url, Commit: strings.Repeat("a", 40), Dir: dir})
		if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "clone") {
			t.Errorf("Clone(%q) = %v, want a refusal that shows no password", url, err)
		}
		mustNotExist(t, dir)
		if _, err := source.Heads(testCtx(t), url, nil); err == nil {
			t.Errorf("Heads(%q) was not refused", url)
		}
		if _, err := source.Resolve(testCtx(t), url, "refs/heads/main", nil); err == nil {
			t.Errorf("Resolve(%q) was not refused", url)
		}
	}
}

// IsAncestor answers from a shallow clone of the older commit, fetching the
// newer one's history only as deep as asked.
func TestIsAncestor(t *testing.T) {
	g := newGitServer(t, true)
	h := newHistory(t, g)
	clone := func(commit string) source.Checkout {
		t.Helper()
		co := source.Checkout{URL: h.url, Ref: "refs/heads/main", Commit: commit, Dir: filepath.Join(t.TempDir(), "checkout")}
		if err := source.Clone(testCtx(t), co); err != nil {
			t.Fatalf("Clone %s: %v", commit, err)
		}
		return co
	}
	cases := []struct {
		name          string
		commit, newer string
		depth         int
		want          bool
	}{
		{"c1 is an ancestor of c4", h.c1, h.c4, 200, true},
		{"c3 is an ancestor of c4", h.c3, h.c4, 200, true},
		{"c4 is no ancestor of c1", h.c4, h.c1, 200, false},
		{"c1 lies beyond two commits of c4's history", h.c1, h.c4, 2, false},
	}
	// c4's parent needs no fetch: a checkout whose remote is gone answers.
	t.Run("c4 is no ancestor of its parent c3, without fetching", func(t *testing.T) {
		co := clone(h.c4)
		served := filepath.Join(g.root, "app.git")
		if err := os.Rename(served, served+".away"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := os.Rename(served+".away", served); err != nil {
				t.Fatal(err)
			}
		}()
		got, err := source.IsAncestor(testCtx(t), co, h.c4, h.c3, 200)
		if err != nil || got {
			t.Errorf("IsAncestor(c4, c3) = %v, %v; want false, nil", got, err)
		}
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := source.IsAncestor(testCtx(t), clone(c.commit), c.commit, c.newer, c.depth)
			if err != nil || got != c.want {
				t.Errorf("IsAncestor(%s, %s, depth %d) = %v, %v; want %v", c.commit[:7], c.newer[:7], c.depth, got, err, c.want)
			}
		})
	}
}
