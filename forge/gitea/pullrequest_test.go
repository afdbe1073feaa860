package gitea_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/slipway-build/slipway/forge/gitea"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

func TestParsePullRequestFixtures(t *testing.T) {
	internal := func(action string) *webhook.PullRequest {
		return &webhook.PullRequest{Action: action, Number: 3, Head: "e4d5aeffa198bfe2a15477ce21298d363909af7e",
			HeadRef: "feature/health", Base: "main", FetchRef: "refs/pull/3/head", Title: "Add health endpoint",
			Author: "mona", HeadCloneURL: "https://gitea.acme.internal/acme/demo.git", DefaultBranch: "main"}
	}
	fork := func(action string) *webhook.PullRequest {
		return &webhook.PullRequest{Action: action, Number: 5, Head: "7a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
			HeadRef: "docs", Base: "main", Fork: true, FetchRef: "refs/pull/5/head", Title: "Fix typo",
			Author: "mona", HeadCloneURL: "https://gitea.acme.internal/mona/demo.git", DefaultBranch: "main"}
	}
	tests := []struct {
		fixture string
		want    *webhook.PullRequest
	}{
		{"pull-request-opened.json", internal(webhook.PROpened)},
		{"pull-request-fork-synchronized.json", fork(webhook.PRUpdated)},
		{"pull-request-closed-merged.json", internal(webhook.PRMerged)},
		{"pull-request-closed.json", fork(webhook.PRClosed)},
		{"pull-request-label-updated.json", internal("")},
	}
	dialects := map[string]func(event, delivery string) http.Header{"gitea": giteaHeaders, "forgejo": forgejoHeaders}
	for _, tt := range tests {
		for name, headers := range dialects {
			t.Run(tt.fixture+"/"+name, func(t *testing.T) {
				h := headers("pull_request", "d-pr")
				got, err := gitea.Webhook{}.Parse(h, fixture(t, tt.fixture))
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				want := webhook.Event{Kind: webhook.KindPullRequest, RawKind: "pull_request", DeliveryID: "d-pr",
					Repo: "acme/demo", PullRequest: tt.want}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Parse =\n %+v\n %+v\nwant\n %+v\n %+v", got, got.PullRequest, want, want.PullRequest)
				}
				peek, err := gitea.Webhook{}.Peek(h, fixture(t, tt.fixture))
				if err != nil || peek.Repo != "acme/demo" || peek.Kind != webhook.KindPullRequest {
					t.Errorf("Peek = %+v, %v; want the base repository acme/demo", peek, err)
				}
			})
		}
	}
}

// A fork deleted since leaves head.repo null; it is still a fork.
func TestPullRequestDeletedFork(t *testing.T) {
	body := webhooktest.EditJSON(t, fixture(t, "pull-request-closed.json"), func(m map[string]any) {
		m["pull_request"].(map[string]any)["head"].(map[string]any)["repo"] = nil
	})
	ev, err := gitea.Webhook{}.Parse(giteaHeaders("pull_request", "d1"), body)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.PullRequest.Fork || ev.PullRequest.HeadCloneURL != "" {
		t.Errorf("PullRequest = %+v, want a fork without a clone URL", ev.PullRequest)
	}
}

func TestPullRequestRejectsBadHead(t *testing.T) {
	body := webhooktest.EditJSON(t, fixture(t, "pull-request-opened.json"), func(m map[string]any) {
		m["pull_request"].(map[string]any)["head"].(map[string]any)["sha"] = "HEAD"
	})
	if _, err := (gitea.Webhook{}).Parse(giteaHeaders("pull_request", "d1"), body); err == nil {
		t.Fatal("Parse accepted a head that is not a commit id")
	}
}
