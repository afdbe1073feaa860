package source_test

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/source"
)

// dirs lists the directories of a checkout but .git and its root.
func dirs(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.IsDir() && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func modTime(t *testing.T, path string) time.Time {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.ModTime()
}

// A tree kept across two builds holds exactly the second commit: what the
// second commit deleted, what someone left (untracked, ignored, edited,
// removed) is all gone or restored, and a file neither commit changed is
// not written again.
func TestTreeReusedHoldsExactlyTheNextCommit(t *testing.T) {
	both(t, func(t *testing.T, tool func(*source.Mirrors)) {
		g := newGitServer(t, true)
		work := newWorkRepo(t)
		first := work.commit("one", map[string]string{
			"Dockerfile": "FROM scratch\n", ".gitignore": "*.log\n", "keep.txt": "keep\n",
			"gone.txt": "deleted by the second commit\n", "old/only.txt": "its directory goes too\n", "app/a.txt": "a1\n",
		})
		url := g.newRepo(t, "app.git")
		work.push(url)
		m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 30}
		tool(m)
		ctx := testCtx(t)
		co := func(commit string) source.Checkout {
			return source.Checkout{URL: url, Ref: "refs/heads/main", Commit: commit, Dir: filepath.Join(t.TempDir(), "unused")}
		}

		one, err := m.Tree(ctx, "app", "b1", co(first))
		if err != nil {
			t.Fatal(err)
		}
		one.Release()
		sameTree(t, one.Dir, work, first)
		if want := filepath.Join(m.Dir, "app", "slipway-trees", "0"); one.Dir != want || one.Key != "slipway-tree/app/0" {
			t.Fatalf("tree = %s (key %q), want %s (key slipway-tree/app/0)", one.Dir, one.Key, want)
		}
		// Someone used the tree between the builds.
		write(t, filepath.Join(one.Dir, "untracked.txt"), "left behind\n")
		write(t, filepath.Join(one.Dir, "debug.log"), "ignored, left behind\n")
		write(t, filepath.Join(one.Dir, "junk", "deep", "x"), "a whole untracked directory\n")
		write(t, filepath.Join(one.Dir, "app", "a.txt"), "edited by hand\n")
		write(t, filepath.Join(one.Dir, "app", "extra.txt"), "untracked beside tracked\n")
		if err := os.Mkdir(filepath.Join(one.Dir, "empty"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(one.Dir, "keep.txt")); err != nil {
			t.Fatal(err)
		}
		dockerfileTime := modTime(t, filepath.Join(one.Dir, "Dockerfile"))

		work.git("rm", "--quiet", "gone.txt", "old/only.txt")
		second := work.commit("two", map[string]string{"app/a.txt": "a2\n", "new.txt": "new\n"})
		work.push(url)
		two, err := m.Tree(ctx, "app", "b2", co(second))
		if err != nil {
			t.Fatal(err)
		}
		defer two.Release()
		if two.Dir != one.Dir || two.Key != one.Key {
			t.Fatalf("second build got %s (key %q), want the kept tree %s (key %q)", two.Dir, two.Key, one.Dir, one.Key)
		}
		sameTree(t, two.Dir, work, second)
		if got := readFile(t, filepath.Join(two.Dir, "keep.txt")); got != "keep\n" {
			t.Fatalf("keep.txt = %q, want the commit's", got)
		}
		if got := strings.Join(dirs(t, two.Dir), ","); got != "app" {
			t.Fatalf("directories = %s, want only app", got)
		}
		if after := modTime(t, filepath.Join(two.Dir, "Dockerfile")); !after.Equal(dockerfileTime) {
			t.Fatalf("the unchanged Dockerfile was written again (%s, was %s)", after, dockerfileTime)
		}
	})
}

// Two builds of one repository at once each get a tree of their own, at
// their own commit; once both are done the first tree is taken again.
func TestTreeConcurrentBuildsEachGetTheirCommit(t *testing.T) {
	both(t, func(t *testing.T, tool func(*source.Mirrors)) {
		g := newGitServer(t, true)
		work := newWorkRepo(t)
		first := work.commit("one", map[string]string{"v.txt": "1\n", "one.txt": "one\n"})
		second := work.commit("two", map[string]string{"v.txt": "2\n", "two.txt": "two\n"})
		url := g.newRepo(t, "app.git")
		work.push(url)
		m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 30}
		tool(m)
		ctx := testCtx(t)
		co := func(commit string) source.Checkout {
			return source.Checkout{URL: url, Ref: "refs/heads/main", Commit: commit, Dir: filepath.Join(t.TempDir(), "unused")}
		}
		a, err := m.Tree(ctx, "app", "b1", co(first))
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Tree(ctx, "app", "b2", co(second))
		if err != nil {
			t.Fatal(err)
		}
		if a.Dir == b.Dir || a.Key == b.Key {
			t.Fatalf("both builds got %s (keys %q, %q)", a.Dir, a.Key, b.Key)
		}
		sameTree(t, a.Dir, work, first)
		sameTree(t, b.Dir, work, second)
		a.Release()
		b.Release()
		c, err := m.Tree(ctx, "app", "b3", co(second))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		if c.Dir != a.Dir {
			t.Fatalf("third build got %s, want the first tree %s again", c.Dir, a.Dir)
		}
		sameTree(t, c.Dir, work, second)
	})
}

