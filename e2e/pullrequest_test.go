package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// prHosts are the hosts whose pull request events are sent, with the ref
// where each keeps a pull request's head in the base repository.
var prHosts = []struct {
	name, provider string
	success        string // the host's word for a successful status
	headRef        string // a format with the pull request's number
	// noForkRef: the host keeps no ref of a fork's head in the base
	// repository (Bitbucket Cloud), so fork pull requests cannot build.
	noForkRef bool
}{
	{"github", "github", "success", "refs/pull/%d/head", false},
	{"gitea", "gitea", "success", "refs/pull/%d/head", false},
	{"gitlab", "gitlab", "success", "refs/merge-requests/%d/head", false},
	{"bitbucket-server", "bitbucket-server", "SUCCESSFUL", "refs/pull-requests/%d/from", false},
	// Internal pull requests build from the head branch itself; the
	// number's ref is pushed only to keep the table's shape.
	{"bitbucket", "bitbucket", "SUCCESSFUL", "refs/pull/%d/head", true},
}

// prRepo registers a repository on host with a pull_request rule pushing
// pr-{pr} (deleted on close) and the given pull_requests setting.
func prRepo(t *testing.T, s *rig.Slipway, host *rig.HostAPI, provider, fullName, cloneURL, mode string) model.Repo {
	t.Helper()
	var repo model.Repo
	code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: provider, FullName: fullName, CloneURL: cloneURL, WebhookSecret: webhookSecret,
		Image: s.RegistryAddr + "/" + fullName, APIURL: host.URL, Token: "token-" + fullName, PullRequests: mode,
		Rules: []model.Rule{
			{SourceType: "branch", Source: "main", Tags: []string{"latest"}},
			{SourceType: "pull_request", Source: "main", Tags: []string{"pr-{pr}"}, DeleteOnClose: true, Test: &model.Test{Target: "test"}},
		},
	}, &repo)
	if code != http.StatusCreated {
		t.Fatalf("register %s: HTTP %d", fullName, code)
	}
	return repo
}

// prHead commits files on a branch of src and pushes it where the host
// keeps a pull request's head in the base repository (refs/pull/<n>/head,
// as GitHub does); a branch of the repository itself is pushed too.
func prHead(t *testing.T, src *rig.Repo, headRef, branch string, number int, fork bool, files map[string]string) string {
	t.Helper()
	rig.Git(t, src.Dir, "checkout", "-q", "-B", branch, "main")
	commit := src.Commit("pull request "+branch, files)
	src.Push(branch + ":" + fmt.Sprintf(headRef, number))
	if !fork {
		src.Push(branch)
	}
	rig.Git(t, src.Dir, "checkout", "-q", "main")
	return commit
}

// prDockerfile is a pull request head's Dockerfile: the rule's test stage
// checks what the image stage made, and says so in the log (the shell
// computes the 42, so the Dockerfile text alone cannot match).
func prDockerfile(registry, run string) string {
	return fmt.Sprintf("FROM %s/library/busybox:latest AS app\nRUN %s\nCOPY . /src\n"+
		"FROM app AS test\nRUN test -s /built.txt && echo pr-tested-$((6*7))\n"+
		"FROM app\nCMD [\"cat\", \"/built.txt\"]\n", registry, run)
}

func sendPR(t *testing.T, s *rig.Slipway, host string, pr rig.PullRequest, delivery string) rig.HookResponse {
	t.Helper()
	r := rig.SendPullRequest(t, s.URL(), host, pr, delivery, webhookSecret)
	if r.Code != http.StatusAccepted {
		t.Fatalf("pull request %s: %+v", pr.Action, r)
	}
	return r
}

func tagExists(image, tag string) bool {
	_, err := rig.FetchManifest(context.Background(), image+":"+tag)
	return err == nil
}

