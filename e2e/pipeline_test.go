package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/metrics/metricstest"
	"github.com/slipway-build/slipway/model"
)

const webhookSecret = "gh-hook-secret-for-tests"

func dockerfile(registry string, run string) string {
	return fmt.Sprintf("FROM %s/library/busybox:latest\nRUN %s\nCOPY . /src\nCMD [\"cat\", \"/built.txt\"]\n", registry, run)
}

func registerRepo(t *testing.T, s *rig.Slipway, fullName, cloneURL string, hooks []model.Hook) model.Repo {
	t.Helper()
	var repo model.Repo
	code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: fullName, CloneURL: cloneURL, WebhookSecret: webhookSecret,
		Image: s.RegistryAddr + "/" + fullName,
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}, Dockerfile: "Dockerfile", Context: "."}},
		Hooks: hooks,
	}, &repo)
	if code != http.StatusCreated || repo.ID == "" {
		t.Fatalf("register repo: HTTP %d %+v", code, repo)
	}
	if repo.WebhookSecret != "" || (len(repo.Hooks) > 0 && repo.Hooks[0].Secret != "") {
		t.Errorf("secrets must never be returned: %+v", repo)
	}
	return repo
}

func TestGitHubPushBuildsPushesAndNotifies(t *testing.T) {
	hookSecret := deploy.GenerateSecret()
	recv := rig.StartReceiver(t, 2) // the first two deliveries fail: retries must be recorded
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_HOOK_SCHEDULE=0s,1s,1s,1s,1s,1s"}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "demo")
	commit := src.Commit("first image", map[string]string{
		"Dockerfile": dockerfile(s.RegistryAddr, "echo built-by-slipway > /built.txt"),
		"app.txt":    "hello\n",
	})
	src.Push("main")
	repo := registerRepo(t, s, "acme/demo", src.CloneURL, []model.Hook{{URL: recv.URL + "/deploy", Secret: hookSecret}})

	push := rig.GitHubPush{Repo: "acme/demo", CloneURL: "http://invalid.example/ignored.git", Ref: "refs/heads/main", After: commit, Message: "first image"}
	body := push.Payload()

	t.Run("ping answers 200", func(t *testing.T) {
		ping := []byte(`{"zen":"Keep it logically awesome.","hook_id":1,"repository":{"full_name":"acme/demo"}}`)
		if r := rig.SendGitHub(t, s.URL(), "ping", "ping-1", webhookSecret, ping); r.Code != http.StatusOK {
			t.Fatalf("ping: %+v", r)
		}
	})
	t.Run("wrong signature is refused and builds nothing", func(t *testing.T) {
		r := rig.SendGitHub(t, s.URL(), "push", "forged-1", "not-the-secret", body)
		if r.Code != http.StatusUnauthorized {
			t.Fatalf("forged push: %+v", r)
		}
		if r := rig.SendGitHub(t, s.URL(), "push", "unsigned-1", "", body); r.Code != http.StatusUnauthorized {
			t.Fatalf("unsigned push: %+v", r)
		}
		var builds []model.Build
		s.Do("GET", "/api/v1/builds?repo="+repo.ID, nil, &builds)
		if len(builds) != 0 {
			t.Fatalf("a refused webhook queued builds: %+v", builds)
		}
	})
	t.Run("unknown repository is 404", func(t *testing.T) {
		other := rig.GitHubPush{Repo: "acme/unknown", Ref: "refs/heads/main", After: commit}.Payload()
		if r := rig.SendGitHub(t, s.URL(), "push", "unknown-1", webhookSecret, other); r.Code != http.StatusNotFound {
			t.Fatalf("unknown repo: %+v", r)
		}
	})

	first := rig.SendGitHub(t, s.URL(), "push", "delivery-1", webhookSecret, body)
	if first.Code != http.StatusAccepted || len(first.Builds) != 1 {
		t.Fatalf("push: %+v", first)
	}
	again := rig.SendGitHub(t, s.URL(), "push", "delivery-1", webhookSecret, body)
	if again.Code != http.StatusAccepted || strings.Join(again.Builds, ",") != strings.Join(first.Builds, ",") {
		t.Fatalf("redelivery must answer the same builds: first %+v, again %+v", first, again)
	}
	b := s.WaitBuild(first.Builds[0], 5*time.Minute)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("build %s: %s (%s)\n%s", b.ID, b.Status, b.Error, s.Log(b.ID))
	}
	if b.Commit != commit || b.Ref != "refs/heads/main" || b.Digest == "" || b.StartedAt == nil || b.FinishedAt == nil {
		t.Errorf("build record incomplete: %+v", b)
	}
	var builds []model.Build
	s.Do("GET", "/api/v1/builds?repo="+repo.ID, nil, &builds)
	if len(builds) != 1 {
		t.Errorf("duplicate delivery made %d builds, want 1", len(builds))
	}

	t.Run("registry has the tag at the reported digest with the revision label", func(t *testing.T) {
		ref := repo.Image + ":latest"
		ctx := context.Background()
		m, err := rig.FetchManifest(ctx, ref)
		if err != nil {
			t.Fatalf("manifest %s: %v", ref, err)
		}
		if m.Digest != b.Digest {
			t.Errorf("registry digest %s, API digest %s", m.Digest, b.Digest)
		}
		labels, err := rig.Labels(ctx, ref, "linux/amd64")
		if err != nil {
			t.Fatal(err)
		}
		if labels["org.opencontainers.image.revision"] != commit {
			t.Errorf("revision label %q, want %s", labels["org.opencontainers.image.revision"], commit)
		}
		if labels["org.opencontainers.image.source"] != strings.TrimSuffix(src.CloneURL, ".git") {
			t.Errorf("source label %q", labels["org.opencontainers.image.source"])
		}
		if _, err := time.Parse(time.RFC3339, labels["org.opencontainers.image.created"]); err != nil {
			t.Errorf("created label %q: %v", labels["org.opencontainers.image.created"], err)
		}
	})
	t.Run("log shows clone, RUN and push", func(t *testing.T) {
		rig.Contains(t, "build log", s.Log(b.ID), "==> clone", commit, "echo built-by-slipway", "pushing", "==> pushed")
	})
	t.Run("deploy webhook is signed and retried until delivered", func(t *testing.T) {
		calls := recv.WaitCalls(t, 3, time.Minute)
		last := calls[2]
		if err := deploy.Verify(hookSecret, last.Header, last.Body, 5*time.Minute, time.Now()); err != nil {
			t.Fatalf("deploy webhook signature: %v", err)
		}
		if calls[0].Header.Get("webhook-id") != last.Header.Get("webhook-id") {
			t.Errorf("retries must keep the webhook-id: %q vs %q", calls[0].Header.Get("webhook-id"), last.Header.Get("webhook-id"))
		}
		var p deploy.Payload
		if err := json.Unmarshal(last.Body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Type != "image.pushed" || p.PushData.Tag != "latest" || p.Repository.RepoName != repo.Image ||
			p.Repository.Namespace != "acme" || p.Repository.Name != "demo" || p.Build.Digest != b.Digest ||
			p.Build.Commit != commit || p.CallbackURL != s.URL()+"/api/v1/builds/"+b.ID {
			t.Errorf("payload: %s", last.Body)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			d := s.Build(b.ID).Deliveries
			if len(d) == 1 && d[0].Status == "delivered" && len(d[0].Attempts) == 3 {
				if d[0].Attempts[0].StatusCode != 500 || d[0].Attempts[2].StatusCode != 204 {
					t.Errorf("attempts: %+v", d[0].Attempts)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("deliveries not recorded: %+v", d)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Run("/metrics counts the webhooks, the build and the delivery attempts", func(t *testing.T) {
		got := metricstest.Scrape(t, s.URL()+"/metrics")
		for _, c := range []struct {
			name   string
			labels []string
			want   float64
		}{
			// ping, forged, unsigned, unknown repository, the push and its redelivery
			{"slipway_webhooks_received_total", []string{"host", "github"}, 6},
			{"slipway_webhooks_rejected_total", []string{"host", "github", "reason", "bad_signature"}, 2},
			{"slipway_webhooks_rejected_total", []string{"host", "github", "reason", "not_registered"}, 1},
			{"slipway_builds_finished_total", []string{"state", "succeeded"}, 1},
			{"slipway_builds_finished_total", []string{"state", "failed"}, 0},
			{"slipway_deploy_deliveries_total", []string{"outcome", "retrying"}, 2},
			{"slipway_deploy_deliveries_total", []string{"outcome", "delivered"}, 1},
		} {
			if n := got.Counter(c.name, c.labels...); n != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, n, c.want)
			}
		}
		if n := got.Sum("slipway_webhooks_rejected_total"); n != 3 {
			t.Errorf("webhooks rejected in all = %v, want 3", n)
		}
		ran := b.FinishedAt.Sub(*b.StartedAt).Seconds()
		if n, sum := got.Histogram("slipway_build_duration_seconds"); n != 1 || sum != ran {
			t.Errorf("build times: %d observed, %v s in all; want 1, %v s (the record's start to end)", n, sum, ran)
		}
		if n, _ := got.Histogram("slipway_build_queue_seconds"); n != 1 {
			t.Errorf("queue times: %d observed, want 1", n)
		}
		// Nine steps, as the log numbers them: the Dockerfile, the base's
		// metadata, .dockerignore, the cache import (none yet), FROM, the
		// context, RUN, COPY and the export. None came from the cache.
		for cached, want := range map[string]float64{"true": 0, "false": 9} {
			if n := got.Counter("slipway_build_steps_total", "cached", cached); n != want {
				t.Errorf("build steps cached=%s = %v, want %v", cached, n, want)
			}
		}
		// The build's job was acknowledged when it finished: nothing waits.
		for _, name := range []string{"slipway_build_queue_depth", "slipway_build_queue_taken", "slipway_build_queue_oldest_age_seconds"} {
			if n := got.Gauge(name); n != 0 {
				t.Errorf("%s = %v, want 0", name, n)
			}
		}
		if n := got.Gauge("slipway_buildkit_up", "addr", s.BuildkitAddr()); n != 1 {
			t.Errorf("slipway_buildkit_up{addr=%q} = %v, want 1", s.BuildkitAddr(), n)
		}
		// The registry cache is exported after the build's end: wait for it.
		waitFor(t, "slipway_buildkit_running_builds 0", 30*time.Second, func() bool {
			return metricstest.Scrape(t, s.URL()+"/metrics").Gauge("slipway_buildkit_running_builds", "addr", s.BuildkitAddr()) == 0
		})
	})
	t.Run("Dockerfile error ends failed with the error and the log", func(t *testing.T) {
		bad := src.Commit("broken build", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo about to fail && exit 3")})
		src.Push("main")
		r := rig.SendGitHub(t, s.URL(), "push", "delivery-2", webhookSecret,
			rig.GitHubPush{Repo: "acme/demo", Ref: "refs/heads/main", Before: commit, After: bad}.Payload())
		if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
			t.Fatalf("push: %+v", r)
		}
		fb := s.WaitBuild(r.Builds[0], 3*time.Minute)
		if fb.Status != model.StatusFailed || !strings.Contains(fb.Error, "exit code: 3") {
			t.Fatalf("want failed with exit code 3, got %s: %q", fb.Status, fb.Error)
		}
		rig.Contains(t, "failed build log", s.Log(fb.ID), "about to fail", "build failed")
		m, err := rig.FetchManifest(context.Background(), repo.Image+":latest")
		if err != nil || m.Digest != b.Digest {
			t.Errorf("a failed build must leave latest at %s, got %s (%v)", b.Digest, m.Digest, err)
		}
	})
	t.Run("missing Dockerfile names the path", func(t *testing.T) {
		gone := src.Commit("remove Dockerfile", map[string]string{"Dockerfile": ""})
		src.Push("main")
		r := rig.SendGitHub(t, s.URL(), "push", "delivery-3", webhookSecret,
			rig.GitHubPush{Repo: "acme/demo", Ref: "refs/heads/main", After: gone}.Payload())
		fb := s.WaitBuild(r.Builds[0], 2*time.Minute)
		if fb.Status != model.StatusFailed || !strings.Contains(fb.Error, `dockerfile "Dockerfile" not found`) {
			t.Fatalf("got %s: %q", fb.Status, fb.Error)
		}
	})
	t.Run("manual build of a ref's tip", func(t *testing.T) {
		var mb model.Build
		if code := s.Do("POST", "/api/v1/repos/"+repo.ID+"/builds", map[string]string{"ref": "refs/heads/main"}, &mb); code != http.StatusAccepted {
			t.Fatalf("trigger: HTTP %d", code)
		}
		if mb.Commit != src.Head() || mb.Trigger != "manual" {
			t.Errorf("manual build %+v, want commit %s", mb, src.Head())
		}
	})
	t.Run("/metrics counts a rebuild's steps taken from the cache", func(t *testing.T) {
		var rb model.Build
		if code := s.Do("POST", "/api/v1/builds/"+b.ID+"/rebuild", nil, &rb); code != http.StatusAccepted {
			t.Fatalf("rebuild: HTTP %d", code)
		}
		if rb = s.WaitBuild(rb.ID, 3*time.Minute); rb.Status != model.StatusSucceeded {
			t.Fatalf("rebuild %s: %s (%s)\n%s", rb.ID, rb.Status, rb.Error, s.Log(rb.ID))
		}
		got := metricstest.Scrape(t, s.URL()+"/metrics")
		// Nine steps again; RUN now comes from the cache (COPY does not:
		// the checkout is new). The failed builds in between count none.
		for cached, want := range map[string]float64{"true": 1, "false": 9 + 8} {
			if n := got.Counter("slipway_build_steps_total", "cached", cached); n != want {
				t.Errorf("build steps cached=%s = %v, want %v\n%s", cached, n, want, s.Log(rb.ID))
			}
		}
		if n := got.Counter("slipway_builds_finished_total", "state", "succeeded"); n != 2 {
			t.Errorf("builds finished succeeded = %v, want 2", n)
		}
	})
}

func TestQueuedEventSurvivesRestart(t *testing.T) {
	// A Slipway with no workers accepts the webhook; the job must still be
	// there after a stop and be built by the next start.
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_WORKERS=0"}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "restart")
	commit := src.Commit("build after restart", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo survived > /built.txt")})
	src.Push("main")
	repo := registerRepo(t, s, "acme/restart", src.CloneURL, nil)
	r := rig.SendGitHub(t, s.URL(), "push", "restart-1", webhookSecret,
		rig.GitHubPush{Repo: "acme/restart", CloneURL: src.CloneURL, Ref: "refs/heads/main", After: commit}.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push: %+v", r)
	}
	if b := s.Build(r.Builds[0]); b.Status != model.StatusQueued {
		t.Fatalf("with no workers the build must stay queued, got %s", b.Status)
	}
	// The job waits; no worker ever made the consumer.
	got := metricstest.Scrape(t, s.URL()+"/metrics")
	if n := got.Gauge("slipway_build_queue_depth"); n != 1 {
		t.Errorf("slipway_build_queue_depth with the job waiting = %v, want 1", n)
	}
	if n := got.Gauge("slipway_build_queue_taken"); n != 0 {
		t.Errorf("slipway_build_queue_taken with no workers = %v, want 0", n)
	}
	if n := got.Gauge("slipway_build_queue_oldest_age_seconds"); n <= 0 || n > 60 {
		t.Errorf("slipway_build_queue_oldest_age_seconds = %v, want the job's age, above 0 and under 60", n)
	}
	s.Stop()
	if left := s.Children(); len(left) > 0 {
		t.Fatalf("processes outlived slipway after SIGTERM: %v", left)
	}
	s.Restart() // default workers
	b := s.WaitBuild(r.Builds[0], 5*time.Minute)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("after restart: %s (%s)\n%s", b.Status, b.Error, s.Log(b.ID))
	}
	m, err := rig.FetchManifest(context.Background(), repo.Image+":latest")
	if err != nil || m.Digest != b.Digest {
		t.Fatalf("registry %s vs build %s: %v", m.Digest, b.Digest, err)
	}
	// The job is acknowledged just after the build's end is stored.
	waitFor(t, "an empty build queue on /metrics", 10*time.Second, func() bool {
		got := metricstest.Scrape(t, s.URL()+"/metrics")
		return got.Gauge("slipway_build_queue_depth") == 0 && got.Gauge("slipway_build_queue_taken") == 0 &&
			got.Gauge("slipway_build_queue_oldest_age_seconds") == 0
	})
}
