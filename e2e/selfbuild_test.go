package e2e

import (
	"archive/tar"
	"context"
	"debug/elf"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// TestSlipwayBuildsSlipway: this repository's own source is pushed to the
// rig's Git server and Slipway builds its root Dockerfile (default target)
// on its real BuildKit, offline: golang:1.26 comes from Slipway's embedded
// registry through the Docker Hub mirror in buildkitd's config
// (SLIPWAY_DOCKERHUB_MIRROR), assembled beforehand from this machine's Go,
// busybox and a module proxy directory. The image is then pulled with
// go-containerregistry, its layers unpacked, and the slipway in it run.
func TestSlipwayBuildsSlipway(t *testing.T) {
	lap := stopwatch(t)
	src := worktreeSource(t)
	proxy := make(chan proxyResult, 1)
	go func() {
		dir, err := rig.ModuleProxy(src, filepath.Join(t.TempDir(), "modcache"))
		proxy <- proxyResult{dir, err}
	}()

	registry := rig.FreeAddr(t)
	s := rig.StartSlipway(t, rig.Options{RegistryAddr: registry, Env: []string{"SLIPWAY_DOCKERHUB_MIRROR=" + registry}})
	lap("Slipway started")
	p := <-proxy
	if p.err != nil {
		t.Fatal(p.err)
	}
	lap("module proxy made (" + du(t, p.dir) + ")")
	golang := rig.GolangImage(t, p.dir)
	ctx := context.Background()
	if err := rig.PushImage(ctx, registry+"/library/golang:1.26", golang); err != nil {
		t.Fatal(err)
	}
	publish(t, s, "library/golang")
	lap("golang:1.26 assembled and pushed")

	git := rig.StartGitServer(t)
	repo := git.NewRepo(t, "slipway")
	commit := commitTree(t, repo, src, "Slipway's own source")
	repo.Push("main")
	registered := registerRepo(t, s, "slipway-build/slipway", repo.CloneURL, nil)
	r := rig.SendGitHub(t, s.URL(), "push", "selfbuild-1", webhookSecret,
		rig.GitHubPush{Repo: "slipway-build/slipway", Ref: "refs/heads/main", After: commit, Message: "Slipway's own source"}.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push: %+v", r)
	}
	lap("source pushed and webhook sent")
	// Compiling Slipway and its dependencies with an empty build cache
	// takes minutes on two busy cores.
	b := s.WaitBuild(r.Builds[0], 40*time.Minute)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("build: %s (%s)\n%s", b.Status, b.Error, s.Log(b.ID))
	}
	lap("Slipway built Slipway")

	ref := registered.Image + ":latest"
	img, err := rig.Image(ctx, ref, "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("image config", func(t *testing.T) { checkImageConfig(t, img, commit, strings.TrimSuffix(repo.CloneURL, ".git")) })
	root, headers := unpack(t, img)
	lap("image pulled and unpacked")
	bin := filepath.Join(root, "usr", "local", "bin", "slipway")

	t.Run("slipway version names the pushed commit", func(t *testing.T) {
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("slipway version: %v\n%s", err, out)
		}
		// VERSION falls back to DOCKER_TAG, the tag the rule pushes.
		if got, want := strings.TrimSpace(string(out)), "slipway latest commit "+commit; got != want {
			t.Errorf("slipway version printed %q, want %q", got, want)
		}
	})
	t.Run("slipway is static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("usr/local/bin/slipway asks for a dynamic loader; FROM scratch has none")
			}
		}
	})
	t.Run("slipway healthcheck", func(t *testing.T) {
		ok := exec.Command(bin, "healthcheck")
		ok.Env = []string{"SLIPWAY_HTTP_ADDR=" + s.HTTPAddr}
		if out, err := ok.CombinedOutput(); err != nil {
			t.Errorf("healthcheck of a running Slipway: %v\n%s", err, out)
		}
		down := exec.Command(bin, "healthcheck")
		down.Env = []string{"SLIPWAY_HTTP_ADDR=" + rig.FreeAddr(t)}
		out, err := down.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "connection refused") {
			t.Errorf("healthcheck with nothing listening: %v, want exit status 1 and the reason\n%s", err, out)
		}
	})
	t.Run("runtime files", func(t *testing.T) { checkRuntimeFiles(t, root, headers) })
}

type proxyResult struct {
	dir string
	err error
}

// stopwatch logs how long each phase took, and the whole at the end.
func stopwatch(t *testing.T) func(phase string) {
	start, last := time.Now(), time.Now()
	t.Cleanup(func() { t.Logf("total %s", time.Since(start).Round(100*time.Millisecond)) })
	return func(phase string) {
		t.Logf("%s in %s", phase, time.Since(last).Round(100*time.Millisecond))
		last = time.Now()
	}
}

