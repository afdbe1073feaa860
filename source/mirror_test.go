package source_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/slipway-build/slipway/outbound"
	"github.com/slipway-build/slipway/source"
)

// loopback opens the test's git server to the guard.
var loopback = &outbound.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// both runs a test on the go-git path (fetch and checkout) and on the git
// command's (fetch behind the guard, checkout).
func both(t *testing.T, test func(t *testing.T, tool func(*source.Mirrors))) {
	t.Run("go-git", func(t *testing.T) { test(t, func(*source.Mirrors) {}) })
	t.Run("git-cli", func(t *testing.T) { test(t, func(m *source.Mirrors) { m.CLI, m.Guard = true, loopback }) })
}

// randomFiles are n files of size random (incompressible) bytes each.
func randomFiles(t *testing.T, n, size int) map[string]string {
	t.Helper()
	files := map[string]string{}
	for i := range n {
		b := make([]byte, size/2)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		files[fmt.Sprintf("data/%03d.txt", i)] = hex.EncodeToString(b)
	}
	return files
}

// pushBig pushes main in one request: git http-backend behind net/http/cgi
// cannot take a chunked push.
func pushBig(w *workRepo, url string) {
	w.t.Helper()
	w.git("-c", "http.postBuffer=67108864", "push", "--quiet", url, "refs/heads/*:refs/heads/*")
}

func size(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// objects lists the files of the mirror's object store (packs and loose
// objects: the git command unpacks small fetches) and their sizes.
func objects(t *testing.T, mirror string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	root := filepath.Join(mirror, "objects")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, string(filepath.Separator)+"info"+string(filepath.Separator)) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[p] = info.Size()
		return nil
	})
	return out
}

// files reads every file of a checkout but .git, path → content.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out[filepath.ToSlash(rel)] = readFile(t, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails unless dir holds exactly the files of commit in work.
func sameTree(t *testing.T, dir string, work *workRepo, commit string) {
	t.Helper()
	want := map[string]string{}
	for _, name := range strings.Split(work.git("ls-tree", "-r", "--name-only", commit), "\n") {
		want[name] = work.git("show", commit+":"+name) + "\n"
	}
	got := files(t, dir)
	if len(got) != len(want) {
		t.Fatalf("checkout has %d files, commit %s has %d", len(got), commit, len(want))
	}
	for name, content := range want {
		// git show drops the trailing newline runGit trims; compare trimmed.
		if strings.TrimRight(got[name], "\n") != strings.TrimRight(content, "\n") {
			t.Fatalf("%s differs from commit %s", name, commit)
		}
	}
	if head := runGit(t, dir, "rev-parse", "HEAD"); head != commit {
		t.Fatalf("HEAD = %s, want %s", head, commit)
	}
	if st := runGit(t, dir, "status", "--porcelain"); st != "" {
		t.Fatalf("worktree not clean:\n%s", st)
	}
}

