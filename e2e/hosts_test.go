package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/webhook"
)

// hostCase is one Git host: how its webhook is sent and how its commit
// statuses look on its API.
type hostCase struct {
	name, provider, fullName, endpoint string
	render                             func(p rig.Push, delivery, secret string) ([]byte, map[string]string)
	statusPath                         func(commit string) string
	states                             []string // pending, running, success in the host's words
}

func githubRender(p rig.Push, delivery, secret string) ([]byte, map[string]string) {
	body := rig.GitHubPush{Repo: p.Repo, CloneURL: p.CloneURL, Ref: p.Ref, Before: p.Before, After: p.After, Message: p.Message}.Payload()
	return body, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
		"X-Hub-Signature-256": "sha256=" + webhook.SignHMAC(body, secret)}
}

var hostCases = []hostCase{
	{"GitHub", "github", "acme/gh", "/hooks/github", githubRender,
		func(c string) string { return "/repos/acme/gh/statuses/" + c }, []string{"pending", "pending", "success"}},
	{"Bitbucket Cloud", "bitbucket", "acme/bbc", "/hooks/bitbucket", rig.Push.BitbucketCloud,
		func(c string) string { return "/repositories/acme/bbc/commit/" + c + "/statuses/build" }, []string{"INPROGRESS", "INPROGRESS", "SUCCESSFUL"}},
	{"Bitbucket Data Center", "bitbucket-server", "PROJ/bbs", "/hooks/bitbucket", rig.Push.BitbucketServer,
		func(c string) string { return "/rest/api/latest/projects/PROJ/repos/bbs/commits/" + c + "/builds" }, []string{"INPROGRESS", "INPROGRESS", "SUCCESSFUL"}},
	{"GitLab", "gitlab", "acme/platform/gl", "/hooks/gitlab", rig.Push.GitLab,
		func(c string) string { return "/projects/acme%2Fplatform%2Fgl/statuses/" + c }, []string{"pending", "running", "success"}},
	{"Gitea", "gitea", "acme/gt", "/hooks/gitea",
		func(p rig.Push, d, s string) ([]byte, map[string]string) { return p.Gitea(d, s, false) },
		func(c string) string { return "/repos/acme/gt/statuses/" + c }, []string{"pending", "pending", "success"}},
	{"Forgejo", "gitea", "acme/fj", "/hooks/gitea",
		func(p rig.Push, d, s string) ([]byte, map[string]string) { return p.Gitea(d, s, true) },
		func(c string) string { return "/repos/acme/fj/statuses/" + c }, []string{"pending", "pending", "success"}},
}

// Each host, end to end against its local API test server (the real hosts
// are unreachable here): signed push → image in the registry → the
// host's commit statuses in order.
func TestEveryGitHostAgainstLocalHostAPIServers(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	for _, hc := range hostCases {
		t.Run(hc.name, func(t *testing.T) {
			host := rig.StartHostAPI(t)
			src := git.NewRepo(t, strings.ReplaceAll(hc.fullName, "/", "-"))
			commit := src.Commit("build on "+hc.name, map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo "+hc.provider+" > /built.txt")})
			src.Push("main")
			token := "token-for-" + hc.provider
			var repo model.Repo
			code := s.Do("POST", "/api/v1/repos", model.Repo{
				Provider: hc.provider, FullName: hc.fullName, CloneURL: src.CloneURL, WebhookSecret: webhookSecret,
				Image: s.RegistryAddr + "/" + strings.ToLower(hc.fullName), APIURL: host.URL, Token: token,
				Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}},
			}, &repo)
			if code != http.StatusCreated {
				t.Fatalf("register: HTTP %d", code)
			}
			push := rig.Push{Repo: hc.fullName, CloneURL: src.CloneURL, Ref: "refs/heads/main", After: commit, Message: "build"}
			body, headers := hc.render(push, "delivery-"+hc.provider, "wrong-secret")
			if r := rig.SendHook(t, s.URL()+hc.endpoint, headers, body); r.Code != http.StatusUnauthorized {
				t.Fatalf("a wrongly signed %s webhook must be refused: %+v", hc.name, r)
			}
			body, headers = hc.render(push, "delivery-"+hc.provider, webhookSecret)
			r := rig.SendHook(t, s.URL()+hc.endpoint, headers, body)
			if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
				t.Fatalf("push: %+v", r)
			}
			if again := rig.SendHook(t, s.URL()+hc.endpoint, headers, body); !slices.Equal(again.Builds, r.Builds) {
				t.Errorf("a repeated delivery must name the same build: %v vs %v", again.Builds, r.Builds)
			}
			b := s.WaitBuild(r.Builds[0], 3*time.Minute)
			if b.Status != model.StatusSucceeded {
				t.Fatalf("build: %s %s\n%s", b.Status, b.Error, s.Log(b.ID))
			}
			if m, err := rig.FetchManifest(context.Background(), repo.Image+":latest"); err != nil || m.Digest != b.Digest {
				t.Fatalf("registry: %v %v", m.Digest, err)
			}
			want := hc.states
			deadline := time.Now().Add(30 * time.Second)
			for !slices.Equal(host.States(commit), want) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if got := host.States(commit); !slices.Equal(got, want) {
				t.Fatalf("statuses %v, want %v; requests: %+v", got, want, host.Requests())
			}
			for _, req := range host.Requests() {
				if req.Path != hc.statusPath(commit) {
					t.Errorf("status went to %s, want %s", req.Path, hc.statusPath(commit))
				}
				if !strings.Contains(fmt.Sprint(req.Header), token) {
					t.Errorf("the repository's token did not reach the host API: %v", req.Header)
				}
			}
		})
	}
}

