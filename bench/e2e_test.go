package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// e2eSamples is how many samples each contender takes, warm and cold.
const e2eSamples = 7

const e2eSecret = "bench-e2e-webhook-secret"

// e2eRig is the parts every contender shares: one Slipway (its embedded
// buildkitd and registry are the by-hand runs' too), a Git server with
// one busybox repository, and a deploy-hook receiver.
type e2eRig struct {
	b         *testing.B
	s         *rig.Slipway
	src       *rig.Repo
	recv      *rig.Receiver
	buildctl  string
	buildx    string // "" when buildx could not be built
	buildxErr string
	env       []string // DOCKER_CONFIG and BUILDX_CONFIG for the CLIs
	pushes    int
	exports   int // cache exports seen in Slipway's log; -1: it exports inside the build
}

// sample is one timed run; stages is Slipway's breakdown (ms by stage).
type sample struct {
	total  time.Duration
	stages map[string]float64
}

// BenchmarkEndToEnd measures sections 1 and 2 of issue 13: webhook sent →
// deploy webhook received, against `git clone --depth 1` + `buildctl build
// push=true` by hand and against `buildx build --push` (remote driver),
// on the same buildkitd and registry, warm and cold.
func BenchmarkEndToEnd(b *testing.B) {
	r := startE2E(b)
	contenders := []string{"slipway", "byhand", "solve"}
	if r.buildx != "" {
		contenders = append(contenders, "buildx")
	}
	for _, c := range contenders { // warm-up: the first build of each pays for starting up
		r.run(c)
	}
	warm, cold := map[string][]sample{}, map[string][]sample{}
	for i := 0; i < e2eSamples; i++ {
		for j := range contenders { // interleaved, the order turned each round
			c := contenders[(i+j)%len(contenders)]
			warm[c] = append(warm[c], r.run(c))
		}
	}
	for i := 0; i < e2eSamples; i++ {
		for j := range contenders {
			c := contenders[(i+j)%len(contenders)]
			r.prune()
			cold[c] = append(cold[c], r.run(c))
		}
	}
	r.report(warm, cold)
}

func startE2E(b *testing.B) *e2eRig {
	r := &e2eRig{b: b}
	r.buildctl = goBuild(b, "github.com/moby/buildkit/cmd/buildctl")
	if path, err := tryGoBuild(b, "github.com/docker/buildx/cmd/buildx"); err != nil {
		r.buildxErr = err.Error()
	} else {
		r.buildx = path
	}
	r.recv = rig.StartReceiver(b, 0)
	r.s = rig.StartSlipway(b, rig.Options{})
	r.s.PushBusybox()
	git := rig.StartGitServer(b)
	r.src = git.NewRepo(b, "demo")
	r.src.Commit("base", map[string]string{
		"Dockerfile": fmt.Sprintf("FROM %s/library/busybox:latest\nCOPY . /app\n", r.s.RegistryAddr),
		"app.txt":    "0\n",
	})
	r.src.Push("main")
	var repo model.Repo
	code := r.s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: "acme/demo", CloneURL: r.src.CloneURL, WebhookSecret: e2eSecret,
		Image: r.s.RegistryAddr + "/acme/demo",
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}, Dockerfile: "Dockerfile", Context: "."}},
		Hooks: []model.Hook{{URL: r.recv.URL + "/deploy", Secret: deploy.GenerateSecret()}},
	}, &repo)
	if code != http.StatusCreated {
		b.Fatalf("register repository: HTTP %d", code)
	}
	r.settle(repo.ID)
	r.env = r.cliConfig()
	return r
}

// settle waits for the builds registration started to end.
func (r *e2eRig) settle(repoID string) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var builds []model.Build
		r.s.Do("GET", "/api/v1/builds?repo="+repoID, nil, &builds)
		if !slices.ContainsFunc(builds, func(b model.Build) bool { return !model.Terminal(b.Status) }) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.b.Fatal("registration's builds did not end within 2 minutes")
}

// cliConfig logs buildctl and buildx in to the embedded registry as the
// rig does (admin, the API token), and creates buildx's remote builder on
// Slipway's own buildkitd.
func (r *e2eRig) cliConfig() []string {
	dir := r.b.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("admin:" + r.s.Token))
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{r.s.RegistryAddr: map[string]string{"auth": auth}}})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		r.b.Fatal(err)
	}
	env := append(os.Environ(), "DOCKER_CONFIG="+dir, "BUILDX_CONFIG="+filepath.Join(dir, "buildx"))
	if r.buildx != "" {
		out, err := command(env, "", r.buildx, "create", "--name", "bench", "--driver", "remote", r.s.BuildkitAddr())
		if err != nil {
			r.buildxErr, r.buildx = fmt.Sprintf("buildx create --driver remote: %v: %s", err, out), ""
		}
	}
	return env
}

