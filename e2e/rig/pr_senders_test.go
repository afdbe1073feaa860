package rig

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/forge/hosts"
	"github.com/slipway-build/slipway/webhook"
)

// Each sender's body and headers go through the matching adapter, as the
// handler runs it (Peek, Verify, Parse), and come out as the pull request
// the rig meant to send: the rig and the adapters cannot drift apart.
func TestPullRequestSendersParse(t *testing.T) {
	const (
		secret = "rig-secret"
		head   = "4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5"
	)
	type render func(PullRequest, string, string) ([]byte, map[string]string)
	hostCases := []struct {
		host, repo, forkRepo string
		render               render
		fetchRef             func(n int, fork bool) string
		shortHead            bool
	}{
		{"github", "acme/demo", "octocat/demo", PullRequest.GitHub, refPull, false},
		{"gitlab", "acme/platform/demo", "mona/demo", PullRequest.GitLab, refMergeRequest, false},
		{"gitea", "acme/demo", "mona/demo", PullRequest.Gitea, refPull, false},
		{"bitbucket", "acme/demo", "octocat/demo", PullRequest.BitbucketCloud, refCloudBranch, true},
		{"bitbucket-server", "ACME/demo", "~MONA/demo", PullRequest.BitbucketServer, refPullRequestsFrom, false},
	}
	actions := []string{webhook.PROpened, webhook.PRUpdated, webhook.PRClosed, webhook.PRMerged}
	for _, hc := range hostCases {
		if _, ok := prSenders[hc.host]; !ok {
			t.Errorf("no sender registered for %s", hc.host)
		}
		host, ok := hosts.Find(hc.host)
		if !ok {
			t.Fatalf("no host %s in forge/hosts", hc.host)
		}
		for _, fork := range []bool{false, true} {
			for _, action := range actions {
				pr := PullRequest{Repo: hc.repo, Number: 7, Action: action, Head: head, HeadRef: "feature/x", Base: "main",
					Fork: fork, ForkRepo: hc.forkRepo}
				want := webhook.PullRequest{Action: action, Number: 7, Head: head, HeadRef: "feature/x", Base: "main",
					Fork: fork, FetchRef: hc.fetchRef(7, fork)}
				if hc.shortHead {
					want.Head = head[:12]
				}
				t.Run(hc.host+"/"+action+map[bool]string{true: "/fork", false: ""}[fork], func(t *testing.T) {
					got := parseSent(t, host, hc.render, pr, secret)
					if got.Repo != hc.repo || got.Provider != "" && got.Provider != hc.host {
						t.Errorf("repo %q provider %q, want %q %q", got.Repo, got.Provider, hc.repo, hc.host)
					}
					if got.Kind != webhook.KindPullRequest || got.PullRequest == nil {
						t.Fatalf("Parse = %+v, want a pull request event", got)
					}
					p := *got.PullRequest
					p.Title, p.Author, p.HeadCloneURL, p.DefaultBranch = "", "", "", ""
					if p != want {
						t.Errorf("PullRequest =\n %+v\nwant\n %+v", p, want)
					}
				})
			}
		}
	}
}

// parseSent renders pr for host and runs it through the host's adapter.
func parseSent(t *testing.T, host hosts.Host, r func(PullRequest, string, string) ([]byte, map[string]string), pr PullRequest, secret string) webhook.Event {
	t.Helper()
	body, headers := r(pr, "delivery-1", secret)
	h := http.Header{"Content-Type": {"application/json"}}
	for k, v := range headers {
		h.Set(k, v)
	}
	p := host.Webhook
	peek, err := p.Peek(h, body)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	if err := p.Verify(h, body, secret); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	ev, err := p.Parse(h, body)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if peek.Repo != ev.Repo || peek.Kind != ev.Kind || peek.Provider != ev.Provider {
		t.Fatalf("Peek %+v and Parse %+v disagree", peek, ev)
	}
	return ev
}

func refPull(n int, _ bool) string { return "refs/pull/" + itoa(n) + "/head" }

func refMergeRequest(n int, _ bool) string { return "refs/merge-requests/" + itoa(n) + "/head" }

func refPullRequestsFrom(n int, _ bool) string { return "refs/pull-requests/" + itoa(n) + "/from" }

// Bitbucket Cloud has no ref for a fork's head in the base repository.
func refCloudBranch(_ int, fork bool) string {
	if fork {
		return ""
	}
	return "refs/heads/feature/x"
}

func itoa(n int) string { return strconv.Itoa(n) }

// A host's own action passes through the senders, and the adapters ignore
// those that do not build.
func TestPullRequestSendersIgnoredActions(t *testing.T) {
	tests := []struct {
		host, repo, action, wantKind string
		render                       func(PullRequest, string, string) ([]byte, map[string]string)
	}{
		{"github", "acme/demo", "labeled", webhook.KindPullRequest, PullRequest.GitHub},
		{"gitlab", "acme/demo", "approved", webhook.KindPullRequest, PullRequest.GitLab},
		{"gitea", "acme/demo", "label_updated", webhook.KindPullRequest, PullRequest.Gitea},
		{"bitbucket", "acme/demo", "pullrequest:approved", webhook.KindOther, PullRequest.BitbucketCloud},
		{"bitbucket-server", "ACME/demo", "pr:modified", webhook.KindOther, PullRequest.BitbucketServer},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			host, _ := hosts.Find(tt.host)
			pr := PullRequest{Repo: tt.repo, Number: 3, Action: tt.action, Head: strings.Repeat("c", 40), HeadRef: "x", Base: "main"}
			ev := parseSent(t, host, tt.render, pr, "s")
			if ev.Kind != tt.wantKind || ev.PullRequest != nil && ev.PullRequest.Action != "" {
				t.Errorf("Parse = %+v (%+v), want kind %s and nothing to act on", ev, ev.PullRequest, tt.wantKind)
			}
		})
	}
}
