package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// recordingGit is a Git server that notes every request it gets: it
// serves a real copy of the repository, so a build that cloned from it
// would succeed, and only its log can tell.
type recordingGit struct {
	URL  string
	mu   sync.Mutex
	reqs []string
}

func startRecordingGit(t *testing.T, behind *rig.GitServer) *recordingGit {
	t.Helper()
	target, err := url.Parse(behind.URL)
	if err != nil {
		t.Fatal(err)
	}
	rg := &recordingGit{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rg.mu.Lock()
		rg.reqs = append(rg.reqs, r.Method+" "+r.URL.String())
		rg.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rg.URL = srv.URL
	return rg
}

func (rg *recordingGit) requests() []string {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return append([]string(nil), rg.reqs...)
}

// TestPayloadCloneURLIsIgnored: the clone URL comes from the registered
// repository, never from the webhook's payload. A repository registered
// without clone_url gets the one its host's API names (A); a push whose
// payload names another server (B, holding the same commit) builds from A,
// and B receives no request at all. Before, the payload's URL was cloned
// from, with the repository's token, whenever no clone_url was registered.
func TestPayloadCloneURLIsIgnored(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	gitA := rig.StartGitServer(t)
	src := gitA.NewRepo(t, "demo")
	commit := src.Commit("build from A", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo from-a > /built.txt")})
	src.Push("main")
	gitB := rig.StartGitServer(t)
	gitB.NewRepo(t, "demo")
	rig.Git(t, src.Dir, "push", "-q", gitB.URL+"/demo.git", "main")
	b := startRecordingGit(t, gitB)

	host := rig.StartHostAPI(t)
	host.Repo = map[string]any{"full_name": "acme/pinned", "default_branch": "main", "clone_url": src.CloneURL, "private": true}
	var stored model.Repo
	code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: "acme/pinned", WebhookSecret: webhookSecret, Token: "ghp_host_token",
		APIURL: host.URL + "/", Image: s.RegistryAddr + "/acme/pinned",
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}},
	}, &stored)
	if code != http.StatusCreated {
		t.Fatalf("register without clone_url: HTTP %d", code)
	}
	// Not fatal: on the old code the clone URL stayed empty, and what
	// matters most is where the build then cloned from.
	if stored.CloneURL != src.CloneURL {
		t.Errorf("registered clone_url %q, want the host API's %q", stored.CloneURL, src.CloneURL)
	}

	body := rig.GitHubPush{Repo: "acme/pinned", CloneURL: b.URL + "/demo.git", Ref: "refs/heads/main", After: commit, Message: "build from A"}.Payload()
	r := rig.SendGitHub(t, s.URL(), "push", "d-pinned", webhookSecret, body)
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push: HTTP %d %+v", r.Code, r)
	}
	built := s.WaitBuild(r.Builds[0], 3*time.Minute)
	if reqs := b.requests(); len(reqs) != 0 {
		t.Errorf("the payload's clone URL got requests: %v", reqs)
	}
	if built.Status != model.StatusSucceeded || built.CloneURL != src.CloneURL {
		t.Fatalf("build: %s %q from %q, want succeeded from %s\n%s", built.Status, built.Error, built.CloneURL, src.CloneURL, s.Log(built.ID))
	}
	if log := s.Log(built.ID); !strings.Contains(log, src.CloneURL) || strings.Contains(log, b.URL) {
		t.Errorf("the build log names the wrong remote:\n%s", log)
	}
}

// TestInternalTargetsRefusedAtRegistration: the real binary, with the
// suite's loopback range open, still refuses a metadata address and the
// clone URL schemes that read locally or run commands. Nothing is dialled:
// the refusal is made on the URL and the address it names.
func TestInternalTargetsRefusedAtRegistration(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	cases := []struct{ field, cloneURL, hook string }{
		{"hooks[0].url", "", "http://169.254.169.254/latest/meta-data/"},
		{"clone_url", "file:///etc", ""},
		{"clone_url", "ext::sh -c touch% /tmp/pwned", ""},
		{"clone_url", "git://127.0.0.1/demo.git", ""},
		{"clone_url", "https://user:secret@127.0.0.1/demo.git", ""},
	}
	for _, c := range cases {
		repo := model.Repo{Provider: "github", FullName: "acme/refused", CloneURL: c.cloneURL, WebhookSecret: webhookSecret,
			Image: s.RegistryAddr + "/acme/refused", Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}}}
		if repo.CloneURL == "" {
			repo.CloneURL = "https://127.0.0.1:1/demo.git"
		}
		if c.hook != "" {
			repo.Hooks = []model.Hook{{URL: c.hook, Secret: "whsec_" + strings.Repeat("QUJD", 8)}}
		}
		var out map[string]string
		if code := s.Do("POST", "/api/v1/repos", repo, &out); code != http.StatusBadRequest || !strings.HasPrefix(out["error"], c.field+":") {
			t.Errorf("%s %s%s: HTTP %d %v, want 400 naming %s", c.field, c.cloneURL, c.hook, code, out, c.field)
		}
	}
}
