package e2e

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// What a push can make Slipway read or send: rule paths that symlink out
// of the checkout, submodules on other hosts or on Slipway's own disk, a
// log without end; and what other users of the machine can read.
func TestCheckoutSafety(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil { // as an older Slipway left it
		t.Fatal(err)
	}
	s := rig.StartSlipway(t, rig.Options{DataDir: dataDir, Env: []string{"SLIPWAY_LOG_LIMIT=64KiB"}})
	s.PushBusybox()
	// Statuses of repositories with a token go to a local stand-in of
	// GitHub's API, never to api.github.com.
	host := rig.StartHostAPI(t)
	push := func(t *testing.T, repo model.Repo, commit string) []model.Build {
		t.Helper()
		repo.Provider, repo.WebhookSecret, repo.Image = "github", webhookSecret, s.RegistryAddr+"/"+repo.FullName
		repo.APIURL = host.URL + "/"
		if repo.Rules == nil {
			repo.Rules = []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}}
		}
		if code := s.Do("POST", "/api/v1/repos", repo, nil); code != http.StatusCreated {
			t.Fatalf("register %s: HTTP %d", repo.FullName, code)
		}
		body := rig.GitHubPush{Repo: repo.FullName, Ref: "refs/heads/main", After: commit}.Payload()
		r := rig.SendGitHub(t, s.URL(), "push", "d-"+repo.FullName, webhookSecret, body)
		var out []model.Build
		for _, id := range r.Builds {
			out = append(out, s.WaitBuild(id, 3*time.Minute))
		}
		return out
	}

	t.Run("symlinked context and Dockerfile leaving the repository", func(t *testing.T) {
		src := rig.StartGitServer(t).NewRepo(t, "links")
		for name, target := range map[string]string{"app": "../..", "Dockerfile.link": "/etc/passwd"} {
			if err := os.Symlink(target, filepath.Join(src.Dir, name)); err != nil {
				t.Fatal(err)
			}
			rig.Git(t, src.Dir, "add", name)
		}
		commit := src.Commit("links out", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo links > /built.txt")})
		src.Push("main")
		builds := push(t, model.Repo{FullName: "acme/links", CloneURL: src.CloneURL, Rules: []model.Rule{
			{SourceType: "branch", Source: "main", Tags: []string{"app"}, Context: "app"},
			{SourceType: "branch", Source: "main", Tags: []string{"link"}, Dockerfile: "Dockerfile.link"},
		}}, commit)
		want := map[string]string{
			"app":  `build context "app" resolves outside the repository`,
			"link": `dockerfile "Dockerfile.link" resolves outside the repository`,
		}
		if len(builds) != 2 {
			t.Fatalf("%d builds, want one per rule", len(builds))
		}
		for _, b := range builds {
			if b.Status != model.StatusFailed || b.Error != want[b.Tags[0]] {
				t.Errorf("rule tagging %s: %s %q, want failed %q", b.Tags[0], b.Status, b.Error, want[b.Tags[0]])
			}
		}
	})

	t.Run("submodules", func(t *testing.T) {
		private := rig.StartPrivateGitServer(t, "x-access-token", "ghp_private")
		other := rig.StartGitServer(t) // another loopback port: another host
		otherLib := other.NewRepo(t, "otherlib")
		otherLib.Commit("other lib", map[string]string{"VERSION": "other-1.0\n"})
		otherLib.Push("main")
		lib := private.NewRepo(t, "lib")
		lib.Commit("lib", map[string]string{"VERSION": "lib-1.0\n"})
		lib.Push("main")
		onDisk := t.TempDir() // stands for Slipway's own files
		rig.Git(t, onDisk, "init", "-q", "-b", "main")
		if err := os.WriteFile(filepath.Join(onDisk, "api-token"), []byte("slp_secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		rig.Git(t, onDisk, "add", "api-token")
		rig.Git(t, onDisk, "commit", "-q", "-m", "secret")
		withSub := func(name, url, path, run string) (*rig.Repo, string) {
			app := private.NewRepo(t, name)
			rig.Git(t, app.Dir, "-c", "protocol.file.allow=always", "submodule", "add", "-q", url, path)
			df := fmt.Sprintf("FROM %s/library/busybox\nCOPY %s /sub\nRUN %s\n", s.RegistryAddr, path, run)
			commit := app.Commit("app with "+path, map[string]string{"Dockerfile": df})
			app.Push("main")
			return app, commit
		}

		t.Run("on another host, fetched without credentials", func(t *testing.T) {
			app, commit := withSub("app-other", other.URL+"/otherlib.git", "vendor/other", "cat /sub/VERSION")
			b := push(t, model.Repo{FullName: "acme/sub-other", CloneURL: app.CloneURL, Token: "ghp_private", Submodules: true}, commit)[0]
			if b.Status != model.StatusSucceeded {
				t.Fatalf("%s %s\n%s", b.Status, b.Error, s.Log(b.ID))
			}
			rig.Contains(t, "log", s.Log(b.ID), "submodule vendor/other: fetching "+other.URL+"/otherlib.git anonymously", "other-1.0")
			if got := other.Authorizations(); len(got) != 0 {
				t.Errorf("the other host was sent %d Authorization headers, want none: %q", len(got), got)
			}
		})
		t.Run("file:// refused", func(t *testing.T) {
			url := "file://" + onDisk
			app, commit := withSub("app-file", url, "secret", "cat /sub/api-token")
			b := push(t, model.Repo{FullName: "acme/sub-file", CloneURL: app.CloneURL, Token: "ghp_private", Submodules: true}, commit)[0]
			want := fmt.Sprintf("clone %s: submodule %q (%s): file:// URLs are refused: they would copy from Slipway's own disk", app.CloneURL, "secret", url)
			if b.Status != model.StatusFailed || b.Error != want {
				t.Errorf("%s %q, want failed %q", b.Status, b.Error, want)
			}
		})
		t.Run("not fetched without submodules: true", func(t *testing.T) {
			app, commit := withSub("app-off", "../lib.git", "lib", `echo "lib holds $(ls -A /sub | wc -l | tr -d ' ') entries"`)
			b := push(t, model.Repo{FullName: "acme/sub-off", CloneURL: app.CloneURL, Token: "ghp_private"}, commit)[0]
			if b.Status != model.StatusSucceeded {
				t.Fatalf("%s %s\n%s", b.Status, b.Error, s.Log(b.ID))
			}
			rig.Contains(t, "log", s.Log(b.ID),
				"skipped 1 submodules (lib): the repository does not set submodules: true; their directories are empty",
				"lib holds 0 entries")
		})
	})

	t.Run("log cut at SLIPWAY_LOG_LIMIT, build goes on", func(t *testing.T) {
		src := rig.StartGitServer(t).NewRepo(t, "chatty")
		commit := src.Commit("a megabyte of output", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "seq 1 150000 && echo chatty > /built.txt")})
		src.Push("main")
		b := push(t, model.Repo{FullName: "acme/chatty", CloneURL: src.CloneURL}, commit)[0]
		if b.Status != model.StatusSucceeded || b.Digest == "" {
			t.Fatalf("a log past the limit must not stop the build: %s %q", b.Status, b.Error)
		}
		log := s.Log(b.ID)
		const cut = "--- log cut at 64 KiB (SLIPWAY_LOG_LIMIT); the build went on ---\n"
		if !strings.HasSuffix(log, cut) {
			t.Errorf("log does not end with the cut line; it ends %q", log[max(len(log)-200, 0):])
		}
		if limit := 64<<10 + len("\n"+cut); len(log) > limit {
			t.Errorf("log is %d bytes, want at most %d (64 KiB and the cut line)", len(log), limit)
		}
	})

	t.Run("data dir, checkouts and files are Slipway's alone", func(t *testing.T) {
		for path, want := range map[string]fs.FileMode{
			dataDir:                                 fs.ModeDir | 0o700,
			filepath.Join(dataDir, "work"):          fs.ModeDir | 0o700,
			filepath.Join(dataDir, "mirrors"):       fs.ModeDir | 0o700, // and the working trees builds use
			filepath.Join(dataDir, "buildkit"):      fs.ModeDir | 0o700,
			filepath.Join(dataDir, "buildkitd.log"): 0o600,
		} {
			st, err := os.Stat(path)
			if err != nil {
				t.Errorf("stat: %v", err)
				continue
			}
			if st.Mode() != want {
				t.Errorf("%s is %v, want %v", path, st.Mode(), want)
			}
		}
	})
}
