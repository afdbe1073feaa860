package e2e

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// composeEnv is the deploy/.env a user writes, with test values.
var composeEnv = map[string]string{
	"SLIPWAY_SECRET_KEY": "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=", // 32 bytes of 0x5a, a test key only
	"SLIPWAY_API_TOKEN":  "compose-test-token-0123456789abcdef0123",
	"SLIPWAY_PUBLIC_URL": "http://localhost:8080",
	"SLIPWAY_WORKERS":    "1",
	"SLIPWAY_VERSION":    "v0.1.0",
}

// TestComposeTopology loads deploy/compose.yaml as `docker compose` would
// with a filled-in .env, checks what the README promises of it, then runs
// it without a container engine: each service as a process on loopback
// (the slipway binary for Slipway's image, nats-server in process,
// bin/buildkitd for BuildKit), started in depends_on order behind their
// healthchecks. A GitHub push webhook to the `slipway` service is built by
// the `worker` service on the `buildkit` service and pushed to the
// `registry` service, where a read token of the organization pulls it.
func TestComposeTopology(t *testing.T) {
	root := rig.Root(t)
	path := filepath.Join(root, "deploy", "compose.yaml")
	ctx := context.Background()

	t.Run(".env.example lists what a user sets, and unfilled is refused with what to run", func(t *testing.T) {
		example, err := rig.ReadDotEnv(filepath.Join(root, "deploy", ".env.example"))
		if err != nil {
			t.Fatal(err)
		}
		keys := make([]string, 0, len(example))
		for k := range example {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := []string{"SLIPWAY_API_TOKEN", "SLIPWAY_PUBLIC_URL", "SLIPWAY_SECRET_KEY", "SLIPWAY_VERSION", "SLIPWAY_WORKERS"}
		if !slices.Equal(keys, want) {
			t.Errorf(".env.example sets %v, want %v", keys, want)
		}
		_, err = rig.LoadCompose(ctx, path, example)
		if err == nil {
			t.Fatal("compose.yaml loaded with the secrets of .env.example left empty")
		}
		rig.Contains(t, "the error", err.Error(),
			"required variable SLIPWAY_SECRET_KEY is missing a value: set SLIPWAY_SECRET_KEY in deploy/.env; make one with: docker run --rm ghcr.io/slipway-build/slipway:v0.1.0 secrets keygen",
			"required variable SLIPWAY_API_TOKEN is missing a value: set SLIPWAY_API_TOKEN in deploy/.env to at least 32 random characters; make one with: openssl rand -hex 32")
	})

	t.Run("a key Compose does not know is refused", func(t *testing.T) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		bad := strings.Replace(string(raw), "    command: [\"worker\"]\n", "    command: [\"worker\"]\n    replica: 3\n", 1)
		if bad == string(raw) {
			t.Fatal("the worker's command line is not in compose.yaml as the test expects")
		}
		_, err = rig.LoadComposeContent(ctx, path, []byte(bad), composeEnv)
		if err == nil || !strings.Contains(err.Error(), "services.worker.replica") {
			t.Errorf("a misspelt key (replica) was not refused: %v", err)
		}
	})

	p, err := rig.LoadCompose(ctx, path, composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("what users rely on", func(t *testing.T) { checkComposeModel(t, root, p) })
	if t.Failed() {
		t.FailNow()
	}

	c := rig.StartCompose(t, p, rig.ComposeOptions{Env: []string{
		// The test's Git server listens on 127.0.0.2; the registry and
		// the token server are Slipway's own and must need no opening.
		"SLIPWAY_OUTBOUND_ALLOW_CIDRS=127.0.0.2/32",
		"SLIPWAY_LOG_LEVEL=debug",
	}})
	registry := c.Env("slipway", "SLIPWAY_REGISTRY_ADDR")
	if want := c.Addr("registry", 5000); registry != want || c.Env("worker", "SLIPWAY_REGISTRY_ADDR") != want {
		t.Fatalf("the front and the worker push to %s and %s, want the registry service's %s",
			registry, c.Env("worker", "SLIPWAY_REGISTRY_ADDR"), want)
	}
	apiToken := composeEnv["SLIPWAY_API_TOKEN"]
	front := c.Slipway("slipway", apiToken, registry, c.Env("worker", "SLIPWAY_BUILDKIT_ADDR"))
	rig.Login(registry, "admin", apiToken)
	front.PushBusybox()

	git := rig.StartGitServerOn(t, "127.0.0.2")
	src := git.NewRepo(t, "app")
	commit := src.Commit("app", map[string]string{"Dockerfile": dockerfile(registry, "echo built-by-compose > /built.txt")})
	src.Push("main")
	repo := registerRepo(t, front, "acme/app", src.CloneURL, nil)
	if repo.Image != registry+"/acme/app" {
		t.Errorf("image %q, want %q", repo.Image, registry+"/acme/app")
	}
	r := rig.SendGitHub(t, front.URL(), "push", "compose-1", webhookSecret,
		rig.GitHubPush{Repo: "acme/app", CloneURL: src.CloneURL, Ref: "refs/heads/main", After: commit}.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push webhook: %+v", r)
	}
	b := front.WaitBuild(r.Builds[0], 5*time.Minute)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("build: %s (%s)\n%s", b.Status, b.Error, front.Log(b.ID))
	}
	if b.Commit != commit || !slices.Equal(b.Tags, []string{"latest"}) || !strings.HasPrefix(b.Digest, "sha256:") {
		t.Errorf("build %+v: want commit %s, tags [latest], a digest", b, commit)
	}

	t.Run("the worker service built it, not the front", func(t *testing.T) {
		if !hasLine(c.Log("worker"), `msg="build finished"`, "role=worker", "build="+b.ID, "status=succeeded") {
			t.Errorf("the worker's log has no line saying it finished build %s", b.ID)
		}
		if strings.Contains(c.Log("slipway"), `msg="build finished"`) {
			t.Errorf("the slipway service (webhook,api) ran a build")
		}
	})

	for _, args := range [][]string{{"org", "team", "acme", "viewers", "--role", "read", "--members", "alice"}} {
		if out, err := front.CLI(args...); err != nil {
			t.Fatalf("slipway %v: %v\n%s", args, err, out)
		}
	}
	alice := token(t, front, "--org", "acme", "--account", "alice", "--role", "read", "--name", "compose")
	t.Run("a read token pulls the image from the registry service", func(t *testing.T) {
		ref, err := name.ParseReference(registry+"/acme/app:latest", name.StrictValidation)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithAuth(&authn.Basic{Username: "alice", Password: alice}))
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if desc.Digest.String() != b.Digest {
			t.Errorf("registry has %s at acme/app:latest, the build pushed %s", desc.Digest, b.Digest)
		}
		wantCode(t, "anonymous pull of acme/app", getErr(ctx, ref, authn.Anonymous), http.StatusUnauthorized)
	})
	t.Run("docker login localhost:5000, as the README says", func(t *testing.T) {
		// localhost and the registry service's port here: the token realm
		// follows the host the client used.
		host := strings.Replace(registry, "127.0.0.1", "localhost", 1)
		config := t.TempDir()
		if out, err := crane(t, config, "auth", "login", host, "-u", "alice", "-p", alice); err != nil {
			t.Fatalf("crane auth login %s: %v\n%s", host, err, out)
		}
		if out, err := crane(t, config, "digest", host+"/acme/app:latest"); err != nil || out != b.Digest {
			t.Errorf("crane digest = %q, %v; want the build's %s", out, err, b.Digest)
		}
	})
}