// commit pushes a new commit that changes one file.
func (r *e2eRig) commit() string {
	r.pushes++
	c := r.src.Commit(fmt.Sprintf("change %d", r.pushes), map[string]string{"app.txt": fmt.Sprintf("%d %d\n", r.pushes, time.Now().UnixNano())})
	r.src.Push("main")
	return c
}

// run takes one sample of contender c on a commit of its own, so no
// contender builds on another's cache of the same content.
func (r *e2eRig) run(c string) sample {
	commit := r.commit()
	switch c {
	case "slipway":
		return r.slipway(commit)
	case "byhand":
		return r.byHand(commit, false)
	case "buildx":
		return r.byHand(commit, true)
	default:
		return r.solve(commit)
	}
}

// slipway times the signed push webhook → the deploy webhook for commit.
func (r *e2eRig) slipway(commit string) sample {
	push := rig.GitHubPush{Repo: "acme/demo", CloneURL: r.src.CloneURL, Ref: "refs/heads/main", After: commit, Message: "change", Files: []string{"app.txt"}}
	start := time.Now()
	resp := rig.SendGitHub(r.b, r.s.URL(), "push", "delivery-"+commit, e2eSecret, push.Payload())
	if resp.Code != http.StatusAccepted || len(resp.Builds) != 1 {
		r.b.Fatalf("push webhook: %+v", resp)
	}
	got := r.waitHook(commit)
	build := r.s.WaitBuild(resp.Builds[0], time.Minute)
	if build.Status != model.StatusSucceeded {
		r.b.Fatalf("build %s %s: %s\n%s", build.ID, build.Status, build.Error, r.s.Log(build.ID))
	}
	out := sample{total: got.Sub(start), stages: slipwayStages(start, got, build, r.s.Log(build.ID))}
	if took, ok := r.waitCacheExport(); ok {
		out.stages["export-after"] = took
	}
	return out
}

var exportedRE = regexp.MustCompile(`registry cache exported.* took=([0-9.]+)(ms|s|µs)`)

