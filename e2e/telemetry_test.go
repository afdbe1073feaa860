package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// A real `slipway serve` with OTEL_EXPORTER_OTLP_ENDPOINT set sends the
// spans of one real build (BuildKit, registry, deploy hook) over OTLP/HTTP
// to a collector on loopback: one trace from the webhook to the delivery,
// every span naming the build; and with SLIPWAY_LOG_FORMAT=json every log
// line about the build names its build, repo and org.
func TestTracesAndJSONLogsOfOneRealBuild(t *testing.T) {
	otlp := rig.StartOTLPReceiver(t)
	recv := rig.StartReceiver(t, 0)
	s := rig.StartSlipway(t, rig.Options{Env: []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.URL,
		"OTEL_BSP_SCHEDULE_DELAY=200", // milliseconds: spans arrive while the test waits
		"SLIPWAY_LOG_FORMAT=json",
	}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "demo")
	commit := src.Commit("traced", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo traced > /built.txt")})
	src.Push("main")
	registerRepo(t, s, "acme/demo", src.CloneURL, []model.Hook{{URL: recv.URL + "/deploy", Secret: deploy.GenerateSecret()}})

	push := rig.GitHubPush{Repo: "acme/demo", Ref: "refs/heads/main", After: commit, Message: "traced"}
	r := rig.SendGitHub(t, s.URL(), "push", "traced-1", webhookSecret, push.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push: %+v", r)
	}
	id := r.Builds[0]
	if b := s.WaitBuild(id, 5*time.Minute); b.Status != model.StatusSucceeded {
		t.Fatalf("build %s: %s (%s)\n%s", id, b.Status, b.Error, s.Log(id))
	}
	recv.WaitCalls(t, 1, time.Minute)

	want := []string{"webhook", "enqueue", "build", "clone", "solve", "tags", "cache", "deliver", "status"}
	spans := otlp.WaitSpans(t, time.Minute, func(got []rig.Span) bool {
		seen := map[string]bool{}
		for _, sp := range got {
			seen[sp.Name] = true
		}
		for _, n := range want {
			if !seen[n] {
				return false
			}
		}
		return true
	})
	counts := map[string]int{}
	for _, sp := range spans {
		counts[sp.Name]++
	}
	t.Logf("spans received: %v", counts)
	byName := map[string]rig.Span{}
	for _, sp := range spans {
		if _, ok := byName[sp.Name]; !ok {
			byName[sp.Name] = sp
		}
	}
	root := byName["webhook"]
	if root.ParentID != "" || root.Kind != "SPAN_KIND_SERVER" || root.Attrs["slipway.build.ids"] != id ||
		root.Attrs["slipway.delivery"] != "traced-1" || root.Attrs["slipway.host"] != "github" || root.Attrs["http.response.status_code"] != "202" {
		t.Errorf("webhook span %+v; want a root server span of delivery traced-1 from github, answered 202, that queued %s", root, id)
	}
	for _, sp := range spans {
		if sp.Service != "slipway" || sp.Resource["slipway.role"] != "serve" {
			t.Errorf("span %s from service %q, role %q; want slipway, serve", sp.Name, sp.Service, sp.Resource["slipway.role"])
		}
		if sp.TraceID != root.TraceID {
			t.Errorf("span %s in trace %s; the webhook's is %s", sp.Name, sp.TraceID, root.TraceID)
		}
		if sp.Name != "webhook" && sp.Attrs["slipway.build.id"] != id {
			t.Errorf("span %s names build %q, want %s", sp.Name, sp.Attrs["slipway.build.id"], id)
		}
		if sp.Attrs["slipway.repository"] != "acme/demo" || sp.Attrs["slipway.organization"] != "acme" {
			t.Errorf("span %s names repository %q, organization %q; want acme/demo, acme", sp.Name, sp.Attrs["slipway.repository"], sp.Attrs["slipway.organization"])
		}
		if sp.Error != "" {
			t.Errorf("span %s failed: %s", sp.Name, sp.Error)
		}
	}
	parents := map[string]string{"enqueue": "webhook", "build": "enqueue", "clone": "build", "solve": "build", "tags": "build", "cache": "build", "deliver": "build"}
	for child, parent := range parents {
		if byName[child].ParentID != byName[parent].SpanID {
			t.Errorf("%s span's parent is %s, want the %s span %s", child, byName[child].ParentID, parent, byName[parent].SpanID)
		}
	}
	b := s.Build(id)
	if got := byName["solve"].Attrs["slipway.digest"]; got != b.Digest {
		t.Errorf("solve span's digest %q, the build's %s", got, b.Digest)
	}

	t.Run("every JSON log line about the build names build, repo and org", func(t *testing.T) {
		raw, err := os.ReadFile(s.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		about := map[string]bool{}
		for _, line := range strings.Split(string(raw), "\n") {
			if !strings.Contains(line, id) {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("log line about the build is no JSON object (%v): %s", err, line)
				continue
			}
			msg, _ := rec["msg"].(string)
			about[msg] = true
			named := rec["build"] == id
			if ids, ok := rec["builds"].([]any); ok && len(ids) == 1 && ids[0] == id {
				named = true
			}
			if !named || rec["repo"] != "acme/demo" || rec["org"] != "acme" {
				t.Errorf("line %q names build %v, repo %v, org %v; want %s, acme/demo, acme", msg, rec["build"], rec["repo"], rec["org"], id)
			}
		}
		t.Logf("log lines about the build: %v", about)
		for _, msg := range []string{"webhook accepted", "build finished", "deploy hook done"} {
			if !about[msg] {
				t.Errorf("no %q line about the build; lines about it: %v", msg, about)
			}
		}
	})
}