// Connecting a repository through the CLI against local API test servers
// of each host: the webhook is created there with a fresh secret, a push
// signed with that secret builds, disconnecting deletes the hook.
func TestConnectReposAgainstLocalHostAPIServers(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	get := func(m map[string]any, path ...string) string {
		var v any = m
		for _, k := range path {
			mm, _ := v.(map[string]any)
			v = mm[k]
		}
		str, _ := v.(string)
		return str
	}
	cases := []struct {
		provider, name, endpoint string
		repo                     func(clone string) map[string]any
		hookPath, deletePath     string
		urlAt, secretAt          []string
		hookID                   string
		render                   func(p rig.Push, delivery, secret string) ([]byte, map[string]string)
	}{
		{"github", "acme/c-gh", "/hooks/github",
			func(c string) map[string]any {
				return map[string]any{"full_name": "acme/c-gh", "default_branch": "main", "clone_url": c, "private": true}
			},
			"/repos/acme/c-gh/hooks", "/repos/acme/c-gh/hooks/4242", []string{"config", "url"}, []string{"config", "secret"}, "4242", githubRender},
		{"gitlab", "acme/c-gl", "/hooks/gitlab",
			func(c string) map[string]any {
				return map[string]any{"path_with_namespace": "acme/c-gl", "default_branch": "main", "http_url_to_repo": c, "visibility": "private"}
			},
			"/projects/acme%2Fc-gl/hooks", "/projects/acme%2Fc-gl/hooks/4242", []string{"url"}, []string{"token"}, "4242", rig.Push.GitLab},
		{"gitea", "acme/c-gt", "/hooks/gitea",
			func(c string) map[string]any {
				return map[string]any{"full_name": "acme/c-gt", "default_branch": "main", "clone_url": c, "private": true}
			},
			"/repos/acme/c-gt/hooks", "/repos/acme/c-gt/hooks/4242", []string{"config", "url"}, []string{"config", "secret"}, "4242",
			func(p rig.Push, d, sec string) ([]byte, map[string]string) { return p.Gitea(d, sec, false) }},
		{"bitbucket", "acme/c-bb", "/hooks/bitbucket",
			func(c string) map[string]any {
				return map[string]any{"full_name": "acme/c-bb", "mainbranch": map[string]any{"name": "main"}, "is_private": true,
					"links": map[string]any{"clone": []any{map[string]any{"name": "https", "href": c}}}}
			},
			"/repositories/acme/c-bb/hooks", "/repositories/acme/c-bb/hooks/%7Bb6f2f1a0-hook%7D", []string{"url"}, []string{"secret"}, "{b6f2f1a0-hook}", rig.Push.BitbucketCloud},
	}
	for _, c := range cases {
		t.Run(c.provider, func(t *testing.T) {
			src := git.NewRepo(t, strings.ReplaceAll(c.name, "/", "-"))
			commit := src.Commit("first", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo connected > /built.txt")})
			src.Push("main")
			host := rig.StartHostAPI(t)
			host.Repo = c.repo(src.CloneURL)
			out, err := s.CLI("repo", "connect", c.provider, c.name, "--token", "host-token", "--api-url", host.URL+"/", "--image", s.RegistryAddr+"/"+c.name)
			if err != nil {
				t.Fatalf("connect: %v\n%s", err, out)
			}
			var connected model.Repo
			if err := json.Unmarshal([]byte(out), &connected); err != nil {
				t.Fatalf("connect printed %s", out)
			}
			var hook *rig.HostRequest
			for _, r := range host.Requests() {
				if r.Method == "POST" && r.Path == c.hookPath {
					hook = &r
				}
			}
			if hook == nil {
				t.Fatalf("no hook created at %s: %+v", c.hookPath, host.Requests())
			}
			secret := get(hook.Body, c.secretAt...)
			if get(hook.Body, c.urlAt...) != s.URL()+c.endpoint || len(secret) < 32 {
				t.Fatalf("hook body: %+v", hook.Body)
			}
			if connected.HookID != c.hookID || connected.DefaultBranch != "main" || connected.CloneURL != src.CloneURL ||
				len(connected.Rules) != 2 || connected.WebhookSecret != "" || connected.Token != "" {
				t.Fatalf("registered: %+v", connected)
			}
			body, headers := c.render(rig.Push{Repo: c.name, CloneURL: src.CloneURL, Ref: "refs/heads/main", After: commit, Message: "first"}, "connected-"+c.provider, secret)
			r := rig.SendHook(t, s.URL()+c.endpoint, headers, body)
			if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
				t.Fatalf("push signed with the hook's secret: %+v", r)
			}
			if b := s.WaitBuild(r.Builds[0], 3*time.Minute); b.Status != model.StatusSucceeded {
				t.Fatalf("build: %s %s", b.Status, b.Error)
			}
			if out, err := s.CLI("repo", "disconnect", connected.ID); err != nil {
				t.Fatalf("disconnect: %v\n%s", err, out)
			}
			reqs := host.Requests()
			if last := reqs[len(reqs)-1]; last.Method != "DELETE" || last.Path != c.deletePath {
				t.Errorf("disconnect must delete the hook: last request %s %s, want DELETE %s", last.Method, last.Path, c.deletePath)
			}
		})
	}
}

