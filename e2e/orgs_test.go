package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// crane runs the real crane CLI (go-containerregistry's, a tool in go.mod)
// with its own Docker config dir, as a user's `docker login` keeps one.
func crane(t *testing.T, config string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"tool", "crane"}, args...)...)
	cmd.Dir = rig.Root(t)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+config)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// token issues a token through `slipway token create` and returns its text,
// the first line of the output.
func token(t *testing.T, s *rig.Slipway, args ...string) string {
	t.Helper()
	out, err := s.CLI(append([]string{"token", "create"}, args...)...)
	if err != nil {
		t.Fatalf("slipway token create %v: %v\n%s", args, err, out)
	}
	text, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(text, "slp_") {
		t.Fatalf("slipway token create printed %q", out)
	}
	return text
}

// TestPrivateImagesWithOrganizationTokens: an organization's image is
// private; `crane auth login` with a read token of the organization pulls
// it, without a token or with another organization's token the registry
// refuses; a public repository's image is pulled by anyone; builds still
// push.
func TestPrivateImagesWithOrganizationTokens(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "app")
	commit := src.Commit("app", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo private > /built.txt")})
	src.Push("main")
	repo := registerRepo(t, s, "acme/app", src.CloneURL, nil)
	r := rig.SendGitHub(t, s.URL(), "push", "orgs-1", webhookSecret, rig.GitHubPush{Repo: "acme/app", Ref: "refs/heads/main", After: commit}.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push: %+v", r)
	}
	b := s.WaitBuild(r.Builds[0], 5*time.Minute)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("build: %s (%s)\n%s", b.Status, b.Error, s.Log(b.ID))
	}

	for _, args := range [][]string{
		{"org", "team", "acme", "viewers", "--role", "read", "--members", "alice"},
		{"org", "create", "other", "--owners", "dave"},
	} {
		if out, err := s.CLI(args...); err != nil {
			t.Fatalf("slipway %v: %v\n%s", args, err, out)
		}
	}
	alice := token(t, s, "--org", "acme", "--account", "alice", "--role", "read", "--name", "pull")
	dave := token(t, s, "--org", "other", "--account", "dave", "--role", "admin", "--name", "other")
	image := repo.Image + ":latest"

	t.Run("crane auth login and pull with a read token", func(t *testing.T) {
		config := t.TempDir()
		if out, err := crane(t, config, "auth", "login", s.RegistryAddr, "-u", "alice", "-p", alice); err != nil {
			t.Fatalf("crane auth login: %v\n%s", err, out)
		}
		if out, err := crane(t, config, "pull", image, filepath.Join(t.TempDir(), "app.tar")); err != nil {
			t.Fatalf("crane pull: %v\n%s", err, out)
		}
		if out, err := crane(t, config, "digest", image); err != nil || out != b.Digest {
			t.Errorf("crane digest = %q, %v; want the build's %s", out, err, b.Digest)
		}
		out, err := crane(t, config, "delete", image)
		if err == nil || !strings.Contains(out, "UNAUTHORIZED: authentication required; [map[Action:delete") {
			t.Errorf("a read token deleted the image: %v\n%s", err, out)
		}
	})
	ref, err := name.ParseReference(image, name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Run("without a token", func(t *testing.T) {
		out, err := crane(t, t.TempDir(), "pull", image, filepath.Join(t.TempDir(), "app.tar"))
		if err == nil || !strings.Contains(out, "UNAUTHORIZED: authentication required") {
			t.Errorf("anonymous crane pull: %v\n%s", err, out)
		}
		wantCode(t, "anonymous pull", getErr(ctx, ref, authn.Anonymous), http.StatusUnauthorized)
	})
	t.Run("with another organization's token", func(t *testing.T) {
		wantCode(t, "dave's pull of acme/app", getErr(ctx, ref, &authn.Basic{Username: "dave", Password: dave}), http.StatusForbidden)
	})
	t.Run("with a token under another account's name", func(t *testing.T) {
		wantCode(t, "alice's token as bob", getErr(ctx, ref, &authn.Basic{Username: "bob", Password: alice}), http.StatusUnauthorized)
	})
	t.Run("a public repository is pulled by anyone", func(t *testing.T) {
		if code := s.Do("PATCH", "/api/v1/repos/"+repo.ID, map[string]any{"public": true}, nil); code != http.StatusOK {
			t.Fatalf("make acme/app public: HTTP %d", code)
		}
		if _, err := remote.Get(ref, remote.WithContext(ctx)); err != nil {
			t.Errorf("anonymous pull of a public image: %v", err)
		}
	})
	t.Run("a revoked token logs in no more", func(t *testing.T) {
		id := strings.Split(alice, "_")[1]
		if out, err := s.CLI("token", "revoke", id); err != nil {
			t.Fatalf("slipway token revoke: %v\n%s", err, out)
		}
		// crane auth login only stores the credentials; the pull uses them.
		config := t.TempDir()
		if out, err := crane(t, config, "auth", "login", s.RegistryAddr, "-u", "alice", "-p", alice); err != nil {
			t.Fatalf("crane auth login: %v\n%s", err, out)
		}
		out, err := crane(t, config, "pull", image, filepath.Join(t.TempDir(), "app.tar"))
		if err == nil || !strings.Contains(out, "UNAUTHORIZED: authentication failed") {
			t.Errorf("crane pull with a revoked token: %v\n%s", err, out)
		}
		wantCode(t, "pull with a revoked token", getErr(ctx, ref, &authn.Basic{Username: "alice", Password: alice}), http.StatusUnauthorized)
	})
}
