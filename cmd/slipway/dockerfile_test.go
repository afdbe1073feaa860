package main

// The root Dockerfile builds this command, stamps this package's version
// and commit, and runs its healthcheck subcommand, so its static checks
// live here. e2e/selfbuild_test.go builds it for real.

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// image is the Dockerfile as a build with buildArgs sees it: parsed with
// BuildKit's own parser, every stage's instructions expanded in order with
// the ARG and ENV values in scope (global ARGs, then the stage's own, a
// build arg winning over a default). env holds each stage's variables at
// its end.
type image struct {
	stages []instructions.Stage
	meta   []string // global ARGs as written: NAME or NAME=default
	env    map[string]map[string]string
}

// dockerfile parses ../../Dockerfile and fails on anything BuildKit's
// parse-time checks warn about.
func dockerfile(t *testing.T, buildArgs map[string]string) image {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile line %d: %s", w.Location.Start.Line, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		t.Errorf("Dockerfile check %s at line %d: %s", rule, loc[0].Start.Line, msg)
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	img := image{stages: stages, env: map[string]map[string]string{}}
	global := map[string]string{}
	for _, c := range metaArgs {
		img.meta = append(img.meta, argText(c)...)
		declare(t, &c, global, global, buildArgs)
	}
	for _, s := range stages {
		env := map[string]string{}
		for _, c := range s.Commands {
			switch c := c.(type) {
			case *instructions.ArgCommand:
				declare(t, c, env, global, buildArgs)
				continue
			case *instructions.EnvCommand:
				expand(t, c, env)
				for _, kv := range c.Env {
					env[kv.Key] = kv.Value
				}
				continue
			}
			expand(t, c, env)
		}
		img.env[s.Name] = env
	}
	return img
}

// declare puts an ARG's value in env: the build arg, else the default
// expanded with env, else the global ARG's value.
func declare(t *testing.T, c *instructions.ArgCommand, env, global, buildArgs map[string]string) {
	t.Helper()
	for _, a := range c.Args {
		v, ok := buildArgs[a.Key]
		switch {
		case ok:
		case a.Value != nil:
			v = word(t, *a.Value, env)
		default:
			v = global[a.Key]
		}
		env[a.Key] = v
	}
}

func expand(t *testing.T, c instructions.Command, env map[string]string) {
	t.Helper()
	e, ok := c.(instructions.SupportsSingleWordExpansion)
	if !ok {
		return
	}
	if err := e.Expand(func(w string) (string, error) { return word(t, w, env), nil }); err != nil {
		t.Fatalf("expand %s: %v", c.Name(), err)
	}
}

func word(t *testing.T, w string, env map[string]string) string {
	t.Helper()
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	out, _, err := shell.NewLex('\\').ProcessWord(w, shell.EnvsFromSlice(kv))
	if err != nil {
		t.Fatalf("expand %q: %v", w, err)
	}
	return out
}

func argText(c instructions.ArgCommand) []string {
	var out []string
	for _, a := range c.Args {
		v := a.Key
		if a.Value != nil {
			v += "=" + *a.Value
		}
		out = append(out, v)
	}
	return out
}

