package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// userCLI runs the slipway binary as a user on another machine would:
// a home of its own (where login keeps its config), no SLIPWAY_URL or
// SLIPWAY_API_TOKEN, no data dir next to it.
type userCLI struct {
	home string
	env  []string
}

func newUserCLI(t *testing.T) *userCLI {
	home := t.TempDir()
	u := &userCLI{home: home}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SLIPWAY_") && !strings.HasPrefix(e, "HOME=") && !strings.HasPrefix(e, "XDG_CONFIG_HOME=") {
			u.env = append(u.env, e)
		}
	}
	u.env = append(u.env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	return u
}

// run answers stdout, stderr and the exit code of `slipway args...`.
func (u *userCLI) run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(rig.Binary(t), args...)
	cmd.Dir, cmd.Env, cmd.Stdin = u.home, u.env, strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("slipway %v: %v", args, err)
	}
	t.Logf("$ slipway %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// must runs a command that has to succeed.
func (u *userCLI) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := u.run(t, "", args...)
	if code != 0 {
		t.Fatalf("slipway %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// TestCLI drives a real `slipway serve` with the slipway binary as its
// client: login, repo add, trigger, `logs -f` following a running build
// to its end (exit 0) and a failing one (exit 1), builds -o json, and an
// image saved with `image save` that go-containerregistry reads with the
// registry's layers.
func TestCLI(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "cli")
	slow := "FROM " + s.RegistryAddr + "/library/busybox:latest\n" +
		"RUN echo step-one && sleep 5 && echo step-two && echo built-by-cli > /built.txt\n" +
		"COPY . /src\n" +
		"CMD [\"cat\", \"/built.txt\"]\n"
	src.Commit("slow build", map[string]string{"Dockerfile": slow, "app.txt": "hello\n"})
	src.Push("main")
	u := newUserCLI(t)

	t.Run("login keeps the server and token in a 0600 file", func(t *testing.T) {
		out, errOut, code := u.run(t, s.Token+"\n", "login", "--server", s.URL(), "--token-stdin")
		path := filepath.Join(u.home, ".config", "slipway", "config.json")
		if want := "logged in to " + s.URL() + " as admin (bootstrap admin)\nsaved in " + path + "\n"; code != 0 || out != want {
			t.Fatalf("login: exit %d\n%q\nwant %q\n%s", code, out, want, errOut)
		}
		info, err := os.Stat(path)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("config file: %v %v, want mode 0600", info, err)
		}
	})

	added := u.must(t, "repo", "add", "acme/cli", "--clone-url", src.CloneURL, "--image", s.RegistryAddr+"/acme/cli")
	var repos []model.Repo
	if err := json.Unmarshal([]byte(u.must(t, "repo", "list", "-o", "json")), &repos); err != nil || len(repos) != 1 {
		t.Fatalf("repo list -o json: %v %+v", err, repos)
	}
	repo := repos[0]
	rig.Contains(t, "repo add", added, "registered acme/cli as "+repo.ID+"\n", "webhook url:    "+s.URL()+"/hooks/github\n")
	if list := u.must(t, "repo", "list"); !strings.Contains(list, repo.ID+"  github    acme/cli") {
		t.Errorf("repo list does not show acme/cli:\n%s", list)
	}
	t.Run("rule add and rm", func(t *testing.T) {
		u.must(t, "rule", "add", repo.ID, "--type", "branch", "--source", "/^release-.*$/", "--tag", "{branch}", "--tag", "{short_sha}")
		var rules []model.Rule
		if err := json.Unmarshal([]byte(u.must(t, "rule", "list", repo.ID, "-o", "json")), &rules); err != nil || len(rules) != 3 ||
			rules[2].Source != "/^release-.*$/" || !slices.Equal(rules[2].Tags, []string{"{branch}", "{short_sha}"}) {
			t.Fatalf("rules after rule add: %v %+v", err, rules)
		}
		u.must(t, "rule", "rm", repo.ID, "2")
		if out := u.must(t, "rule", "list", repo.ID); strings.Count(out, "\n") != 3 || strings.Contains(out, "release") {
			t.Errorf("rules after rule rm 2:\n%s", out)
		}
	})

	triggered := u.must(t, "trigger", repo.ID, "--ref", "refs/heads/main")
	builds := s.Builds(repo.ID)
	if len(builds) != 1 || !strings.HasPrefix(triggered, "build "+builds[0].ID+" queued: refs/heads/main at ") {
		t.Fatalf("trigger printed %q; builds %+v", triggered, builds)
	}
	b := builds[0]
	t.Run("logs -f follows a running build to its end, exit 0", func(t *testing.T) {
		if st := s.Build(b.ID).Status; model.Terminal(st) {
			t.Fatalf("the build is already %s: nothing left to follow", st)
		}
		start := time.Now()
		out, errOut, code := u.run(t, "", "logs", "-f", b.ID)
		if code != 0 {
			t.Fatalf("logs -f: exit %d\n%s", code, errOut)
		}
		if got := s.Build(b.ID); got.Status != model.StatusSucceeded {
			t.Fatalf("logs -f exited 0 on a build that is %s (%s)", got.Status, got.Error)
		}
		if time.Since(start) < 4*time.Second {
			t.Errorf("logs -f returned after %s: it did not wait for the 5 s step", time.Since(start))
		}
		rig.Contains(t, "logs -f output", out, "step-one", "step-two")
		if full := s.Log(b.ID); out != full {
			t.Errorf("logs -f printed %d bytes, the stored log is %d:\n%s\n---\n%s", len(out), len(full), out, full)
		}
	})

	t.Run("builds -o json parses", func(t *testing.T) {
		var list []model.Build
		if err := json.Unmarshal([]byte(u.must(t, "builds", "--repo", repo.ID, "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != b.ID || list[0].Status != model.StatusSucceeded || !slices.Equal(list[0].Tags, []string{"latest"}) {
			t.Errorf("builds -o json = %+v", list)
		}
		u.must(t, "builds", "--repo", repo.ID)
		u.must(t, "build", "show", b.ID)
	})

	image := s.RegistryAddr + "/acme/cli:latest"
	t.Run("image inspect shows the CMD", func(t *testing.T) {
		out := u.must(t, "image", "inspect", image)
		rig.Contains(t, "image inspect", out, "cmd:         [\"cat\", \"/built.txt\"]", "platform:    linux/amd64", "size:")
	})

	t.Run("image save writes a tarball with the registry's layers", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "cli.tar")
		u.must(t, "image", "save", image, "-o", path)
		tag, err := name.NewTag(image)
		if err != nil {
			t.Fatal(err)
		}
		// The tag is in the tarball's manifest.json, as docker load wants.
		saved, err := tarball.ImageFromPath(path, &tag)
		if err != nil {
			t.Fatalf("read the tarball as %s: %v", tag, err)
		}
		pushed, err := remote.Image(tag, remote.WithAuth(&authn.Basic{Username: "admin", Password: s.Token}))
		if err != nil {
			t.Fatal(err)
		}
		got, want := layerDigests(t, saved), layerDigests(t, pushed)
		// busybox's three (its binary, mkdir, --install), then RUN and COPY.
		if len(got) != 5 || !slices.Equal(got, want) {
			t.Errorf("tarball layers %v\nregistry layers %v\nwant the same 5", got, want)
		}
		cf, err := saved.ConfigFile()
		if err != nil || !slices.Equal(cf.Config.Cmd, []string{"cat", "/built.txt"}) {
			t.Errorf("saved config: %v %+v", err, cf)
		}
	})

	t.Run("logs -f of a failing build exits 1 with its error", func(t *testing.T) {
		failing := "FROM " + s.RegistryAddr + "/library/busybox:latest\nRUN echo about-to-fail && sleep 3 && exit 3\n"
		src.Commit("failing build", map[string]string{"Dockerfile": failing})
		src.Push("main")
		var fb model.Build
		if err := json.Unmarshal([]byte(u.must(t, "trigger", repo.ID, "--ref", "refs/heads/main", "-o", "json")), &fb); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := u.run(t, "", "logs", "-f", fb.ID)
		if code != 1 {
			t.Fatalf("logs -f of a failing build: exit %d, want 1\n%s", code, errOut)
		}
		rig.Contains(t, "logs -f output", out, "about-to-fail")
		rig.Contains(t, "logs -f error", errOut, "build "+fb.ID+" failed", "exit code: 3")
		if got := s.Build(fb.ID); got.Status != model.StatusFailed {
			t.Errorf("build is %s, want failed", got.Status)
		}
	})
}

func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.String())
	}
	return out
}