func TestMirrorFetchesOnlyNewObjects(t *testing.T) {
	both(t, func(t *testing.T, tool func(*source.Mirrors)) {
		g := newGitServer(t, false) // refs only: the mirror fetches the ref
		work := newWorkRepo(t)
		first := work.commit("big", randomFiles(t, 100, 20<<10)) // 2 MB of random hex
		url := g.newRepo(t, "big.git")
		pushBig(work, url)
		m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 30}
		tool(m)
		ctx := testCtx(t)

		dir := filepath.Join(t.TempDir(), "b1")
		release, err := m.Clone(ctx, "repo1", "b1", source.Checkout{URL: url, Ref: "refs/heads/main", Commit: first, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		release()
		sameTree(t, dir, work, first)
		mirror := filepath.Join(m.Dir, "repo1")
		before := objects(t, mirror)
		var total int64
		for _, n := range before {
			total += n
		}
		// 2 MB of hex digits, which zlib packs into about 1.1 MB.
		if total < 1<<20 {
			t.Fatalf("first fetch stored %d bytes of objects, want the whole history, over 1 MiB", total)
		}

		second := work.commit("small", map[string]string{"data/007.txt": "changed\n"})
		work.push(url)
		dir2 := filepath.Join(t.TempDir(), "b2")
		release, err = m.Clone(ctx, "repo1", "b2", source.Checkout{URL: url, Ref: "refs/heads/main", Commit: second, Dir: dir2})
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		sameTree(t, dir2, work, second)
		var fetched int64
		for name, n := range objects(t, mirror) {
			if _, old := before[name]; !old {
				fetched += n
			}
		}
		t.Logf("first fetch stored %d bytes of objects, the second %d", total, fetched)
		// One commit, two trees (one of 100 entries) and an 8-byte blob.
		if fetched == 0 || fetched > 8<<10 {
			t.Fatalf("second fetch stored %d bytes of objects, want under 8 KiB (only the new commit)", fetched)
		}
		// The checkout answers history questions from the mirror.
		changed, err := source.ChangedFiles(ctx, source.Checkout{URL: url, Ref: "refs/heads/main", Commit: second, Dir: dir2}, first, "")
		if err != nil || len(changed) != 1 || changed[0] != "data/007.txt" {
			t.Fatalf("ChangedFiles = %v, %v; want [data/007.txt]", changed, err)
		}
	})
}

func TestMirrorEvictsLeastRecentlyUsedNotInUse(t *testing.T) {
	g := newGitServer(t, true)
	m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors")}
	ctx := testCtx(t)
	commits := map[string]string{}
	for _, id := range []string{"a", "b", "c"} {
		work := newWorkRepo(t)
		commits[id] = work.commit(id, randomFiles(t, 10, 100<<10)) // 1 MB each
		pushBig(work, g.newRepo(t, id+".git"))
	}
	clone := func(id string) func() {
		t.Helper()
		release, err := m.Clone(ctx, id, "build-"+id, source.Checkout{URL: g.URL(id + ".git"), Commit: commits[id], Dir: filepath.Join(t.TempDir(), id)})
		if err != nil {
			t.Fatal(err)
		}
		return release
	}
	present := func() []string {
		entries, _ := os.ReadDir(m.Dir)
		var ids []string
		for _, e := range entries {
			ids = append(ids, e.Name())
		}
		sort.Strings(ids)
		return ids
	}
	m.MaxBytes = 1 << 40
	releaseA := clone("a") // held by a running build
	clone("b")()
	// a was used before b.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(m.Dir, "a"), old, old); err != nil {
		t.Fatal(err)
	}
	m.MaxBytes = size(t, filepath.Join(m.Dir, "a")) * 5 / 2 // room for two mirrors, not three
	clone("c")()
	if got := strings.Join(present(), ","); got != "a,c" {
		t.Fatalf("mirrors after c = %s, want a,c: b is the least recently used one not in use", got)
	}
	releaseA()
	if err := os.Chtimes(filepath.Join(m.Dir, "a"), old, old); err != nil {
		t.Fatal(err)
	}
	clone("b")()
	if got := strings.Join(present(), ","); got != "b,c" {
		t.Fatalf("mirrors after b again = %s, want b,c: a is free now and least recently used", got)
	}
}