// commands are a stage's instructions of type T, in order.
func commands[T instructions.Command](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func stage(t *testing.T, stages []instructions.Stage, name string) instructions.Stage {
	t.Helper()
	for _, s := range stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stage %q", name)
	return instructions.Stage{}
}

// copies lists a stage's COPY instructions as "--from=X src... -> dest".
func copies(s instructions.Stage) []string {
	var out []string
	for _, c := range commands[*instructions.CopyCommand](s) {
		line := "--from=" + c.From + " " + strings.Join(c.SourcePaths, " ") + " -> " + c.DestPath
		if c.Chown != "" {
			line += " chown " + c.Chown
		}
		out = append(out, line)
	}
	return out
}

func envOf(s instructions.Stage) map[string]string {
	env := map[string]string{}
	for _, c := range commands[*instructions.EnvCommand](s) {
		for _, kv := range c.Env {
			env[kv.Key] = kv.Value
		}
	}
	return env
}

func labelsOf(s instructions.Stage) map[string]string {
	labels := map[string]string{}
	for _, c := range commands[*instructions.LabelCommand](s) {
		for _, kv := range c.Labels {
			labels[kv.Key] = kv.Value
		}
	}
	return labels
}

func runs(s instructions.Stage) []string {
	var out []string
	for _, c := range commands[*instructions.RunCommand](s) {
		out = append(out, strings.Join(c.CmdLine, " "))
	}
	return out
}

// release is what Slipway passes when a tag rule builds v1.4.0.
var release = map[string]string{"SOURCE_COMMIT": "0123456789abcdef0123456789abcdef01234567", "DOCKER_TAG": "v1.4.0"}

func TestDockerfileStages(t *testing.T) {
	img := dockerfile(t, nil)
	var names, bases []string
	for _, s := range img.stages {
		names, bases = append(names, s.Name), append(bases, s.BaseName)
	}
	if want := []string{"build", "tools", "all-in-one", "slipway"}; !slices.Equal(names, want) {
		t.Errorf("stages %q, want %q (the default image last)", names, want)
	}
	if want := []string{"golang:1.26", "golang:1.26", "debian:trixie-slim", "scratch"}; !slices.Equal(bases, want) {
		t.Errorf("bases %q, want %q", bases, want)
	}
	// Slipway passes SOURCE_COMMIT and DOCKER_TAG to a Dockerfile that
	// declares them (worker/pipeline.go buildArgs).
	if want := []string{`SOURCE_COMMIT=""`, `DOCKER_TAG=""`, "VERSION=${DOCKER_TAG:-dev}"}; !slices.Equal(img.meta, want) {
		t.Errorf("global ARGs %q, want %q", img.meta, want)
	}
}

func TestDockerfileBuildStage(t *testing.T) {
	img := dockerfile(t, release)
	build := stage(t, img.stages, "build")
	cmds := commands[*instructions.RunCommand](build)
	if len(cmds) != 2 {
		t.Fatalf("build stage has %d RUNs, want 2 (the runtime's files, the build): %q", len(cmds), runs(build))
	}
	goBuild := cmds[1]
	want := `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${SOURCE_COMMIT}" -o /out/slipway ./cmd/slipway`
	if got := strings.Join(strings.Fields(strings.Join(goBuild.CmdLine, " ")), " "); got != want {
		t.Errorf("build command:\n%s\nwant\n%s", got, want)
	}
	// The shell of that RUN sees these values.
	if env := img.env["build"]; env["VERSION"] != "v1.4.0" || env["SOURCE_COMMIT"] != "0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("build stage's VERSION=%q SOURCE_COMMIT=%q, want v1.4.0 and the commit", env["VERSION"], env["SOURCE_COMMIT"])
	}
	var targets []string
	for _, m := range instructions.GetMounts(goBuild) {
		targets = append(targets, string(m.Type)+":"+m.Target)
	}
	if want := []string{"cache:/go/pkg/mod", "cache:/root/.cache/go-build"}; !slices.Equal(targets, want) {
		t.Errorf("go build mounts %q, want %q", targets, want)
	}
	// The variables -X sets must be this package's, or the stamp is
	// silently dropped.
	version, commit = "v1.4.0", "0123456789abcdef0123456789abcdef01234567"
	if got := versionLine(nil, false); got != "slipway v1.4.0 commit 0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("a stamped build prints %q", got)
	}
	version, commit = "dev", ""

	rootfs := runs(build)[0]
	for _, want := range []string{
		`slipway:x:65532:65532:slipway:/var/lib/slipway:/sbin/nologin`,
		`slipway:x:65532:`,
		`chown 65532:65532 /rootfs/var/lib/slipway`,
		`chmod 1777 /rootfs/tmp`,
	} {
		if !strings.Contains(rootfs, want) {
			t.Errorf("the runtime's files lack %q:\n%s", want, rootfs)
		}
	}
}

