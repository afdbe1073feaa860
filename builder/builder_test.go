package builder_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/e2e/rig"
)

// env is one buildkitd and one registry shared by the build tests, with the
// busybox base image already pushed: starting them is most of the cost.
type env struct {
	client builder.Client
	reg    *registryClient
	// base is <registry>/library/busybox.
	base string
}

// TestBuild runs real builds on buildkitd (OCI worker, runc) that push to
// the embedded registry on loopback.
func TestBuild(t *testing.T) {
	d, _ := startDaemon(t)
	reg := startRegistry(t)
	base := strings.TrimSuffix(rig.PushBusybox(t, d.Addr(), reg.addr), ":latest")
	e := &env{client: builder.Client{Addr: d.Addr()}, reg: reg, base: base}

	t.Run("Ping", func(t *testing.T) {
		if err := e.client.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("PushesTaggedImage", e.pushesTaggedImage)
	t.Run("PushesByDigestOnly", e.pushesByDigestOnly)
	t.Run("WithoutPushLeavesRegistryAlone", e.withoutPush)
	t.Run("FailingStepReportsExitCode", e.failingStep)
	t.Run("BuildArgReachesRun", e.buildArg)
	t.Run("TargetPicksStage", e.target)
	t.Run("TestStagePassesWithoutExport", e.testStagePasses)
	t.Run("TestStageFailureReportsOutput", e.testStageFails)
	t.Run("ExportWritesFilesystemAndConfig", e.export)
	t.Run("MultiPlatformIndexWithAnnotations", e.multiPlatform)
	t.Run("ProvenanceAttestation", e.provenance)
	t.Run("RegistryCacheSurvivesPrune", e.cache)
	t.Run("CancelStopsBuild", e.cancel)
}

// build runs req on the shared daemon and returns its log.
func (e *env) build(t *testing.T, req builder.Request) (builder.Result, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var log syncBuffer
	res, err := e.client.Build(ctx, req, &log)
	return res, log.String(), err
}

// mustBuild is build for builds that must succeed.
func (e *env) mustBuild(t *testing.T, req builder.Request) (builder.Result, string) {
	t.Helper()
	res, log, err := e.build(t, req)
	if err != nil {
		t.Fatalf("build: %v\nlog:\n%s", err, log)
	}
	return res, log
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (e *env) pushesTaggedImage(t *testing.T) {
	req := buildDir(t, map[string]string{
		"Dockerfile": "FROM " + e.base + "\nRUN echo hello > /hello\n",
	})
	req.Refs = []string{e.reg.addr + "/demo/hello:v1", e.reg.addr + "/demo/hello:latest"}
	req.Labels = map[string]string{"org.opencontainers.image.revision": "0123abc"}
	req.Push = true
	res, log := e.mustBuild(t, req)

	if !digestRE.MatchString(res.Digest) {
		t.Fatalf("Result.Digest = %q, want sha256:<64 hex>", res.Digest)
	}
	m, dgst := e.reg.manifest(t, "demo/hello", res.Digest)
	if dgst != res.Digest {
		t.Errorf("registry's Docker-Content-Digest = %s, Result.Digest = %s", dgst, res.Digest)
	}
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest media type = %q, want the OCI image manifest", m.MediaType)
	}
	for _, tag := range []string{"v1", "latest"} {
		if _, dgst := e.reg.manifest(t, "demo/hello", tag); dgst != res.Digest {
			t.Errorf("tag %s = %s, want %s", tag, dgst, res.Digest)
		}
	}
	if got := e.reg.labels(t, "demo/hello", m)["org.opencontainers.image.revision"]; got != "0123abc" {
		t.Errorf("label org.opencontainers.image.revision = %q, want %q", got, "0123abc")
	}
	if got := e.reg.topFile(t, "demo/hello", m, "/hello"); got != "hello\n" {
		t.Errorf("/hello = %q, want %q", got, "hello\n")
	}
	rig.Contains(t, "build log", log, "RUN echo hello > /hello", "pushing layers")
}

func (e *env) pushesByDigestOnly(t *testing.T) {
	req := buildDir(t, map[string]string{
		"Dockerfile": "FROM " + e.base + "\nRUN echo " + nonce(t) + " > /n\n",
	})
	req.Image = e.reg.addr + "/demo/bydigest"
	req.Push = true
	res, log := e.mustBuild(t, req)

	if _, dgst := e.reg.manifest(t, "demo/bydigest", res.Digest); dgst != res.Digest {
		t.Errorf("registry's digest = %s, Result.Digest = %s\nlog:\n%s", dgst, res.Digest, log)
	}
	// The caller moves tags; the build must not have made any.
	e.reg.absent(t, "demo/bydigest", "latest")
	if tags := e.reg.tags(t, "demo/bydigest"); len(tags) > 0 {
		t.Errorf("push by digest left tags %v", tags)
	}
}

func (e *env) withoutPush(t *testing.T) {
	req := buildDir(t, map[string]string{
		"Dockerfile": "FROM " + e.base + "\nRUN echo " + nonce(t) + " > /n\n",
	})
	req.Refs = []string{e.reg.addr + "/demo/unpushed:v1"}
	res, log := e.mustBuild(t, req)

	if !digestRE.MatchString(res.Digest) {
		t.Errorf("Result.Digest = %q, want sha256:<64 hex> even without a push", res.Digest)
	}
	e.reg.absent(t, "demo/unpushed", "v1")
	e.reg.absent(t, "demo/unpushed", res.Digest)
	if strings.Contains(log, "pushing layers") {
		t.Errorf("log shows a push:\n%s", log)
	}
}

func (e *env) failingStep(t *testing.T) {
	req := buildDir(t, map[string]string{
		"Dockerfile": "FROM " + e.base + "\nRUN exit 3\n",
	})
	req.Refs = []string{e.reg.addr + "/demo/fails:v1"}
	req.Push = true
	res, log, err := e.build(t, req)

	if err == nil || !strings.Contains(err.Error(), "exit code: 3") {
		t.Fatalf("err = %v, want one mentioning %q\nlog:\n%s", err, "exit code: 3", log)
	}
	if res.Digest != "" {
		t.Errorf("a failed build returned digest %s", res.Digest)
	}
	rig.Contains(t, "build log", log, "RUN exit 3")
	e.reg.absent(t, "demo/fails", "v1")
}

func (e *env) buildArg(t *testing.T) {
	value := "arg-" + nonce(t)
	req := buildDir(t, map[string]string{
		"Dockerfile": "FROM " + e.base + "\nARG GREETING=unset\nRUN echo \"greeting=$GREETING\"\n",
	})
	req.Refs = []string{e.reg.addr + "/demo/args:v1"}
	req.BuildArgs = map[string]string{"GREETING": value}
	_, log := e.mustBuild(t, req)

	// The step's title shows $GREETING unexpanded: only the step's own output
	// can contain the value.
	rig.Contains(t, "build log", log, "greeting="+value)
}

func (e *env) target(t *testing.T) {
	req := buildDir(t, map[string]string{
		"Dockerfile": "FROM " + e.base + " AS first\nRUN echo first > /stage\n" +
			"FROM " + e.base + " AS second\nRUN echo second > /stage\n",
	})
	req.Refs = []string{e.reg.addr + "/demo/target:v1"}
	req.Target = "first"
	req.Push = true
	res, log := e.mustBuild(t, req)

	m, _ := e.reg.manifest(t, "demo/target", res.Digest)
	if got := e.reg.topFile(t, "demo/target", m, "/stage"); got != "first\n" {
		t.Errorf("/stage = %q, want %q (the target stage's)", got, "first\n")
	}
	if strings.Contains(log, "echo second") {
		t.Errorf("the stage after the target ran:\n%s", log)
	}
}

// testDockerfile has a test stage that checks a file of the image stage
// and an image stage last, as a rule with test.target names it.
func (e *env) testDockerfile(check string) string {
	return "FROM " + e.base + " AS app\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\n" +
		"FROM app AS test\nRUN " + check + "\n" +
		"FROM app\n"
}

func (e *env) testStagePasses(t *testing.T) {
	value := "hello-" + nonce(t)
	req := buildDir(t, map[string]string{
		"Dockerfile": e.testDockerfile("grep -x " + value + " /greeting && echo test-ok-" + value),
	})
	req.Target, req.BuildArgs = "test", map[string]string{"GREETING": value}
	// A test never pushes, whatever the request says.
	req.Image, req.Push = e.reg.addr+"/demo/tested", true
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var log syncBuffer
	if err := e.client.Test(ctx, req, &log); err != nil {
		t.Fatalf("Test: %v\nlog:\n%s", err, log.String())
	}
	rig.Contains(t, "test log", log.String(), "test-ok-"+value)
	if tags := e.reg.tags(t, "demo/tested"); len(tags) != 0 {
		t.Errorf("a test pushed tags %v, want none", tags)
	}
}

func (e *env) testStageFails(t *testing.T) {
	req := buildDir(t, map[string]string{
		"Dockerfile": e.testDockerfile("echo check-failed-" + nonce(t) + " && exit 4"),
	})
	req.Target = "test"
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var log syncBuffer
	err := e.client.Test(ctx, req, &log)
	if err == nil || !strings.Contains(err.Error(), "exit code: 4") {
		t.Fatalf("Test err = %v, want one mentioning %q\nlog:\n%s", err, "exit code: 4", log.String())
	}
	rig.Contains(t, "test log", log.String(), "check-failed-")

	req.Target = ""
	if err := e.client.Test(ctx, req, &log); err == nil || err.Error() != "test: no target stage" {
		t.Errorf("Test without a target: err = %v, want %q", err, "test: no target stage")
	}
}

func (e *env) export(t *testing.T) {
	value := "exported-" + nonce(t)
	req := buildDir(t, map[string]string{
		"Dockerfile": "FROM " + e.base + " AS app\nRUN echo " + value + " > /value\n" +
			"ENV GREETING=hi\nWORKDIR /srv\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"cat /value\"]\n",
	})
	req.Target = "app"
	dir := filepath.Join(t.TempDir(), "rootfs")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var log syncBuffer
	cfg, err := e.client.Export(ctx, req, dir, &log)
	if err != nil {
		t.Fatalf("Export: %v\nlog:\n%s", err, log.String())
	}
	got, err := os.ReadFile(filepath.Join(dir, "value"))
	if err != nil || string(got) != value+"\n" {
		t.Errorf("/value = %q (%v), want %q", got, err, value+"\n")
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err != nil {
		t.Errorf("the base image's /bin/busybox is missing: %v", err)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/bin/sh", "-c"}) || !slices.Equal(cfg.Cmd, []string{"cat /value"}) ||
		cfg.WorkingDir != "/srv" || !slices.Contains(cfg.Env, "GREETING=hi") {
		t.Errorf("config = %+v, want entrypoint [/bin/sh -c], cmd [cat /value], workdir /srv, GREETING=hi in env", cfg)
	}
}

// multiPlatform builds two platforms FROM scratch with COPY only, so no step
// runs under emulation.
func (e *env) multiPlatform(t *testing.T) {
	req := buildDir(t, map[string]string{
		"Dockerfile": "FROM scratch\nARG TARGETARCH\nCOPY arch-${TARGETARCH} /arch\n",
		"arch-amd64": "amd64\n",
		"arch-arm64": "arm64\n",
	})
	req.Refs = []string{e.reg.addr + "/demo/multi:v1"}
	req.Platforms = []string{"linux/amd64", "linux/arm64"}
	req.Annotations = map[string]string{"org.opencontainers.image.source": "https://git.example/acme/demo"}
	req.Push = true
	res, _ := e.mustBuild(t, req)

	idx, _ := e.reg.manifest(t, "demo/multi", res.Digest)
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("media type = %q, want the OCI index", idx.MediaType)
	}
	const key, want = "org.opencontainers.image.source", "https://git.example/acme/demo"
	if got := idx.Annotations[key]; got != want {
		t.Errorf("index annotation %s = %q, want %q", key, got, want)
	}
	var archs []string
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			t.Fatalf("index entry %s has no platform", d.Digest)
		}
		archs = append(archs, d.Platform.OS+"/"+d.Platform.Architecture)
		m, _ := e.reg.manifest(t, "demo/multi", d.Digest)
		if got := m.Annotations[key]; got != want {
			t.Errorf("%s manifest annotation %s = %q, want %q", d.Platform.Architecture, key, got, want)
		}
		if got := e.reg.topFile(t, "demo/multi", m, "/arch"); got != d.Platform.Architecture+"\n" {
			t.Errorf("%s image's /arch = %q", d.Platform.Architecture, got)
		}
	}
	slices.Sort(archs)
	if !slices.Equal(archs, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("index platforms = %v, want [linux/amd64 linux/arm64]", archs)
	}
}

func (e *env) provenance(t *testing.T) {
	req := buildDir(t, map[string]string{
		"Dockerfile": "FROM " + e.base + "\nRUN echo " + nonce(t) + " > /n\n",
	})
	req.Refs = []string{e.reg.addr + "/demo/provenance:v1"}
	req.Provenance = true
	req.Push = true
	res, _ := e.mustBuild(t, req)

	// The attestation rides in an index next to the image, as an
	// unknown/unknown manifest that names the image it describes.
	idx, _ := e.reg.manifest(t, "demo/provenance", res.Digest)
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 2 {
		t.Fatalf("got %s with %d manifests, want an OCI index of image + attestation", idx.MediaType, len(idx.Manifests))
	}
	att := idx.Manifests[1]
	if att.Annotations["vnd.docker.reference.type"] != "attestation-manifest" ||
		att.Annotations["vnd.docker.reference.digest"] != idx.Manifests[0].Digest {
		t.Errorf("second entry is not the first's attestation: %+v", att.Annotations)
	}
}

// cache exports BuildKit's cache to the registry, empties the daemon's own
// cache, and builds again: the step must come from the registry cache.
func (e *env) cache(t *testing.T) {
	step := "RUN echo " + nonce(t) + " > /n"
	req := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.base + "\n" + step + "\n"})
	req.Refs = []string{e.reg.addr + "/demo/cached:v1"}
	req.CacheRef = e.reg.addr + "/demo/cached:buildcache"
	req.Push = true
	// An empty local cache first, so that the base's FROM, built on by
	// the tests before, is not cached either.
	if err := e.client.Prune(t.Context()); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	first, log := e.mustBuild(t, req)
	if cachedStep(log, step) {
		t.Fatalf("first build already cached %q:\n%s", step, log)
	}
	if _, dgst := e.reg.manifest(t, "demo/cached", "buildcache"); !digestRE.MatchString(dgst) {
		t.Fatalf("no cache manifest at demo/cached:buildcache")
	}

	if err := e.client.Prune(t.Context()); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	second, log := e.mustBuild(t, req)
	// Eight steps each time, as the log numbers them: the Dockerfile, the
	// base's metadata, .dockerignore, the cache import, FROM, RUN, the
	// image export and the cache export. Only RUN comes from the cache:
	// the pruned base is pulled again.
	if want := (builder.Steps{Total: 8, Cached: 0}); first.Steps != want {
		t.Errorf("first build's steps %+v, want %+v", first.Steps, want)
	}
	if want := (builder.Steps{Total: 8, Cached: 1}); second.Steps != want {
		t.Errorf("rebuild's steps %+v, want %+v\n%s", second.Steps, want, log)
	}
	if !cachedStep(log, step) {
		t.Errorf("after Prune the step did not come from the registry cache:\n%s", log)
	}
	if first.Digest != second.Digest {
		t.Errorf("digest changed from %s to %s on a fully cached rebuild", first.Digest, second.Digest)
	}
}

