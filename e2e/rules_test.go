package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// project is one repository on the rig: its Git remote and its Slipway
// registration.
type project struct {
	t    *testing.T
	s    *rig.Slipway
	src  *rig.Repo
	repo model.Repo
	n    int
}

func newProject(t *testing.T, s *rig.Slipway, git *rig.GitServer, name string, edit func(*model.Repo)) *project {
	t.Helper()
	src := git.NewRepo(t, name)
	repo := model.Repo{
		Provider: "github", FullName: "acme/" + name, CloneURL: src.CloneURL, WebhookSecret: webhookSecret,
		Image: s.RegistryAddr + "/acme/" + name,
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}},
	}
	if edit != nil {
		edit(&repo)
	}
	var stored model.Repo
	if code := s.Do("POST", "/api/v1/repos", repo, &stored); code != http.StatusCreated {
		t.Fatalf("register %s: HTTP %d", name, code)
	}
	return &project{t: t, s: s, src: src, repo: stored}
}

// push commits files, pushes them to ref and sends GitHub's webhook for it.
func (p *project) push(ref, msg string, files map[string]string, tweak func(*rig.GitHubPush)) rig.HookResponse {
	p.t.Helper()
	before := p.src.HeadOrEmpty()
	commit := p.src.Commit(msg, files)
	if strings.HasPrefix(ref, "refs/tags/") {
		rig.Git(p.t, p.src.Dir, "tag", "-f", strings.TrimPrefix(ref, "refs/tags/"))
		before = ""
	}
	p.src.Push(ref)
	var changed []string
	for f := range files {
		changed = append(changed, f)
	}
	slices.Sort(changed)
	gp := rig.GitHubPush{Repo: p.repo.FullName, CloneURL: p.src.CloneURL, Ref: ref, Before: before, After: commit, Message: msg, Files: changed}
	if tweak != nil {
		tweak(&gp)
	}
	p.n++
	r := rig.SendGitHub(p.t, p.s.URL(), "push", fmt.Sprintf("%s-%d-%d", p.repo.ID, p.n, time.Now().UnixNano()), webhookSecret, gp.Payload())
	if r.Code != http.StatusAccepted {
		p.t.Fatalf("push %s: %+v", ref, r)
	}
	return r
}

func (p *project) manifest(tag string) rig.Manifest {
	p.t.Helper()
	m, err := rig.FetchManifest(context.Background(), p.repo.Image+":"+tag)
	if err != nil {
		p.t.Fatalf("manifest %s:%s: %v", p.repo.Image, tag, err)
	}
	return m
}

// waitManifest waits until the registry serves the image's tag.
func (p *project) waitManifest(tag string, limit time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		_, err := rig.FetchManifest(context.Background(), p.repo.Image+":"+tag)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s:%s not in the registry within %s: %v", p.repo.Image, tag, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *project) label(tag, platform, key string) string {
	p.t.Helper()
	labels, err := rig.Labels(context.Background(), p.repo.Image+":"+tag, platform)
	if err != nil {
		p.t.Fatalf("labels of %s:%s: %v", p.repo.Image, tag, err)
	}
	return labels[key]
}