func TestDockerfileVersion(t *testing.T) {
	tests := []struct {
		name              string
		args              map[string]string
		version, revision string
	}{
		{"docker build without arguments", nil, "dev", ""},
		{"Slipway building tag v1.4.0", release, "v1.4.0", "0123456789abcdef0123456789abcdef01234567"},
		{"Slipway building a branch to latest", map[string]string{"SOURCE_COMMIT": "89abcdef0123456789abcdef0123456789abcdef", "DOCKER_TAG": "latest"}, "latest", "89abcdef0123456789abcdef0123456789abcdef"},
		{"a rule's VERSION build arg", map[string]string{"DOCKER_TAG": "latest", "VERSION": "1.4.0-rc.1"}, "1.4.0-rc.1", ""},
	}
	for _, tt := range tests {
		img := dockerfile(t, tt.args)
		if env := img.env["build"]; env["VERSION"] != tt.version || env["SOURCE_COMMIT"] != tt.revision {
			t.Errorf("%s: go build gets VERSION=%q SOURCE_COMMIT=%q, want %q and %q", tt.name, env["VERSION"], env["SOURCE_COMMIT"], tt.version, tt.revision)
		}
		for _, name := range []string{"slipway", "all-in-one"} {
			labels := labelsOf(stage(t, img.stages, name))
			if labels["org.opencontainers.image.version"] != tt.version || labels["org.opencontainers.image.revision"] != tt.revision {
				t.Errorf("%s: %s image's version label %q and revision %q, want %q and %q", tt.name, name,
					labels["org.opencontainers.image.version"], labels["org.opencontainers.image.revision"], tt.version, tt.revision)
			}
		}
	}
}

// checkLabels: the OCI labels both images carry, as a build of release
// writes them.
func checkLabels(t *testing.T, s instructions.Stage, title string) {
	t.Helper()
	got := labelsOf(s)
	if got["org.opencontainers.image.description"] == "" {
		t.Errorf("%s: no description label", s.Name)
	}
	delete(got, "org.opencontainers.image.description")
	want := map[string]string{
		"org.opencontainers.image.title":    title,
		"org.opencontainers.image.source":   "https://github.com/slipway-build/slipway",
		"org.opencontainers.image.licenses": "NOASSERTION",
		"org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
		"org.opencontainers.image.version":  "v1.4.0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s labels %v, want %v", s.Name, got, want)
	}
}

func checkRuntime(t *testing.T, s instructions.Stage, cmd string) {
	t.Helper()
	hc := commands[*instructions.HealthCheckCommand](s)
	if len(hc) != 1 || !slices.Equal(hc[0].Health.Test, []string{"CMD", "/usr/local/bin/slipway", "healthcheck"}) {
		t.Errorf("%s: HEALTHCHECK %+v, want CMD /usr/local/bin/slipway healthcheck", s.Name, hc)
	}
	ep := commands[*instructions.EntrypointCommand](s)
	if len(ep) != 1 || ep[0].PrependShell || !slices.Equal(ep[0].CmdLine, []string{"/usr/local/bin/slipway"}) {
		t.Errorf("%s: ENTRYPOINT %+v, want [\"/usr/local/bin/slipway\"]", s.Name, ep)
	}
	c := commands[*instructions.CmdCommand](s)
	if len(c) != 1 || c[0].PrependShell || !slices.Equal(c[0].CmdLine, []string{cmd}) {
		t.Errorf("%s: CMD %+v, want [%q]", s.Name, c, cmd)
	}
	vol := commands[*instructions.VolumeCommand](s)
	if len(vol) != 1 || !slices.Equal(vol[0].Volumes, []string{"/var/lib/slipway"}) {
		t.Errorf("%s: VOLUME %+v, want /var/lib/slipway", s.Name, vol)
	}
	if got := envOf(s)["SLIPWAY_DATA_DIR"]; got != "/var/lib/slipway" {
		t.Errorf("%s: SLIPWAY_DATA_DIR=%q, want /var/lib/slipway", s.Name, got)
	}
	checkLabels(t, s, map[string]string{"slipway": "Slipway", "all-in-one": "Slipway (all-in-one)"}[s.Name])
}

func TestDockerfileDefaultImage(t *testing.T) {
	img := dockerfile(t, release)
	last := img.stages[len(img.stages)-1]
	if last.Name != "slipway" || last.BaseName != "scratch" {
		t.Fatalf("last stage %q FROM %q, want slipway FROM scratch", last.Name, last.BaseName)
	}
	checkRuntime(t, last, "help")
	users := commands[*instructions.UserCommand](last)
	if len(users) != 1 || users[0].User != "65532:65532" {
		t.Errorf("USER %+v, want 65532:65532", users)
	}
	if want := []string{
		"--from=build /etc/ssl/certs/ca-certificates.crt -> /etc/ssl/certs/ca-certificates.crt",
		"--from=build /rootfs/ -> /",
		"--from=build /out/slipway -> /usr/local/bin/slipway",
	}; !slices.Equal(copies(last), want) {
		t.Errorf("COPYs\n%q\nwant\n%q", copies(last), want)
	}
	if ex := commands[*instructions.ExposeCommand](last); len(ex) != 1 || !slices.Equal(ex[0].Ports, []string{"8080"}) {
		t.Errorf("EXPOSE %+v, want 8080", ex)
	}
	if runs := runs(last); len(runs) != 0 {
		t.Errorf("a FROM scratch stage cannot RUN: %q", runs)
	}
}