// Eviction deletes a mirror's working trees with it.
func TestTreeEvictedWithItsMirror(t *testing.T) {
	g := newGitServer(t, true)
	m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 40, CLI: true}
	ctx := testCtx(t)
	commits := map[string]string{}
	for _, id := range []string{"a", "b"} {
		work := newWorkRepo(t)
		commits[id] = work.commit(id, randomFiles(t, 10, 100<<10)) // 1 MB each
		pushBig(work, g.newRepo(t, id+".git"))
	}
	tree := func(id string) source.WorkTree {
		wt, err := m.Tree(ctx, id, "build-"+id, source.Checkout{URL: g.URL(id + ".git"), Commit: commits[id], Dir: filepath.Join(t.TempDir(), id)})
		if err != nil {
			t.Fatal(err)
		}
		wt.Release()
		return wt
	}
	a := tree("a")
	if n := len(files(t, a.Dir)); n != 10 {
		t.Fatalf("a's tree has %d files, want 10", n)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(m.Dir, "a"), old, old); err != nil {
		t.Fatal(err)
	}
	// Room for one mirror with its tree: a's objects alone are 1 MB, the
	// tree another 2 MB of hex.
	m.MaxBytes = size(t, filepath.Join(m.Dir, "a")) * 3 / 2
	tree("b")
	mustNotExist(t, filepath.Join(m.Dir, "a"))
	mustNotExist(t, a.Dir)
}

// A tree whose repository is damaged is checked out afresh, and the log
// says so.
func TestTreeCorruptIsCheckedOutAgain(t *testing.T) {
	both(t, func(t *testing.T, tool func(*source.Mirrors)) {
		g := newGitServer(t, true)
		work := newWorkRepo(t)
		first := work.commit("one", map[string]string{"a.txt": "a\n"})
		url := g.newRepo(t, "app.git")
		work.push(url)
		var logs bytes.Buffer
		m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 30, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		tool(m)
		ctx := testCtx(t)
		co := func(commit string) source.Checkout {
			return source.Checkout{URL: url, Ref: "refs/heads/main", Commit: commit, Dir: filepath.Join(t.TempDir(), "unused")}
		}
		one, err := m.Tree(ctx, "app", "b1", co(first))
		if err != nil {
			t.Fatal(err)
		}
		one.Release()
		if err := os.WriteFile(filepath.Join(one.Dir, ".git", "index"), bytes.Repeat([]byte{0xde}, 512), 0o600); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(one.Dir, "untracked.txt"), "left behind\n")
		second := work.commit("two", map[string]string{"b.txt": "b\n"})
		work.push(url)
		two, err := m.Tree(ctx, "app", "b2", co(second))
		if err != nil {
			t.Fatalf("tree over a damaged index: %v", err)
		}
		defer two.Release()
		sameTree(t, two.Dir, work, second)
		if !strings.Contains(logs.String(), "working tree unusable") || !strings.Contains(logs.String(), "build=b2") {
			t.Fatalf("log does not say the tree was checked out afresh for build b2:\n%s", logs.String())
		}
	})
}

// With submodules the checkout is made afresh in the build's own
// directory, as without kept trees.
func TestTreeWithSubmodulesIsFresh(t *testing.T) {
	g := newGitServer(t, true)
	work := newWorkRepo(t)
	commit := work.commit("one", map[string]string{"a.txt": "a\n"})
	url := g.newRepo(t, "app.git")
	work.push(url)
	m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 30, CLI: true}
	dir := filepath.Join(t.TempDir(), "b1")
	wt, err := m.Tree(testCtx(t), "app", "b1", source.Checkout{URL: url, Ref: "refs/heads/main", Commit: commit, Dir: dir, Submodules: true})
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Release()
	if wt.Dir != dir || wt.Key != "" {
		t.Fatalf("tree = %s (key %q), want the build's own %s with no key", wt.Dir, wt.Key, dir)
	}
	sameTree(t, dir, work, commit)
	mustNotExist(t, filepath.Join(m.Dir, "app", "slipway-trees"))
}

// A submodule left unfetched is an empty directory in every build, even
// when someone wrote into it in between.
func TestTreeEmptiesUnfetchedSubmodules(t *testing.T) {
	both(t, func(t *testing.T, tool func(*source.Mirrors)) {
		g := newGitServer(t, true)
		work := newWorkRepo(t)
		base := work.commit("one", map[string]string{"a.txt": "1\n"})
		if err := os.MkdirAll(filepath.Join(work.dir, "vendor", "lib"), 0o755); err != nil {
			t.Fatal(err)
		}
		work.git("update-index", "--add", "--cacheinfo", "160000,"+base+",vendor/lib")
		work.git("commit", "--quiet", "-m", "a submodule")
		first := work.git("rev-parse", "HEAD")
		url := g.newRepo(t, "app.git")
		work.push(url)
		m := &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), MaxBytes: 1 << 30}
		tool(m)
		ctx := testCtx(t)
		co := func(commit string) source.Checkout {
			return source.Checkout{URL: url, Ref: "refs/heads/main", Commit: commit, Dir: filepath.Join(t.TempDir(), "unused")}
		}
		one, err := m.Tree(ctx, "app", "b1", co(first))
		if err != nil {
			t.Fatal(err)
		}
		one.Release()
		write(t, filepath.Join(one.Dir, "vendor", "lib", "evil.txt"), "not from the commit\n")
		second := work.commit("two", map[string]string{"a.txt": "2\n"})
		work.push(url)
		two, err := m.Tree(ctx, "app", "b2", co(second))
		if err != nil {
			t.Fatal(err)
		}
		defer two.Release()
		if got := files(t, two.Dir); len(got) != 1 || got["a.txt"] != "2\n" {
			t.Fatalf("files = %v, want only a.txt = 2", got)
		}
		if got := strings.Join(dirs(t, two.Dir), ","); got != "vendor,vendor/lib" {
			t.Fatalf("directories = %s, want vendor,vendor/lib (the submodule's, empty)", got)
		}
	})
}