// checkComposeModel asserts the parts of the Compose file the README and
// users rely on, written out.
func checkComposeModel(t *testing.T, root string, p *types.Project) {
	const slipwayImage = "ghcr.io/slipway-build/slipway:v0.1.0"
	names := p.ServiceNames()
	sort.Strings(names)
	if want := []string{"buildkit", "nats", "registry", "slipway", "worker"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	for svc, want := range map[string]struct {
		image   string
		command []string
	}{
		"slipway":  {slipwayImage, []string{"webhook,api"}},
		"registry": {slipwayImage, []string{"registry"}},
		"worker":   {slipwayImage, []string{"worker"}},
		"buildkit": {"moby/buildkit:v0.34.2", []string{"--addr", "tcp://0.0.0.0:1234", "--config", "/etc/buildkit/buildkitd.toml"}},
		"nats":     {"nats:2.15-alpine", []string{"-js", "-sd", "/data", "-m", "8222"}},
	} {
		s := p.Services[svc]
		if s.Image != want.image || !slices.Equal([]string(s.Command), want.command) {
			t.Errorf("%s runs %s %q, want %s %q", svc, s.Image, s.Command, want.image, want.command)
		}
	}
	// The images follow go.mod's BuildKit and NATS server.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	rig.Contains(t, "go.mod", string(gomod), "\tgithub.com/moby/buildkit v0.34.2\n", "\tgithub.com/nats-io/nats-server/v2 v2.15.")

	var named []string
	for n := range p.Volumes {
		named = append(named, n)
	}
	sort.Strings(named)
	if want := []string{"buildkit-cache", "nats-data", "registry-data", "slipway-data"}; !slices.Equal(named, want) {
		t.Errorf("named volumes %v, want %v", named, want)
	}
	for svc, want := range map[string]string{
		"nats": "nats-data:/data", "registry": "registry-data:/var/lib/slipway",
		"buildkit": "buildkit-cache:/var/lib/buildkit", "slipway": "slipway-data:/var/lib/slipway",
	} {
		var mounts []string
		for _, v := range p.Services[svc].Volumes {
			mounts = append(mounts, v.Source+":"+v.Target)
		}
		if !slices.Contains(mounts, want) {
			t.Errorf("%s mounts %v, want %s", svc, mounts, want)
		}
	}

	nets := func(svc string) []string {
		var out []string
		for n := range p.Services[svc].Networks {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	for svc, want := range map[string][]string{
		"buildkit": {"build"}, "nats": {"state"}, "slipway": {"front", "state"},
		"registry": {"build", "front", "state"}, "worker": {"build", "state"},
	} {
		if got := nets(svc); !slices.Equal(got, want) {
			t.Errorf("%s is on networks %v, want %v", svc, got, want)
		}
	}
	for _, other := range []string{"nats", "slipway"} {
		for _, n := range nets("buildkit") {
			if slices.Contains(nets(other), n) {
				t.Errorf("buildkit shares network %s with %s: builds would reach it", n, other)
			}
		}
	}
	if !p.Networks["state"].Internal {
		t.Errorf("network state (NATS) is not internal")
	}

	published := map[string][]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			published[name] = append(published[name], port.Published+":"+strconv.FormatUint(uint64(port.Target), 10))
		}
	}
	if want := map[string][]string{"slipway": {"8080:8080"}, "registry": {"5000:5000"}}; !equalPorts(published, want) {
		t.Errorf("published ports %v, want %v", published, want)
	}

	for _, c := range []struct{ svc, key, want string }{
		{"slipway", "SLIPWAY_NATS_URL", "nats://nats:4222"},
		{"slipway", "SLIPWAY_REGISTRY_ADDR", "registry:5000"},
		{"slipway", "SLIPWAY_API_TOKEN", composeEnv["SLIPWAY_API_TOKEN"]},
		{"slipway", "SLIPWAY_SECRET_KEY", composeEnv["SLIPWAY_SECRET_KEY"]},
		{"slipway", "SLIPWAY_PUBLIC_URL", "http://localhost:8080"},
		{"registry", "SLIPWAY_REGISTRY_ADDR", "registry:5000"},
		{"registry", "SLIPWAY_REGISTRY_LISTEN", ":5000"},
		{"registry", "SLIPWAY_API_TOKEN", composeEnv["SLIPWAY_API_TOKEN"]},
		{"registry", "SLIPWAY_SECRET_KEY", composeEnv["SLIPWAY_SECRET_KEY"]},
		{"worker", "SLIPWAY_REGISTRY_ADDR", "registry:5000"},
		{"worker", "SLIPWAY_BUILDKIT_ADDR", "tcp://buildkit:1234"},
		{"worker", "SLIPWAY_SECRET_KEY", composeEnv["SLIPWAY_SECRET_KEY"]},
		{"worker", "SLIPWAY_WORKERS", "1"},
	} {
		v := p.Services[c.svc].Environment[c.key]
		if v == nil || *v != c.want {
			t.Errorf("%s: %s = %v, want %q", c.svc, c.key, v, c.want)
		}
	}
	rig.Contains(t, "buildkitd.toml", p.Configs["buildkitd"].Content, "[registry.\"registry:5000\"]\n  http = true\n")
}

func equalPorts(got, want map[string][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			return false
		}
	}
	return true
}

// hasLine reports whether one line of log holds every part.
func hasLine(log string, parts ...string) bool {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		ok := true
		for _, p := range parts {
			if !strings.Contains(sc.Text(), p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