func TestDockerfileAllInOne(t *testing.T) {
	img := dockerfile(t, release)
	aio := stage(t, img.stages, "all-in-one")
	checkRuntime(t, aio, "serve")
	if users := commands[*instructions.UserCommand](aio); len(users) != 0 {
		t.Errorf("all-in-one runs as root (BuildKit, the build network), has USER %+v", users)
	}
	if want := []string{
		"--from=tools /out/buildkitd /out/runc -> /usr/local/bin/",
		"--from=tools /out/cni/ -> /usr/local/lib/slipway/cni/",
		"--from=build /out/slipway -> /usr/local/bin/slipway",
	}; !slices.Equal(copies(aio), want) {
		t.Errorf("COPYs\n%q\nwant\n%q", copies(aio), want)
	}
	env := envOf(aio)
	if env["SLIPWAY_CNI_DIR"] != "/usr/local/lib/slipway/cni" || env["SLIPWAY_REGISTRY_ADDR"] != ":5000" {
		t.Errorf("env %v, want SLIPWAY_CNI_DIR=/usr/local/lib/slipway/cni and SLIPWAY_REGISTRY_ADDR=:5000", env)
	}
	if ex := commands[*instructions.ExposeCommand](aio); len(ex) != 1 || !slices.Equal(ex[0].Ports, []string{"5000", "8080"}) { // BuildKit sorts them
		t.Errorf("EXPOSE %+v, want 5000 and 8080", ex)
	}
	install := strings.Fields(strings.Join(runs(aio), " "))
	for _, pkg := range []string{"ca-certificates", "git", "iptables", "libseccomp2"} {
		if !slices.Contains(install, pkg) {
			t.Errorf("all-in-one does not install %s: %q", pkg, runs(aio))
		}
	}
}

// TestDockerfileToolsMatchMakefile: the tools stage builds buildkitd, runc
// and the CNI plugins with the Makefile's commands, so both use go.mod's
// pinned versions and runc's seccomp support.
func TestDockerfileToolsMatchMakefile(t *testing.T) {
	img := dockerfile(t, nil)
	tools := stage(t, img.stages, "tools")
	run := strings.Join(strings.Fields(strings.Join(runs(tools), " ")), " ")
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"CGO_ENABLED=1 go build -tags seccomp -o /out/runc github.com/opencontainers/runc",
		"go build -o /out/buildkitd github.com/moby/buildkit/cmd/buildkitd",
		"go build -o /out/cni/ github.com/containernetworking/plugins/plugins/main/bridge " +
			"github.com/containernetworking/plugins/plugins/main/loopback " +
			"github.com/containernetworking/plugins/plugins/ipam/host-local " +
			"github.com/containernetworking/plugins/plugins/meta/firewall",
		"libseccomp-dev",
	} {
		if !strings.Contains(run, want) {
			t.Errorf("tools stage lacks %q:\n%s", want, run)
		}
	}
	for _, want := range []string{
		"CGO_ENABLED=1 $(GO) build -tags seccomp -o $(BIN)/runc github.com/opencontainers/runc",
		"$(GO) build -o $(BIN)/buildkitd github.com/moby/buildkit/cmd/buildkitd",
		"$(GO) build -o $(BIN)/cni/ $(CNI_PLUGINS)",
		"CNI_PLUGINS := $(addprefix github.com/containernetworking/plugins/plugins/,main/bridge main/loopback ipam/host-local meta/firewall)",
	} {
		if !strings.Contains(string(makefile), want) {
			t.Errorf("the Makefile's tools target changed (%q is gone): change the Dockerfile's tools stage with it", want)
		}
	}
	if got := copies(tools); !slices.Equal(got, []string{"--from= go.mod go.sum -> ./"}) {
		t.Errorf("tools stage copies %q, want only go.mod and go.sum (the tools do not change with Slipway's code)", got)
	}
}