func TestPullRequests(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	for _, hc := range prHosts {
		t.Run(hc.name, func(t *testing.T) {
			host := rig.StartHostAPI(t)
			src := git.NewRepo(t, "pr-"+hc.name)
			src.Commit("main", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo main > /built.txt")})
			src.Push("main")
			base := func(name, mode string) model.Repo {
				return prRepo(t, s, host, hc.provider, "acme/"+name+"-"+hc.name, src.CloneURL, mode)
			}
			internal, forkInternal, forkAll := base("int", ""), base("fork", model.PullRequestsInternal), base("all", model.PullRequestsAll)
			t.Run("internal pull request builds its head and pushes pr-7", func(t *testing.T) {
				head := prHead(t, src, hc.headRef, "feature", 7, false, map[string]string{"Dockerfile": prDockerfile(s.RegistryAddr, "echo pr > /built.txt")})
				pr := rig.PullRequest{Repo: internal.FullName, Number: 7, Action: "opened", Head: head, HeadRef: "feature", Base: "main"}
				r := sendPR(t, s, hc.name, pr, "pr7-opened-"+hc.name)
				if len(r.Builds) != 1 {
					t.Fatalf("builds %+v, want one", r)
				}
				b := s.WaitBuild(r.Builds[0], 3*time.Minute)
				if b.Status != model.StatusSucceeded || b.Commit != head || !slices.Equal(b.Tags, []string{"pr-7"}) {
					t.Fatalf("build %s %s commit %s tags %v\n%s", b.Status, b.Error, b.Commit, b.Tags, s.Log(b.ID))
				}
				rig.Contains(t, "build log", s.Log(b.ID), `==> test stage "test" of Dockerfile`, "pr-tested-42", `==> test stage "test" passed`)
				if !tagExists(internal.Image, "pr-7") || tagExists(internal.Image, "latest") {
					t.Errorf("registry: pr-7 %v (want it), latest %v (want none)", tagExists(internal.Image, "pr-7"), tagExists(internal.Image, "latest"))
				}
				waitFor(t, "success status on the head commit", 30*time.Second, func() bool {
					st := host.States(head)
					return len(st) > 0 && st[len(st)-1] == hc.success
				})
				t.Run("merged with delete_on_close removes pr-7", func(t *testing.T) {
					pr.Action = "merged"
					sendPR(t, s, hc.name, pr, "pr7-merged-"+hc.name)
					if tagExists(internal.Image, "pr-7") {
						t.Fatal("pr-7 is still in the registry")
					}
				})
			})
			t.Run("fork under internal builds nothing", func(t *testing.T) {
				head := prHead(t, src, hc.headRef, "fork-a", 8, true, map[string]string{"app.txt": "fork\n"})
				r := sendPR(t, s, hc.name, rig.PullRequest{Repo: forkInternal.FullName, Number: 8, Action: "opened", Head: head, HeadRef: "feature", Base: "main", Fork: true, ForkRepo: "mallory/fork"}, "pr8-"+hc.name)
				if len(r.Builds) != 0 || len(r.Skipped) != 1 || r.Reason != "pull request from a fork; pull_requests is internal" {
					t.Fatalf("answer %+v, want one skipped build with the fork reason", r)
				}
			})
			t.Run("fork under all is built, never pushed, without registry credentials", func(t *testing.T) {
				// Without credentials the build can still pull the public
				// base image, and it runs the rule's test stage.
				head := prHead(t, src, hc.headRef, "fork-b", 9, true, map[string]string{"Dockerfile": prDockerfile(s.RegistryAddr, "echo fork > /built.txt"), "app.txt": "fork\n"})
				r := sendPR(t, s, hc.name, rig.PullRequest{Repo: forkAll.FullName, Number: 9, Action: "opened", Head: head, HeadRef: "feature", Base: "main", Fork: true, ForkRepo: "mallory/fork"}, "pr9-"+hc.name)
				if hc.noForkRef {
					want := "the host keeps no ref of the pull request's head in the repository (a Bitbucket Cloud fork); its commit cannot be fetched"
					if len(r.Builds) != 0 || len(r.Skipped) != 1 || r.Reason != want {
						t.Fatalf("answer %+v, want one skipped build: %s", r, want)
					}
					return
				}
				if len(r.Builds) != 1 {
					t.Fatalf("answer %+v, want one build", r)
				}
				b := s.WaitBuild(r.Builds[0], 3*time.Minute)
				log := s.Log(b.ID)
				if b.Status != model.StatusSucceeded || b.Digest != "" || len(b.Tags) != 0 {
					t.Fatalf("build %s %s digest %q tags %v\n%s", b.Status, b.Error, b.Digest, b.Tags, log)
				}
				rig.Contains(t, "fork build log", log, "pr-tested-42", `==> test stage "test" passed`,
					"built; not pushed: a pull request from a fork is built without registry credentials")
				if tagExists(forkAll.Image, "pr-9") || tagExists(forkAll.Image, "buildcache") {
					t.Error("a fork's build reached the registry")
				}
			})
			t.Run("update supersedes, close cancels", func(t *testing.T) {
				slow := map[string]string{"Dockerfile": prDockerfile(s.RegistryAddr, "sleep 60; echo slow > /built.txt")}
				first := prHead(t, src, hc.headRef, "slow", 10, false, slow)
				pr := rig.PullRequest{Repo: internal.FullName, Number: 10, Action: "opened", Head: first, HeadRef: "slow", Base: "main"}
				r1 := sendPR(t, s, hc.name, pr, "pr10-opened-"+hc.name)
				waitFor(t, "first head's build running", time.Minute, func() bool { return s.Build(r1.Builds[0]).Status == model.StatusRunning })
				slow["app.txt"] = "second\n"
				pr.Head, pr.Action = prHead(t, src, hc.headRef, "slow", 10, false, slow), "updated"
				r2 := sendPR(t, s, hc.name, pr, "pr10-updated-"+hc.name)
				if b := s.WaitBuild(r1.Builds[0], time.Minute); b.Status != model.StatusCancelled || b.SupersededBy != r2.Builds[0] {
					t.Errorf("first head's build: %s superseded by %q, want cancelled by %s", b.Status, b.SupersededBy, r2.Builds[0])
				}
				pr.Action = "closed"
				r3 := sendPR(t, s, hc.name, pr, "pr10-closed-"+hc.name)
				if !slices.Equal(r3.Cancelled, r2.Builds) {
					t.Errorf("close cancelled %v, want %v", r3.Cancelled, r2.Builds)
				}
				if b := s.WaitBuild(r2.Builds[0], time.Minute); b.Status != model.StatusCancelled || b.Reason != "pull request closed" {
					t.Errorf("second head's build: %s %q, want cancelled, pull request closed", b.Status, b.Reason)
				}
			})
		})
	}
}