func TestMirrorCorruptIsClonedAgain(t *testing.T) {
	both(t, func(t *testing.T, tool func(*source.Mirrors)) {
		g := newGitServer(t, true)
		work := newWorkRepo(t)
		first := work.commit("one", map[string]string{"a.txt": "a\n", "Dockerfile": "FROM scratch\n"})
		url := g.newRepo(t, "app.git")
		work.push(url)
		var logs bytes.Buffer
		m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 30,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		tool(m)
		ctx := testCtx(t)
		release, err := m.Clone(ctx, "app", "b1", source.Checkout{URL: url, Ref: "refs/heads/main", Commit: first, Dir: filepath.Join(t.TempDir(), "b1")})
		if err != nil {
			t.Fatal(err)
		}
		release()
		// A crash mid-write left garbage where the objects were.
		for p := range objects(t, filepath.Join(m.Dir, "app")) {
			if err := os.WriteFile(p, bytes.Repeat([]byte{0xde}, 4096), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		second := work.commit("two", map[string]string{"a.txt": "b\n"})
		work.push(url)
		dir := filepath.Join(t.TempDir(), "b2")
		release, err = m.Clone(ctx, "app", "b2", source.Checkout{URL: url, Ref: "refs/heads/main", Commit: second, Dir: dir})
		if err != nil {
			t.Fatalf("clone over a corrupt mirror: %v", err)
		}
		defer release()
		sameTree(t, dir, work, second)
		if !strings.Contains(logs.String(), "mirror unreadable") || !strings.Contains(logs.String(), "build=b2") {
			t.Fatalf("log does not say the mirror was cloned again for build b2:\n%s", logs.String())
		}
	})
}

func TestMirrorKeepsNoCredentials(t *testing.T) {
	both(t, testMirrorKeepsNoCredentials)
}

func testMirrorKeepsNoCredentials(t *testing.T, tool func(*source.Mirrors)) {
	const user, token = "x-access-token", "ghs_mirrorSecret0123456789"
	g := newGitServer(t, true)
	work := newWorkRepo(t)
	commit := work.commit("one", map[string]string{"a.txt": "a\n"})
	url := g.newRepo(t, "private.git")
	work.push(url)
	// Put the same repository behind basic auth.
	inner := g.srv.Config.Handler
	g.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	})
	m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 30}
	tool(m)
	dir := filepath.Join(t.TempDir(), "b1")
	release, err := m.Clone(testCtx(t), "private", "b1", source.Checkout{URL: url, Ref: "refs/heads/main", Commit: commit, Dir: dir,
		Auth: &githttp.BasicAuth{Username: user, Password: token}})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got := readFile(t, filepath.Join(dir, "a.txt")); got != "a\n" {
		t.Fatalf("a.txt = %q", got)
	}
	for _, root := range []string{m.Dir, dir} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(readFile(t, p), token) {
				t.Errorf("%s contains the token", p)
			}
			return nil
		})
	}
	if cfg := readFile(t, filepath.Join(m.Dir, "private", "config")); strings.Contains(cfg, "url") {
		t.Errorf("the mirror's config names a remote:\n%s", cfg)
	}
}

// The git command fetches only from addresses the guard allows: without
// loopback opened, the test server is refused before anything connects.
func TestMirrorCLIFetchBehindTheGuard(t *testing.T) {
	g := newGitServer(t, true)
	work := newWorkRepo(t)
	commit := work.commit("one", map[string]string{"a.txt": "a\n"})
	url := g.newRepo(t, "app.git")
	work.push(url)
	m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 30, CLI: true, Guard: &outbound.Guard{}}
	release, err := m.Clone(testCtx(t), "app", "b1", source.Checkout{URL: url, Ref: "refs/heads/main", Commit: commit, Dir: filepath.Join(t.TempDir(), "b1")})
	release()
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Clone from 127.0.0.1 with loopback closed = %v, want a refusal", err)
	}
	if n := len(objects(t, filepath.Join(m.Dir, "app"))); n != 0 {
		t.Fatalf("the refused fetch left %d packs in the mirror", n)
	}
}

// A checkout through a mirror answers which of two pushes is older from
// the mirror's history, in either order, with the remote gone.
func TestMirrorIsAncestorWithoutFetching(t *testing.T) {
	both(t, func(t *testing.T, tool func(*source.Mirrors)) {
		g := newGitServer(t, false)
		h := newHistory(t, g)
		m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 30}
		tool(m)
		ctx := testCtx(t)
		checkout := func(commit string) source.Checkout {
			co := source.Checkout{URL: h.url, Ref: "refs/heads/main", Commit: commit, Dir: filepath.Join(t.TempDir(), commit[:7])}
			release, err := m.Clone(ctx, "app", commit[:7], co)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(release)
			return co
		}
		newest, oldest := checkout(h.c4), checkout(h.c1)
		served := filepath.Join(g.root, "app.git")
		if err := os.Rename(served, served+".away"); err != nil {
			t.Fatal(err)
		}
		if got, err := source.IsAncestor(ctx, newest, h.c4, h.c1, 200); err != nil || got {
			t.Errorf("IsAncestor(c4, c1) = %v, %v; want false, nil", got, err)
		}
		if got, err := source.IsAncestor(ctx, oldest, h.c1, h.c4, 200); err != nil || !got {
			t.Errorf("IsAncestor(c1, c4) = %v, %v; want true, nil", got, err)
		}
	})
}