func (p *project) waitState(id, status string, limit time.Duration) model.Build {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		b := p.s.Build(id)
		if b.Status == status {
			return b
		}
		if model.Terminal(b.Status) || time.Now().After(deadline) {
			p.t.Fatalf("build %s is %s (%s %s), want %s\n%s", id, b.Status, b.Error, b.Reason, status, p.s.Log(id))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *project) succeeded(id string) model.Build {
	p.t.Helper()
	return p.waitState(id, model.StatusSucceeded, 5*time.Minute)
}

func TestBuildRules(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_WORKERS=2"}})
	s.PushBusybox("linux/amd64", "linux/arm64")
	git := rig.StartGitServer(t)
	base := s.RegistryAddr + "/library/busybox:latest"
	simple := func(run string) map[string]string {
		return map[string]string{"Dockerfile": fmt.Sprintf("FROM %s\nRUN %s\n", base, run)}
	}

	t.Run("semver tag push gets version, minor and major tags", func(t *testing.T) {
		p := newProject(t, s, git, "semver", func(r *model.Repo) {
			r.Rules = append(r.Rules, model.Rule{SourceType: "tag", Source: `/^v([0-9.]+)$/`, Tags: []string{"{version}", "{major}.{minor}", "{major}"}})
		})
		r := p.push("refs/tags/v1.2.3", "release 1.2.3", simple("echo release"), nil)
		b := p.succeeded(r.Builds[0])
		if !slices.Equal(b.Tags, []string{"1.2.3", "1.2", "1"}) {
			t.Errorf("tags %v", b.Tags)
		}
		for _, tag := range []string{"1.2.3", "1.2", "1"} {
			if m := p.manifest(tag); m.Digest != b.Digest {
				t.Errorf("%s at %s, build pushed %s", tag, m.Digest, b.Digest)
			}
		}
		if v := p.label("1", "linux/amd64", "org.opencontainers.image.version"); v != "1.2.3" {
			t.Errorf("version label %q", v)
		}
	})

	t.Run("two platforms push one index", func(t *testing.T) {
		p := newProject(t, s, git, "multiarch", func(r *model.Repo) { r.Rules[0].Platforms = "linux/amd64,linux/arm64" })
		r := p.push("refs/heads/main", "both arches", simple("uname -m > /arch.txt && cat /arch.txt"), nil)
		b := p.succeeded(r.Builds[0])
		m := p.manifest("latest")
		if !m.IsIndex() || m.Digest != b.Digest {
			t.Fatalf("latest is %s %s, want the index %s", m.MediaType, m.Digest, b.Digest)
		}
		var got []string
		for _, pl := range m.Platforms {
			got = append(got, pl.String())
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("platforms %v", got)
		}
		if rev := p.label("latest", "linux/arm64", "org.opencontainers.image.revision"); rev != b.Commit {
			t.Errorf("arm64 revision label %q", rev)
		}
		rig.Contains(t, "multi-platform log", s.Log(b.ID), "aarch64", "x86_64")
	})

	t.Run("push touching only ignored paths is skipped", func(t *testing.T) {
		p := newProject(t, s, git, "filtered", func(r *model.Repo) {
			r.Rules[0].IgnorePaths = []string{"docs/**", "**/*.md"}
			r.Rules = append(r.Rules, model.Rule{SourceType: "branch", Source: "/feature-.*/", Tags: []string{"{branch}"}, IgnorePaths: []string{"docs/**"}})
		})
		first := p.push("refs/heads/main", "code", simple("echo code"), nil)
		p.succeeded(first.Builds[0])
		r := p.push("refs/heads/main", "docs only", map[string]string{"docs/guide.txt": "hi\n", "README.md": "# demo\n"}, nil)
		if len(r.Builds) != 0 || len(r.Skipped) != 1 {
			t.Fatalf("want one skipped and no queued build: %+v", r)
		}
		sk := s.Build(r.Skipped[0])
		if sk.Status != model.StatusSkipped || !strings.Contains(sk.Reason, "ignore_paths") {
			t.Errorf("skipped build: %s %q", sk.Status, sk.Reason)
		}
		// A forced push's payload is not a complete file list: the worker
		// diffs the commits itself and still skips.
		r = p.push("refs/heads/main", "more docs", map[string]string{"docs/more.txt": "more\n"}, func(g *rig.GitHubPush) { g.Forced = true })
		if len(r.Builds) != 1 {
			t.Fatalf("forced push must be queued for a diff: %+v", r)
		}
		b := p.waitState(r.Builds[0], model.StatusSkipped, 2*time.Minute)
		if !strings.Contains(b.Reason, "ignore_paths") {
			t.Errorf("reason %q", b.Reason)
		}
		// A new branch is compared with the default branch.
		rig.Git(t, p.src.Dir, "checkout", "-q", "-b", "feature-docs")
		r = p.push("refs/heads/feature-docs", "docs on a branch", map[string]string{"docs/branch.txt": "b\n"}, func(g *rig.GitHubPush) { g.Before = "" })
		nb := p.waitState(r.Builds[0], model.StatusSkipped, 2*time.Minute)
		rig.Contains(t, "new branch log", s.Log(nb.ID), "differ from refs/heads/main")
		r = p.push("refs/heads/feature-docs", "code on a branch", simple("echo branch code"), func(g *rig.GitHubPush) { g.Before = "" })
		if cb := p.succeeded(r.Builds[0]); !slices.Equal(cb.Tags, []string{"feature-docs"}) {
			t.Errorf("branch build tags %v", cb.Tags)
		}
		rig.Git(t, p.src.Dir, "checkout", "-q", "main")
	})

	t.Run("skip marker in the commit message", func(t *testing.T) {
		p := newProject(t, s, git, "skipmarker", nil)
		r := p.push("refs/heads/main", "tweak\n\n[skip ci]", simple("echo no"), nil)
		if len(r.Skipped) != 1 || len(r.Builds) != 0 {
			t.Fatalf("%+v", r)
		}
		if b := s.Build(r.Skipped[0]); b.Status != model.StatusSkipped || !strings.Contains(b.Reason, "[skip ci]") {
			t.Errorf("%s %q", b.Status, b.Reason)
		}
	})

	t.Run("newer push cancels the running build and owns latest", func(t *testing.T) {
		p := newProject(t, s, git, "supersede", nil)
		slow := p.push("refs/heads/main", "slow", simple("echo slow && sleep 60"), nil)
		p.waitState(slow.Builds[0], model.StatusRunning, time.Minute)
		fast := p.push("refs/heads/main", "fast", simple("echo fast"), nil)
		cancelled := p.waitState(slow.Builds[0], model.StatusCancelled, time.Minute)
		if cancelled.SupersededBy != fast.Builds[0] {
			t.Errorf("superseded_by %q, want %s", cancelled.SupersededBy, fast.Builds[0])
		}
		b := p.succeeded(fast.Builds[0])
		if rev := p.label("latest", "linux/amd64", "org.opencontainers.image.revision"); rev != b.Commit {
			t.Errorf("latest revision %s, want %s", rev, b.Commit)
		}
	})

	t.Run("an old build finishing late never moves latest back", func(t *testing.T) {
		f := false
		p := newProject(t, s, git, "nobackwards", func(r *model.Repo) { r.CancelSuperseded = &f })
		slow := p.push("refs/heads/main", "slow", simple("echo slow && sleep 6"), nil)
		p.waitState(slow.Builds[0], model.StatusRunning, time.Minute)
		fast := p.push("refs/heads/main", "fast", simple("echo fast"), nil)
		nb := p.succeeded(fast.Builds[0])
		ob := p.succeeded(slow.Builds[0])
		if !slices.Contains(ob.SkippedTags, "latest") {
			t.Errorf("old build's skipped tags %v, want latest", ob.SkippedTags)
		}
		if m := p.manifest("latest"); m.Digest != nb.Digest {
			t.Errorf("latest at %s, newer build %s, older %s", m.Digest, nb.Digest, ob.Digest)
		}
	})

	t.Run("fresh BuildKit reuses the registry cache", func(t *testing.T) {
		p := newProject(t, s, git, "cached", nil)
		df := fmt.Sprintf("FROM %s\nRUN echo expensive step && sleep 2 && echo done > /step.txt\nRUN echo second step > /second.txt\nCOPY app.txt /app.txt\n", base)
		first := p.push("refs/heads/main", "one", map[string]string{"Dockerfile": df, "app.txt": "v1\n"}, nil)
		p.succeeded(first.Builds[0])
		// The cache is exported after the deploy hooks are queued, off
		// the build's path: its manifest appears last.
		p.waitManifest("buildcache", time.Minute)
		if err := (builder.Client{Addr: s.BuildkitAddr()}).Prune(context.Background()); err != nil {
			t.Fatal(err)
		}
		second := p.push("refs/heads/main", "two", map[string]string{"app.txt": "v2\n"}, nil)
		p.succeeded(second.Builds[0])
		// A step that runs prints its output as "#N 0.123 expensive step";
		// one taken from the cache does not run at all, and a cached step
		// whose layers are not needed locally is shown as "#N CACHED".
		ran := regexp.MustCompile(`(?m)^#[0-9]+ [0-9.]+ (expensive|second) step$`)
		if !ran.MatchString(s.Log(first.Builds[0])) {
			t.Fatalf("the first build should have run the steps:\n%s", s.Log(first.Builds[0]))
		}
		log := s.Log(second.Builds[0])
		rig.Contains(t, "rebuild log", log, "importing cache manifest from "+p.repo.Image+":buildcache")
		if ran.MatchString(log) {
			t.Errorf("after pruning BuildKit a RUN step ran again instead of coming from the registry cache:\n%s", log)
		}
		step := regexp.MustCompile(`(?m)^(#[0-9]+) \[[^\]]*\] RUN echo expensive step`).FindStringSubmatch(log)
		if step == nil || !strings.Contains(log, step[1]+" CACHED") {
			t.Errorf("the first RUN step is not shown CACHED:\n%s", log)
		}
	})

	t.Run("provenance attestation and annotations", func(t *testing.T) {
		p := newProject(t, s, git, "provenance", func(r *model.Repo) { r.Rules[0].Provenance = true })
		r := p.push("refs/heads/main", "attested", simple("echo attested"), nil)
		b := p.succeeded(r.Builds[0])
		m := p.manifest("latest")
		raw := string(m.Raw)
		if !m.IsIndex() || !strings.Contains(raw, "attestation-manifest") {
			t.Errorf("want an index with an attestation manifest, got %s:\n%s", m.MediaType, raw)
		}
		var index struct {
			Manifests []struct {
				Digest   string `json:"digest"`
				Platform struct {
					Architecture string `json:"architecture"`
				} `json:"platform"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(m.Raw, &index); err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, d := range index.Manifests {
			if d.Platform.Architecture != "amd64" {
				continue
			}
			checked++
			img, err := rig.FetchManifest(context.Background(), p.repo.Image+"@"+d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Annotations map[string]string `json:"annotations"`
			}
			_ = json.Unmarshal(img.Raw, &doc)
			if doc.Annotations["org.opencontainers.image.revision"] != b.Commit {
				t.Errorf("image manifest annotations %v, want the revision %s", doc.Annotations, b.Commit)
			}
		}
		if checked != 1 {
			t.Errorf("index has %d amd64 images, want 1:\n%s", checked, raw)
		}
	})

	t.Run("max_concurrent_builds runs a repository's builds one at a time", func(t *testing.T) {
		p := newProject(t, s, git, "serial", func(r *model.Repo) {
			r.MaxConcurrentBuilds = 1
			r.Rules = append(r.Rules, model.Rule{SourceType: "branch", Source: "main", Tags: []string{"other"}, Dockerfile: "Other.Dockerfile"})
		})
		files := simple("echo one && sleep 3")
		files["Other.Dockerfile"] = fmt.Sprintf("FROM %s\nRUN echo two && sleep 3\n", base)
		r := p.push("refs/heads/main", "two builds", files, nil)
		if len(r.Builds) != 2 {
			t.Fatalf("want two builds: %+v", r)
		}
		a, b := p.succeeded(r.Builds[0]), p.succeeded(r.Builds[1])
		if a.StartedAt.Before(*b.FinishedAt) && b.StartedAt.Before(*a.FinishedAt) {
			t.Errorf("builds overlapped: %s–%s and %s–%s", a.StartedAt, a.FinishedAt, b.StartedAt, b.FinishedAt)
		}
	})

	t.Run("Docker Hub build variables reach declared ARGs", func(t *testing.T) {
		p := newProject(t, s, git, "hubvars", nil)
		df := fmt.Sprintf("FROM %s\nARG SOURCE_BRANCH\nARG DOCKER_TAG\nARG SOURCE_COMMIT\nRUN echo \"vars=$SOURCE_BRANCH/$DOCKER_TAG/$SOURCE_COMMIT\"\n", base)
		r := p.push("refs/heads/main", "vars", map[string]string{"Dockerfile": df}, nil)
		b := p.succeeded(r.Builds[0])
		rig.Contains(t, "log", s.Log(b.ID), "vars=main/latest/"+b.Commit)
	})

	t.Run("timeout, cancel and rebuild through the API", func(t *testing.T) {
		p := newProject(t, s, git, "control", func(r *model.Repo) { r.BuildTimeout = "4s" })
		r := p.push("refs/heads/main", "hangs", simple("sleep 60"), nil)
		b := p.waitState(r.Builds[0], model.StatusFailed, time.Minute)
		if !strings.Contains(b.Error, "timed out after 4s") {
			t.Errorf("error %q", b.Error)
		}
		var rb model.Build
		if code := s.Do("POST", "/api/v1/builds/"+b.ID+"/rebuild", nil, &rb); code != http.StatusAccepted || rb.RebuildOf != b.ID || rb.Commit != b.Commit {
			t.Fatalf("rebuild: HTTP %d %+v", code, rb)
		}
		p.waitState(rb.ID, model.StatusRunning, time.Minute)
		var cb model.Build
		if code := s.Do("POST", "/api/v1/builds/"+rb.ID+"/cancel", nil, &cb); code != http.StatusAccepted {
			t.Fatalf("cancel: HTTP %d", code)
		}
		p.waitState(rb.ID, model.StatusCancelled, 30*time.Second)
		if code := s.Do("POST", "/api/v1/builds/"+rb.ID+"/cancel", nil, nil); code != http.StatusConflict {
			t.Errorf("cancelling a finished build: HTTP %d, want 409", code)
		}
	})

	t.Run("CLI triggers a commit, lists and cancels", func(t *testing.T) {
		p := newProject(t, s, git, "cli", nil)
		first := p.push("refs/heads/main", "slow", simple("echo slow && sleep 60"), nil)
		hooked := p.waitState(first.Builds[0], model.StatusRunning, time.Minute)
		out, err := s.CLI("builds", "trigger", "--repo", p.repo.ID, "--commit", hooked.Commit)
		if err != nil {
			t.Fatalf("trigger: %v\n%s", err, out)
		}
		var b model.Build
		if err := json.Unmarshal([]byte(out), &b); err != nil || b.Commit != hooked.Commit || b.Ref != "refs/heads/main" || b.Trigger != "manual" {
			t.Fatalf("trigger printed %s (%v)", out, err)
		}
		// The manual build is the newest of main, so it supersedes the
		// webhook's.
		if c := p.waitState(hooked.ID, model.StatusCancelled, time.Minute); c.SupersededBy != b.ID {
			t.Errorf("superseded_by %q, want %s", c.SupersededBy, b.ID)
		}
		p.waitState(b.ID, model.StatusRunning, time.Minute)
		list, err := s.CLI("builds", "list", "--repo", p.repo.ID)
		if err != nil || !strings.Contains(list, b.ID) || !strings.Contains(list, "running") {
			t.Errorf("list: %v\n%s", err, list)
		}
		if out, err := s.CLI("builds", "cancel", b.ID); err != nil {
			t.Fatalf("cancel: %v\n%s", err, out)
		}
		p.waitState(b.ID, model.StatusCancelled, 30*time.Second)
		if out, err := s.CLI("builds", "cancel", b.ID); err == nil || !strings.Contains(out, "409") {
			t.Errorf("cancelling twice must fail with 409: %v %s", err, out)
		}
	})

	t.Run("bad rules are refused at registration", func(t *testing.T) {
		var out map[string]string
		code := s.Do("POST", "/api/v1/repos", model.Repo{
			Provider: "github", FullName: "acme/badrules", WebhookSecret: webhookSecret, Image: s.RegistryAddr + "/acme/badrules",
			Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}, {SourceType: "tag", Source: "/v(/", Tags: []string{"{version}"}}},
		}, &out)
		if code != http.StatusBadRequest || !strings.HasPrefix(out["error"], "rules[1].source:") {
			t.Errorf("HTTP %d %v", code, out)
		}
		var repos []model.Repo
		s.Do("GET", "/api/v1/repos", nil, &repos)
		for _, r := range repos {
			if r.FullName == "acme/badrules" {
				t.Errorf("a refused repository was stored")
			}
		}
	})
}