// waitCacheExport waits for the registry cache export a worker runs after
// the deploy hooks are queued, so that it does not overlap the next
// sample, and returns how long it took (ms). Without such an export (a
// Slipway that exports inside the build) it reports false at once after
// the first try.
func (r *e2eRig) waitCacheExport() (float64, bool) {
	if r.exports < 0 {
		return 0, false
	}
	limit := 30 * time.Second
	if r.exports == 0 {
		limit = 5 * time.Second
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		raw, _ := os.ReadFile(r.s.LogPath)
		m := exportedRE.FindAllStringSubmatch(string(raw), -1)
		if failed := strings.Count(string(raw), "export the registry cache after the build"); failed > 0 {
			r.b.Fatalf("a cache export failed: see %s", r.s.LogPath)
		}
		if len(m) > r.exports {
			r.exports = len(m)
			v, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
			switch m[len(m)-1][2] {
			case "s":
				v *= 1000
			case "µs":
				v /= 1000
			}
			return v, true
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r.exports == 0 {
		r.exports = -1
		return 0, false
	}
	r.b.Fatalf("no registry cache export logged within %s", limit)
	return 0, false
}

// waitHook is when the deploy webhook for commit arrived.
func (r *e2eRig) waitHook(commit string) time.Time {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		for _, call := range r.recv.Calls() {
			var p struct {
				Build struct{ Commit string } `json:"build"`
			}
			if json.Unmarshal(call.Body, &p) == nil && p.Build.Commit == commit {
				return call.At
			}
		}
		time.Sleep(time.Millisecond)
	}
	r.b.Fatalf("no deploy webhook for %s within 2 minutes", commit)
	return time.Time{}
}

// byHand times `git clone --depth 1` and buildctl (or buildx) pushing the
// image, as a person would type them.
func (r *e2eRig) byHand(commit string, buildx bool) sample {
	dir := filepath.Join(r.b.TempDir(), "src")
	ref := r.s.RegistryAddr + "/acme/demo:byhand"
	start := time.Now()
	if out, err := command(r.env, "", "git", "clone", "-q", "--depth", "1", r.src.CloneURL, dir); err != nil {
		r.b.Fatalf("git clone: %v: %s", err, out)
	}
	args := []string{r.buildctl, "--addr", r.s.BuildkitAddr(), "build", "--frontend", "dockerfile.v0",
		"--local", "context=.", "--local", "dockerfile=.", "--output", "type=image,name=" + ref + ",push=true"}
	if buildx {
		ref = r.s.RegistryAddr + "/acme/demo:buildx"
		args = []string{r.buildx, "build", "--builder", "bench", "--push", "--provenance=false", "-t", ref, "."}
	}
	if out, err := command(r.env, dir, args[0], args[1:]...); err != nil {
		r.b.Fatalf("%s: %v: %s", args[0], err, out)
	}
	took := time.Since(start)
	if head, _ := command(nil, dir, "git", "rev-parse", "HEAD"); strings.TrimSpace(head) != commit {
		r.b.Fatalf("by hand cloned %s, want %s", head, commit)
	}
	return sample{total: took}
}

// solve times BuildKit alone: one builder.Client.Build of the commit's
// checkout, pushed, with no registry cache: the floor under every
// contender.
func (r *e2eRig) solve(commit string) sample {
	dir := filepath.Join(r.b.TempDir(), "src")
	if out, err := command(nil, "", "git", "clone", "-q", "--depth", "1", r.src.CloneURL, dir); err != nil {
		r.b.Fatalf("git clone: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log bytes.Buffer
	start := time.Now()
	_, err := builder.Client{Addr: r.s.BuildkitAddr()}.Build(ctx, builder.Request{
		ContextDir: dir, Dockerfile: filepath.Join(dir, "Dockerfile"), Refs: []string{r.s.RegistryAddr + "/acme/demo:solve"}, Push: true,
		Credentials: func(string) (string, string) { return "admin", r.s.Token },
	}, &log)
	if err != nil {
		r.b.Fatalf("solve %s: %v\n%s", commit, err, log.String())
	}
	return sample{total: time.Since(start)}
}

// prune empties the daemon's cache, as `buildctl prune --all` does: the
// next build starts cold (a new worker, or one whose cache was collected).
func (r *e2eRig) prune() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := (builder.Client{Addr: r.s.BuildkitAddr()}).Prune(ctx); err != nil {
		r.b.Fatal(err)
	}
}

var (
	stagesRE = regexp.MustCompile(`==> stages: (.*)`)
	stageRE  = regexp.MustCompile(`([a-z]+) ([0-9.]+)ms`)
	vertexRE = regexp.MustCompile(`(?m)^#(\d+) (.*)$`)
	doneRE   = regexp.MustCompile(`^DONE ([0-9.]+)s$`)
)

// slipwayStages splits one Slipway run into stages (ms): ingest (webhook
// sent → build stored), queue (stored → claimed), the worker's stages
// from its log, the registry cache's import and export inside the build,
// finish (last stage → record final) and notify (final → hook received).
func slipwayStages(sent, received time.Time, b model.Build, log string) map[string]float64 {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	out := map[string]float64{"ingest": ms(b.CreatedAt.Sub(sent))}
	if b.StartedAt == nil || b.FinishedAt == nil {
		return out
	}
	out["queue"] = ms(b.StartedAt.Sub(b.CreatedAt))
	worked := 0.0
	if m := stagesRE.FindStringSubmatch(log); m != nil {
		for _, s := range stageRE.FindAllStringSubmatch(m[1], -1) {
			v, _ := strconv.ParseFloat(s[2], 64)
			out[s[1]] += v
			worked += v
		}
	}
	for name, v := range cacheSteps(log) {
		out[name] = v
	}
	out["finish"] = ms(b.FinishedAt.Sub(*b.StartedAt)) - worked
	out["notify"] = ms(received.Sub(*b.FinishedAt))
	return out
}

// cacheSteps reads BuildKit's plain progress for the registry cache's
// import and export steps and how long each took (ms).
func cacheSteps(log string) map[string]float64 {
	names, out := map[string]string{}, map[string]float64{}
	for _, m := range vertexRE.FindAllStringSubmatch(log, -1) {
		id, text := m[1], m[2]
		if _, ok := names[id]; !ok {
			names[id] = text
			continue
		}
		d := doneRE.FindStringSubmatch(text)
		if d == nil {
			continue
		}
		v, _ := strconv.ParseFloat(d[1], 64)
		switch name := names[id]; {
		case strings.HasPrefix(name, "exporting cache"):
			out["cache-export"] += v * 1000
		case strings.HasPrefix(name, "importing cache"):
			out["cache-import"] += v * 1000
		}
	}
	return out
}

// goBuild builds a tool of the module into a temporary directory.
func goBuild(b *testing.B, pkg string) string {
	path, err := tryGoBuild(b, pkg)
	if err != nil {
		b.Fatal(err)
	}
	return path
}

func tryGoBuild(b *testing.B, pkg string) (string, error) {
	path := filepath.Join(b.TempDir(), filepath.Base(pkg))
	if out, err := command(nil, "", "go", "build", "-o", path, pkg); err != nil {
		return "", fmt.Errorf("go build %s: %v: %s", pkg, err, out)
	}
	return path, nil
}

// command runs name and returns its combined output.
func command(env []string, dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...) // #nosec G204 -- the benchmark's own tools and arguments
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}