// Private repositories: HTTPS with a token, a GitHub App installation token
// (exchanged at a local GitHub API test server), an SSH deploy key checked
// against known_hosts, and a same-host submodule (the repository sets
// submodules: true) fetched with the same credentials.
func TestPrivateRepositories(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, []byte(testAppKey(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	host := rig.StartHostAPI(t)
	host.AppToken = "ghs_installation_token"
	s := rig.StartSlipway(t, rig.Options{Env: []string{
		"SLIPWAY_GITHUB_APP_ID=4242", "SLIPWAY_GITHUB_APP_KEY_FILE=" + keyFile, "SLIPWAY_GITHUB_API_URL=" + host.URL + "/",
	}})
	s.PushBusybox()

	statusAPI := rig.StartHostAPI(t)
	buildWith := func(t *testing.T, repo model.Repo, commit string, installation int64) model.Build {
		t.Helper()
		repo.Provider, repo.WebhookSecret = "github", webhookSecret
		repo.Image = s.RegistryAddr + "/" + repo.FullName
		repo.Rules = []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}}
		if installation == 0 {
			// Statuses go to a local stand-in of GitHub's API, never to
			// api.github.com.
			repo.APIURL = statusAPI.URL + "/"
		}
		var stored model.Repo
		if code := s.Do("POST", "/api/v1/repos", repo, &stored); code != http.StatusCreated {
			t.Fatalf("register: HTTP %d", code)
		}
		body := rig.GitHubPush{Repo: repo.FullName, Ref: "refs/heads/main", After: commit, Installation: installation}.Payload()
		r := rig.SendGitHub(t, s.URL(), "push", "d-"+repo.FullName, webhookSecret, body)
		return s.WaitBuild(r.Builds[0], 3*time.Minute)
	}
	build := func(t *testing.T, repo model.Repo, commit string) model.Build { return buildWith(t, repo, commit, 0) }
	files := map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo private > /built.txt")}

	t.Run("token over HTTPS, same-host submodule with the same token", func(t *testing.T) {
		git := rig.StartPrivateGitServer(t, "x-access-token", "ghp_private")
		lib := git.NewRepo(t, "lib")
		lib.Commit("lib", map[string]string{"VERSION": "lib-1.0\n"})
		lib.Push("main")
		app := git.NewRepo(t, "app")
		rig.Git(t, app.Dir, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "../lib.git", "lib")
		commit := app.Commit("app with lib", map[string]string{"Dockerfile": fmt.Sprintf("FROM %s/library/busybox\nCOPY lib/VERSION /lib-version\nRUN cat /lib-version\n", s.RegistryAddr)})
		app.Push("main")
		if b := build(t, model.Repo{FullName: "acme/anon", CloneURL: app.CloneURL}, commit); b.Status != model.StatusFailed || !strings.Contains(b.Error, "authentication") {
			t.Errorf("without a token: %s %q", b.Status, b.Error)
		}
		b := build(t, model.Repo{FullName: "acme/private", CloneURL: app.CloneURL, Token: "ghp_private", Submodules: true}, commit)
		if b.Status != model.StatusSucceeded {
			t.Fatalf("%s %s\n%s", b.Status, b.Error, s.Log(b.ID))
		}
		rig.Contains(t, "log", s.Log(b.ID), "updating 1 submodules",
			"submodule lib: fetching "+git.URL+"/lib.git with the repository's credentials", "lib-1.0")
	})
	t.Run("GitHub App installation token from the push event", func(t *testing.T) {
		git := rig.StartPrivateGitServer(t, "x-access-token", "ghs_installation_token")
		app := git.NewRepo(t, "viaapp")
		commit := app.Commit("app", files)
		app.Push("main")
		// The repository names no installation: the event's installation.id
		// is used, as GitHub sends it for an App's webhooks.
		b := buildWith(t, model.Repo{FullName: "acme/viaapp", CloneURL: app.CloneURL, APIURL: host.URL + "/"}, commit, 77)
		if b.Status != model.StatusSucceeded {
			t.Fatalf("%s %s\n%s", b.Status, b.Error, s.Log(b.ID))
		}
		exchanges := 0
		for _, r := range host.Requests() {
			if r.Path == "/app/installations/77/access_tokens" {
				exchanges++
				if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
					t.Errorf("token exchange without the App's JWT: %v", r.Header)
				}
			}
		}
		if exchanges != 1 {
			t.Errorf("%d token exchanges, want 1 (cached for clone and statuses)", exchanges)
		}
		deadline := time.Now().Add(20 * time.Second)
		for len(host.States(commit)) < 3 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if got := host.States(commit); !slices.Equal(got, []string{"pending", "pending", "success"}) {
			t.Errorf("statuses with the installation token: %v", got)
		}
	})
	t.Run("SSH deploy key checked against known_hosts", func(t *testing.T) {
		git := rig.StartGitServer(t)
		sshd := rig.StartSSHGitServer(t, git.Root)
		src := git.NewRepo(t, "viassh")
		commit := src.Commit("ssh", files)
		src.Push("main")
		b := build(t, model.Repo{FullName: "acme/viassh", CloneURL: sshd.URL("viassh"), SSHKey: sshd.DeployKey, KnownHosts: sshd.KnownHosts}, commit)
		if b.Status != model.StatusSucceeded {
			t.Fatalf("%s %s\n%s", b.Status, b.Error, s.Log(b.ID))
		}
		other := rig.StartSSHGitServer(t, git.Root) // same repos, another host key
		b = build(t, model.Repo{FullName: "acme/spoofed", CloneURL: sshd.URL("viassh"), SSHKey: sshd.DeployKey, KnownHosts: other.KnownHostsAs(sshd.Addr)}, commit)
		if b.Status != model.StatusFailed || !strings.Contains(b.Error, "key") {
			t.Errorf("a host key that is not in known_hosts must fail the clone: %s %q", b.Status, b.Error)
		}
	})
}