// cachedStep reports whether the plain-progress log marks step CACHED.
func cachedStep(log, step string) bool {
	m := regexp.MustCompile(`(?m)^(#\d+) \[[^\]]*\] ` + regexp.QuoteMeta(step) + `$`).FindStringSubmatch(log)
	return m != nil && strings.Contains(log, m[1]+" CACHED\n")
}

func (e *env) cancel(t *testing.T) {
	// The step's own shell stays in the process table while it sleeps, named
	// by the nonce, so the test can see the container go.
	mark := "sleeper-" + nonce(t)
	req := buildDir(t, map[string]string{
		"Dockerfile": "FROM " + e.base + "\nRUN sh -c 'sleep 60; echo " + mark + "'\n",
	})
	req.Refs = []string{e.reg.addr + "/demo/cancelled:v1"}
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	var log syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := e.client.Build(ctx, req, &log)
		done <- err
	}()

	waitFor(t, 30*time.Second, "the sleep step to run", func() bool { return len(processes(mark)) > 0 })
	// Callers stop builds with a cause (a cancel request, a timeout) and
	// must find it, and the context's own error, in what Build returns.
	why := errors.New("superseded by a newer push")
	cancel(why)
	cancelled := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, why) {
			t.Errorf("err = %v, want one that errors.Is context.Canceled and the cause", err)
		}
		t.Logf("Build returned %s after cancel", time.Since(cancelled).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatalf("Build still running 10s after cancel\nlog:\n%s", log.String())
	}
	waitFor(t, 10*time.Second, "the step's processes to end", func() bool { return len(processes(mark)) == 0 })
}

// processes lists the pids whose command line contains s.
func processes(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(raw), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func waitFor(t testing.TB, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBuildRejectsBadRequest covers what Build refuses before it dials
// BuildKit, so it needs no daemon.
func TestBuildRejectsBadRequest(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		req  builder.Request
		want string
	}{
		{"NoReference", builder.Request{ContextDir: dir, Dockerfile: df}, "no image reference"},
		{"NoDockerfile", builder.Request{ContextDir: dir, Dockerfile: filepath.Join(dir, "nope"), Image: "127.0.0.1:1/x"}, "dockerfile"},
		{"NoContext", builder.Request{ContextDir: filepath.Join(dir, "nope"), Dockerfile: df, Image: "127.0.0.1:1/x"}, "build context"},
	}
	// Nothing listens here; reaching it would be a bug of its own.
	c := builder.Client{Addr: "unix://" + filepath.Join(dir, "none.sock")}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Build(t.Context(), tc.req, &syncBuffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
