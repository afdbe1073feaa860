package source_test

import (
	"bytes"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitServer serves the bare repositories under root over Git's smart HTTP
// protocol: the real `git http-backend` behind net/http/cgi, on loopback.
type gitServer struct {
	root string
	srv  *httptest.Server
}

// hermeticGitEnv keeps the user's and the system's git configuration out of
// both the test's git commands and the server.
func hermeticGitEnv(home string) []string {
	return []string{
		"HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Slipway Test",
		"GIT_AUTHOR_EMAIL=test@slipway.invalid",
		"GIT_COMMITTER_NAME=Slipway Test",
		"GIT_COMMITTER_EMAIL=test@slipway.invalid",
	}
}

// newGitServer starts a server with push enabled; allowSHA also lets
// clients fetch any reachable commit by hash
// (uploadpack.allowReachableSHA1InWant).
func newGitServer(t *testing.T, allowSHA bool) *gitServer {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git is required: %v", err)
	}
	root := t.TempDir()
	env := append(hermeticGitEnv(root),
		"GIT_PROJECT_ROOT="+root,
		"GIT_HTTP_EXPORT_ALL=1",
		"GIT_CONFIG_KEY_0=http.receivepack",
		"GIT_CONFIG_VALUE_0=true",
	)
	if allowSHA {
		env = append(env, "GIT_CONFIG_COUNT=2",
			"GIT_CONFIG_KEY_1=uploadpack.allowReachableSHA1InWant",
			"GIT_CONFIG_VALUE_1=true")
	} else {
		env = append(env, "GIT_CONFIG_COUNT=1")
	}
	h := &cgi.Handler{
		Path:   gitBin,
		Args:   []string{"http-backend"},
		Root:   "/",
		Env:    env,
		Stderr: testLogWriter{t},
	}
	srv := httptest.NewServer(h) // binds 127.0.0.1
	t.Cleanup(srv.Close)
	return &gitServer{root: root, srv: srv}
}

// URL is the clone URL of repository name.
func (g *gitServer) URL(name string) string { return g.srv.URL + "/" + name }

// newRepo creates an empty bare repository name on the server.
func (g *gitServer) newRepo(t *testing.T, name string) string {
	t.Helper()
	runGit(t, g.root, "init", "--quiet", "--bare", name)
	return g.URL(name)
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("git http-backend: %s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// runGit runs the git CLI in dir and returns its trimmed stdout.
func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), hermeticGitEnv(t.TempDir())...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// workRepo is a local non-bare repository to make commits in.
type workRepo struct {
	t   *testing.T
	dir string
}

func newWorkRepo(t *testing.T) *workRepo {
	t.Helper()
	dir := t.TempDir()
	runGit(t, dir, "init", "--quiet", "--initial-branch=main")
	return &workRepo{t: t, dir: dir}
}

// commit writes files and commits them, returning the commit hash.
func (r *workRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	runGit(r.t, r.dir, "add", "--all")
	runGit(r.t, r.dir, "commit", "--quiet", "-m", msg)
	return runGit(r.t, r.dir, "rev-parse", "HEAD")
}

func (r *workRepo) git(args ...string) string {
	r.t.Helper()
	return runGit(r.t, r.dir, args...)
}

// push sends every branch and tag to url over smart HTTP.
func (r *workRepo) push(url string) {
	r.t.Helper()
	r.git("push", "--quiet", url, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
}

// history is the repository most tests use:
//
//	c1 -- c2 (tag light) -- c3 (annotated tag v3) -- c4 (main)
type history struct {
	url                string
	c1, c2, c3, c4     string
	annotatedTagObject string
}

func newHistory(t *testing.T, g *gitServer) history {
	t.Helper()
	w := newWorkRepo(t)
	var h history
	h.c1 = w.commit("one", map[string]string{"version.txt": "1\n", "Dockerfile": "FROM scratch\n"})
	h.c2 = w.commit("two", map[string]string{"version.txt": "2\n", "two.txt": "two\n"})
	w.git("tag", "light")
	h.c3 = w.commit("three", map[string]string{"version.txt": "3\n"})
	w.git("tag", "-a", "-m", "release 3", "v3")
	h.annotatedTagObject = w.git("rev-parse", "refs/tags/v3")
	h.c4 = w.commit("four", map[string]string{"version.txt": "4\n", "sub/dir/four.txt": "four\n"})
	h.url = g.newRepo(t, "app.git")
	w.push(h.url)
	// The server really has what we pushed.
	if got := runGit(t, filepath.Join(g.root, "app.git"), "rev-parse", "refs/heads/main"); got != h.c4 {
		t.Fatalf("pushed main = %s, want %s", got, h.c4)
	}
	return h
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(b)
}

func mustNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("%s exists (err %v), want it absent", path, err)
	}
}
