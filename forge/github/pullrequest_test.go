package github_test

import (
	"reflect"
	"testing"

	"github.com/slipway-build/slipway/forge/github"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

func TestParsePullRequestFixtures(t *testing.T) {
	const (
		internalHead = "4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5"
		forkHead     = "c0ffee1234567890abcdef1234567890abcdef12"
	)
	internal := func(action string) *webhook.PullRequest {
		return &webhook.PullRequest{Action: action, Number: 7, Head: internalHead, HeadRef: "feature/healthz",
			Base: "main", FetchRef: "refs/pull/7/head", Title: "Add /healthz endpoint", Author: "mona",
			HeadCloneURL: "https://github.com/acme/demo.git", DefaultBranch: "main"}
	}
	fork := func(action string) *webhook.PullRequest {
		return &webhook.PullRequest{Action: action, Number: 12, Head: forkHead, HeadRef: "fix-typo",
			Base: "main", Fork: true, FetchRef: "refs/pull/12/head", Title: "Fix typo in README", Author: "octocat",
			HeadCloneURL: "https://github.com/octocat/demo.git", DefaultBranch: "main"}
	}
	tests := []struct {
		fixture string
		want    *webhook.PullRequest
	}{
		{"pull-request-opened.json", internal(webhook.PROpened)},
		{"pull-request-fork-synchronize.json", fork(webhook.PRUpdated)},
		{"pull-request-closed-merged.json", internal(webhook.PRMerged)},
		{"pull-request-closed.json", fork(webhook.PRClosed)},
		// Labels build nothing: the handler ignores an empty action.
		{"pull-request-labeled.json", internal("")},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			h := headers("pull_request", "d-"+tt.fixture, "application/json")
			got, err := github.Webhook{}.Parse(h, fixture(t, tt.fixture))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := webhook.Event{Kind: webhook.KindPullRequest, RawKind: "pull_request", DeliveryID: "d-" + tt.fixture,
				Repo: "acme/demo", PullRequest: tt.want}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse =\n %+v\n %+v\nwant\n %+v\n %+v", got, got.PullRequest, want, want.PullRequest)
			}
			peek, err := github.Webhook{}.Peek(h, fixture(t, tt.fixture))
			if err != nil || peek.Repo != "acme/demo" || peek.Kind != webhook.KindPullRequest {
				t.Errorf("Peek = %+v, %v; want the base repository acme/demo", peek, err)
			}
		})
	}
}

// Each other action GitHub documents, and the ones that open: draft PRs
// wait for ready_for_review.
func TestPullRequestActions(t *testing.T) {
	tests := []struct {
		action string
		merged bool
		want   string
	}{
		{"opened", false, webhook.PROpened},
		{"reopened", false, webhook.PROpened},
		{"ready_for_review", false, webhook.PROpened},
		{"synchronize", false, webhook.PRUpdated},
		{"closed", true, webhook.PRMerged},
		{"closed", false, webhook.PRClosed},
		{"edited", false, ""},
		{"converted_to_draft", false, ""},
		{"review_requested", false, ""},
	}
	for _, tt := range tests {
		body := fixture(t, "pull-request-opened.json")
		body = editPR(t, body, tt.action, tt.merged)
		ev, err := github.Webhook{}.Parse(headers("pull_request", "d1", "application/json"), body)
		if err != nil {
			t.Fatalf("%s: %v", tt.action, err)
		}
		if ev.PullRequest.Action != tt.want {
			t.Errorf("action %s merged %v = %q, want %q", tt.action, tt.merged, ev.PullRequest.Action, tt.want)
		}
	}
}

// A fork deleted after the PR was opened leaves head.repo null; a fork
// renamed to the base's name keeps another id. Both are forks.
func TestPullRequestForkRules(t *testing.T) {
	deleted := webhooktest.EditJSON(t, fixture(t, "pull-request-closed.json"), func(m map[string]any) {
		m["pull_request"].(map[string]any)["head"].(map[string]any)["repo"] = nil
	})
	renamed := webhooktest.EditJSON(t, fixture(t, "pull-request-closed.json"), func(m map[string]any) {
		m["pull_request"].(map[string]any)["head"].(map[string]any)["repo"].(map[string]any)["full_name"] = "acme/demo"
	})
	for name, body := range map[string][]byte{"deleted fork": deleted, "renamed fork": renamed} {
		ev, err := github.Webhook{}.Parse(headers("pull_request", "d1", "application/json"), body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !ev.PullRequest.Fork {
			t.Errorf("%s: Fork = false, want true", name)
		}
	}
}

func TestPullRequestRejectsBadHead(t *testing.T) {
	body := webhooktest.EditJSON(t, fixture(t, "pull-request-opened.json"), func(m map[string]any) {
		m["pull_request"].(map[string]any)["head"].(map[string]any)["sha"] = "--upload-pack=touch /tmp/x"
	})
	if _, err := (github.Webhook{}).Parse(headers("pull_request", "d1", "application/json"), body); err == nil {
		t.Fatal("Parse accepted a head that is not a commit id")
	}
}

func editPR(t *testing.T, body []byte, action string, merged bool) []byte {
	return webhooktest.EditJSON(t, body, func(m map[string]any) {
		m["action"] = action
		m["pull_request"].(map[string]any)["merged"] = merged
	})
}