// worktreeSource copies the files of the worktree under test that a commit
// of it now would hold (tracked and untracked ones Git does not ignore, as
// they are on disk) into a new directory.
func worktreeSource(t *testing.T) string {
	t.Helper()
	root := rig.Root(t)
	dst := t.TempDir()
	list := rig.Git(t, root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	for _, name := range strings.Split(strings.TrimRight(list, "\x00"), "\x00") {
		from := filepath.Join(root, name)
		info, err := os.Lstat(from)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted, not committed yet
		}
		if err != nil {
			t.Fatal(err)
		}
		if !info.Mode().IsRegular() {
			t.Fatalf("%s is not a regular file; this test copies only files", name)
		}
		raw, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, raw, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// commitTree commits every file under dir to repo and returns the commit.
func commitTree(t *testing.T, repo *rig.Repo, dir, msg string) string {
	t.Helper()
	// cp -a keeps modes; the source holds no Git metadata to clash with.
	if out, err := exec.Command("cp", "-a", dir+"/.", repo.Dir).CombinedOutput(); err != nil {
		t.Fatalf("copy source: %v\n%s", err, out)
	}
	rig.Git(t, repo.Dir, "add", "-A")
	rig.Git(t, repo.Dir, "commit", "-q", "-m", msg)
	return repo.Head()
}

// publish makes image (org/name) public in its organization, as Docker
// Hub's library is, so that every organization's builds may pull it.
func publish(t *testing.T, s *rig.Slipway, image string) {
	t.Helper()
	org, _, _ := strings.Cut(image, "/")
	if code := s.Do("POST", "/api/v1/orgs", map[string]any{"name": org, "owners": []string{"admin"}}, nil); code != http.StatusCreated && code != http.StatusConflict {
		t.Fatalf("create organization %s: HTTP %d", org, code)
	}
	if code := s.Do("PATCH", "/api/v1/orgs/"+org, map[string]any{"public_images": []string{image}}, nil); code != http.StatusOK {
		t.Fatalf("make %s public: HTTP %d", image, code)
	}
}

func du(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("du", "-sh", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	size, _, _ := strings.Cut(string(out), "\t")
	return size
}

func checkImageConfig(t *testing.T, img v1.Image, commit, source string) {
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if c.User != "65532:65532" {
		t.Errorf("User %q, want 65532:65532", c.User)
	}
	if c.Healthcheck == nil || !slices.Equal(c.Healthcheck.Test, []string{"CMD", "/usr/local/bin/slipway", "healthcheck"}) {
		t.Errorf("Healthcheck %+v, want CMD /usr/local/bin/slipway healthcheck", c.Healthcheck)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/slipway"}) || !slices.Equal(c.Cmd, []string{"help"}) {
		t.Errorf("Entrypoint %q Cmd %q, want [/usr/local/bin/slipway] [help]", c.Entrypoint, c.Cmd)
	}
	if !slices.Contains(c.Env, "SLIPWAY_DATA_DIR=/var/lib/slipway") {
		t.Errorf("Env %q lacks SLIPWAY_DATA_DIR=/var/lib/slipway", c.Env)
	}
	if _, ok := c.Volumes["/var/lib/slipway"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("Volumes %v, want /var/lib/slipway", c.Volumes)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("ExposedPorts %v, want 8080/tcp", c.ExposedPorts)
	}
	// Slipway's own revision and source labels are applied over the
	// Dockerfile's (BuildKit's label options come last).
	want := map[string]string{
		"org.opencontainers.image.title":    "Slipway",
		"org.opencontainers.image.licenses": "NOASSERTION",
		"org.opencontainers.image.revision": commit,
		"org.opencontainers.image.version":  "latest",
		"org.opencontainers.image.source":   source,
	}
	for k, v := range want {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
}

// unpack extracts img's flattened filesystem into a new directory and
// returns it with each entry's tar header by path.
func unpack(t *testing.T, img v1.Image) (string, map[string]*tar.Header) {
	t.Helper()
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	headers := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read image layers: %v", err)
		}
		name := filepath.Clean(strings.TrimPrefix(h.Name, "/"))
		if !filepath.IsLocal(name) {
			t.Fatalf("image entry %q leaves the root", h.Name)
		}
		headers[filepath.ToSlash(name)] = h
		if err := extract(filepath.Join(root, name), h, tr); err != nil {
			t.Fatalf("unpack %s: %v", h.Name, err)
		}
	}
	return root, headers
}

func extract(path string, h *tar.Header, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(path, 0o755)
	case tar.TypeReg:
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case tar.TypeSymlink:
		return os.Symlink(h.Linkname, path)
	}
	return nil
}

// checkRuntimeFiles: what FROM scratch gets from the build stage.
func checkRuntimeFiles(t *testing.T, root string, headers map[string]*tar.Header) {
	data := headers["var/lib/slipway"]
	if data == nil || data.Typeflag != tar.TypeDir || data.Uid != 65532 || data.Gid != 65532 {
		t.Errorf("var/lib/slipway: %+v, want a directory owned by 65532:65532", data)
	}
	if tmp := headers["tmp"]; tmp == nil || tmp.Typeflag != tar.TypeDir || tmp.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp: %+v, want a directory with mode 1777", tmp)
	}
	if bin := headers["usr/local/bin/slipway"]; bin == nil || bin.Mode&0o111 == 0 {
		t.Errorf("usr/local/bin/slipway: %+v, want an executable", bin)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if err != nil || !strings.Contains(string(passwd), "slipway:x:65532:65532:slipway:/var/lib/slipway:/sbin/nologin\n") {
		t.Errorf("etc/passwd %q (%v) lacks the slipway user", passwd, err)
	}
	group, err := os.ReadFile(filepath.Join(root, "etc", "group"))
	if err != nil || !strings.Contains(string(group), "slipway:x:65532:\n") {
		t.Errorf("etc/group %q (%v) lacks the slipway group", group, err)
	}
	ca, err := os.ReadFile(filepath.Join(root, "etc", "ssl", "certs", "ca-certificates.crt"))
	if err != nil || !strings.Contains(string(ca), "-----BEGIN CERTIFICATE-----") {
		t.Errorf("etc/ssl/certs/ca-certificates.crt: %d bytes (%v), want the CA bundle", len(ca), err)
	}
	var names []string
	for name := range headers {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{"etc", "etc/group", "etc/passwd", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt",
		"tmp", "usr", "usr/local", "usr/local/bin", "usr/local/bin/slipway", "var", "var/lib", "var/lib/slipway"}
	if !slices.Equal(names, want) {
		t.Errorf("image holds %q, want exactly %q", names, want)
	}
}
