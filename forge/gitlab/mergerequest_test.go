package gitlab_test

import (
	"reflect"
	"testing"

	"github.com/slipway-build/slipway/forge/gitlab"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

func TestParseMergeRequestFixtures(t *testing.T) {
	internal := func(action string) *webhook.PullRequest {
		return &webhook.PullRequest{Action: action, Number: 4, Head: "ceac7ba0748011632bdf90ae77cb72d000d3a41e",
			HeadRef: "feature/health", Base: "main", FetchRef: "refs/merge-requests/4/head",
			Title: "Add health endpoint", Author: "mona",
			HeadCloneURL: "https://gitlab.acme.internal/acme/platform/demo.git", DefaultBranch: "main"}
	}
	fork := func(action string) *webhook.PullRequest {
		return &webhook.PullRequest{Action: action, Number: 9, Head: "5c7a0d1e9f8b6a4c2e0d8f6b4a2c0e8d6f4b2a09",
			HeadRef: "fix-typo", Base: "main", Fork: true, FetchRef: "refs/merge-requests/9/head",
			Title: "Fix typo", Author: "octocat",
			HeadCloneURL: "https://gitlab.acme.internal/mona/demo.git", DefaultBranch: "main"}
	}
	tests := []struct {
		fixture string
		want    *webhook.PullRequest
	}{
		{"merge-request-open.json", internal(webhook.PROpened)},
		// oldrev: the update pushed commits.
		{"merge-request-fork-update.json", fork(webhook.PRUpdated)},
		// No oldrev: a title change, nothing to build.
		{"merge-request-update-title.json", internal("")},
		{"merge-request-merge.json", internal(webhook.PRMerged)},
		{"merge-request-fork-close.json", fork(webhook.PRClosed)},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			h := headers("Merge Request Hook", "uuid-mr", "idem-mr")
			got, err := gitlab.Webhook{}.Parse(h, fixture(t, tt.fixture))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := webhook.Event{Kind: webhook.KindPullRequest, RawKind: "Merge Request Hook", DeliveryID: "idem-mr",
				Repo: "acme/platform/demo", PullRequest: tt.want}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse =\n %+v\n %+v\nwant\n %+v\n %+v", got, got.PullRequest, want, want.PullRequest)
			}
			peek, err := gitlab.Webhook{}.Peek(h, fixture(t, tt.fixture))
			if err != nil || peek.Repo != "acme/platform/demo" || peek.Kind != webhook.KindPullRequest {
				t.Errorf("Peek = %+v, %v; want the target project acme/platform/demo", peek, err)
			}
		})
	}
}

func TestMergeRequestActions(t *testing.T) {
	tests := []struct{ action, oldrev, want string }{
		{"open", "", webhook.PROpened},
		{"reopen", "", webhook.PROpened},
		{"update", "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", webhook.PRUpdated},
		{"update", "", ""},
		{"close", "", webhook.PRClosed},
		{"merge", "", webhook.PRMerged},
		{"approved", "", ""},
		{"unapproved", "", ""},
	}
	for _, tt := range tests {
		body := webhooktest.EditJSON(t, fixture(t, "merge-request-open.json"), func(m map[string]any) {
			a := m["object_attributes"].(map[string]any)
			a["action"] = tt.action
			if tt.oldrev != "" {
				a["oldrev"] = tt.oldrev
			}
		})
		ev, err := gitlab.Webhook{}.Parse(headers("Merge Request Hook", "u1", ""), body)
		if err != nil {
			t.Fatalf("%s: %v", tt.action, err)
		}
		if ev.PullRequest.Action != tt.want {
			t.Errorf("action %s oldrev %q = %q, want %q", tt.action, tt.oldrev, ev.PullRequest.Action, tt.want)
		}
	}
}

func TestMergeRequestRejectsBadHead(t *testing.T) {
	body := webhooktest.EditJSON(t, fixture(t, "merge-request-open.json"), func(m map[string]any) {
		m["object_attributes"].(map[string]any)["last_commit"] = nil
	})
	if _, err := (gitlab.Webhook{}).Parse(headers("Merge Request Hook", "u1", ""), body); err == nil {
		t.Fatal("Parse accepted a merge request without a head commit")
	}
}