// testAppKey is a fresh RSA key in the PEM form GitHub hands out for Apps.
func testAppKey(t *testing.T) string {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

// A Git host that fails status calls delays the statuses, never the build.
func TestStatusFailuresRetriedAgainstLocalGitHubAPIServer(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	host := rig.StartHostAPI(t)
	host.FailStatuses = 2
	src := git.NewRepo(t, "flaky")
	commit := src.Commit("flaky host", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo flaky > /built.txt")})
	src.Push("main")
	var repo model.Repo
	s.Do("POST", "/api/v1/repos", model.Repo{Provider: "github", FullName: "acme/flaky", CloneURL: src.CloneURL,
		WebhookSecret: webhookSecret, Image: s.RegistryAddr + "/acme/flaky", APIURL: host.URL + "/", Token: "ghp_x",
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}}}, &repo)
	r := rig.SendGitHub(t, s.URL(), "push", "flaky-1", webhookSecret, rig.GitHubPush{Repo: "acme/flaky", Ref: "refs/heads/main", After: commit}.Payload())
	b := s.WaitBuild(r.Builds[0], 3*time.Minute)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("a failing status API must not fail the build: %s %s", b.Status, b.Error)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		b = s.Build(b.ID)
		n := len(b.Statuses)
		if n > 0 && b.Statuses[n-1].State == "success" && b.Statuses[n-1].Error == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("success never posted: %+v", b.Statuses)
		}
		time.Sleep(200 * time.Millisecond)
	}
	failed := 0
	for _, p := range b.Statuses {
		if p.Error != "" {
			failed++
			if !strings.Contains(p.Error, "502") {
				t.Errorf("recorded error %q does not say what the host answered", p.Error)
			}
		}
	}
	if failed != 2 {
		t.Errorf("want the 2 refused posts recorded, got %+v", b.Statuses)
	}
	if got := host.States(commit); got[len(got)-1] != "success" {
		t.Errorf("host saw %v, want it to end with success", got)
	}
}
