// Package rig starts the real parts Slipway's end-to-end tests run against:
// a smart-HTTP Git server, the slipway binary, a deploy-hook receiver.
package rig

import (
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// GitServer serves bare repositories over smart HTTP with `git http-backend`.
type GitServer struct {
	Root           string
	URL            string
	user, password string
	mu             sync.Mutex
	authorizations []string
}

// Authorizations are the Authorization headers the server was sent, in
// order; requests without one are not listed.
func (g *GitServer) Authorizations() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.authorizations)
}

// StartGitServer serves repositories under a temporary directory until the
// test ends. Push is allowed, and so is fetching any reachable commit by hash,
// as GitHub does.
func StartGitServer(t testing.TB) *GitServer { return startGitServer(t, "127.0.0.1", "", "") }

// StartGitServerOn is StartGitServer on another loopback address, such as
// 127.0.0.2, for a test that opens only the Git server to Slipway's
// outbound guard.
func StartGitServerOn(t testing.TB, host string) *GitServer { return startGitServer(t, host, "", "") }

// StartPrivateGitServer is StartGitServer behind HTTP basic auth, as a
// private repository on a Git host is.
func StartPrivateGitServer(t testing.TB, user, password string) *GitServer {
	return startGitServer(t, "127.0.0.1", user, password)
}

func startGitServer(t testing.TB, host, user, password string) *GitServer {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git is required (make deps installs it): %v", err)
	}
	root := t.TempDir()
	h := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_COUNT=2",
			"GIT_CONFIG_KEY_0=http.receivepack", "GIT_CONFIG_VALUE_0=true",
			"GIT_CONFIG_KEY_1=uploadpack.allowReachableSHA1InWant", "GIT_CONFIG_VALUE_1=true",
		},
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler = h
	if user != "" {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	g := &GitServer{Root: root, URL: "http://" + ln.Addr().String(), user: user, password: password}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			g.mu.Lock()
			g.authorizations = append(g.authorizations, a)
			g.mu.Unlock()
		}
		handler.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return g
}

// pushURL carries the credentials the test's own pushes use.
func (g *GitServer) pushURL() string {
	if g.user == "" {
		return g.URL
	}
	return strings.Replace(g.URL, "http://", "http://"+g.user+":"+g.password+"@", 1)
}

// Repo is a working copy whose pushes go to a bare repository on a GitServer.
type Repo struct {
	t        testing.TB
	Dir      string
	CloneURL string
}

// NewRepo creates an empty bare repository name.git and a working copy of it.
func (g *GitServer) NewRepo(t testing.TB, name string) *Repo {
	t.Helper()
	bare := filepath.Join(g.Root, name+".git")
	Git(t, "", "init", "-q", "--bare", "-b", "main", bare)
	work := t.TempDir()
	Git(t, work, "init", "-q", "-b", "main")
	url := g.URL + "/" + name + ".git"
	Git(t, work, "remote", "add", "origin", g.pushURL()+"/"+name+".git")
	return &Repo{t: t, Dir: work, CloneURL: url}
}

// Commit writes files (path → content; "" deletes) and commits them,
// returning the commit hash.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Dir, name)
		if content == "" {
			Git(r.t, r.Dir, "rm", "-q", name)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		Git(r.t, r.Dir, "add", name)
	}
	Git(r.t, r.Dir, "commit", "-q", "-m", msg)
	return r.Head()
}

// HeadOrEmpty is the current commit hash, or "" before the first commit.
func (r *Repo) HeadOrEmpty() string {
	out, err := exec.Command("git", "-C", r.Dir, "rev-parse", "--verify", "-q", "HEAD^{commit}").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Head is the current commit hash.
func (r *Repo) Head() string {
	return strings.TrimSpace(Git(r.t, r.Dir, "rev-parse", "HEAD"))
}

// Push pushes refspec (e.g. "main" or "refs/tags/v1") to the server.
func (r *Repo) Push(refspec string) {
	r.t.Helper()
	Git(r.t, r.Dir, "push", "-q", "--force", "origin", refspec)
}

// Git runs the git CLI and fails the test on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Slipway Test", "GIT_AUTHOR_EMAIL=test@slipway.invalid",
		"GIT_COMMITTER_NAME=Slipway Test", "GIT_COMMITTER_EMAIL=test@slipway.invalid",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+os.TempDir(),
		// A push above http.postBuffer (1 MiB) goes chunked, which the
		// test servers' git http-backend behind net/http/cgi answers 400:
		// Slipway's own source is that big.
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.postBuffer", "GIT_CONFIG_VALUE_0=1073741824")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
