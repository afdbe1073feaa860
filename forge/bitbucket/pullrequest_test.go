package bitbucket_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/slipway-build/slipway/forge/bitbucket"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

func TestParsePullRequestFixtures(t *testing.T) {
	cloudInternal := func(action string) *webhook.PullRequest {
		// Cloud's abbreviated hash, kept as sent.
		return &webhook.PullRequest{Action: action, Number: 3, Head: "11acffe8a01f", HeadRef: "feature/health",
			Base: "main", FetchRef: "refs/heads/feature/health", Title: "Add health endpoint", Author: "mona",
			HeadCloneURL: cloudClone}
	}
	cloudFork := func(action string) *webhook.PullRequest {
		// No ref in acme/demo holds a fork's commits on Cloud.
		return &webhook.PullRequest{Action: action, Number: 8, Head: "584764b7ebee", HeadRef: "fix-typo",
			Base: "main", Fork: true, Title: "Fix typo", Author: "octocat",
			HeadCloneURL: "https://bitbucket.org/octocat/demo.git"}
	}
	serverInternal := func(action string) *webhook.PullRequest {
		return &webhook.PullRequest{Action: action, Number: 5, Head: "11acffe8a01f38ff6c91ec4ac7960db25f9267a5",
			HeadRef: "feature/health", Base: "main", FetchRef: "refs/pull-requests/5/from",
			Title: "Add health endpoint", Author: "mona", HeadCloneURL: "https://bitbucket.acme.internal/scm/acme/demo.git"}
	}
	serverFork := func(action string) *webhook.PullRequest {
		return &webhook.PullRequest{Action: action, Number: 9, Head: "584764b7ebee6c3b664d6662e2e27cd05daa9bc8",
			HeadRef: "fix-typo", Base: "main", Fork: true, FetchRef: "refs/pull-requests/9/from",
			Title: "Fix typo", Author: "mona", HeadCloneURL: "https://bitbucket.acme.internal/scm/~mona/demo.git"}
	}
	tests := []struct {
		fixture, key string
		server       bool
		want         webhook.Event
	}{
		{"cloud-pr-created.json", "pullrequest:created", false, cloudPR("pullrequest:created", cloudInternal(webhook.PROpened))},
		{"cloud-pr-fork-updated.json", "pullrequest:updated", false, cloudPR("pullrequest:updated", cloudFork(webhook.PRUpdated))},
		{"cloud-pr-fulfilled.json", "pullrequest:fulfilled", false, cloudPR("pullrequest:fulfilled", cloudInternal(webhook.PRMerged))},
		{"cloud-pr-fork-rejected.json", "pullrequest:rejected", false, cloudPR("pullrequest:rejected", cloudFork(webhook.PRClosed))},
		// An approval is another event: ignored, like a comment.
		{"cloud-pr-approved.json", "pullrequest:approved", false, webhook.Event{Kind: webhook.KindOther,
			RawKind: "pullrequest:approved", Provider: "bitbucket", DeliveryID: "d-pr", Repo: "acme/demo"}},
		{"server-pr-opened.json", "pr:opened", true, serverPR("pr:opened", serverInternal(webhook.PROpened))},
		{"server-pr-fork-from-ref-updated.json", "pr:from_ref_updated", true, serverPR("pr:from_ref_updated", serverFork(webhook.PRUpdated))},
		{"server-pr-merged.json", "pr:merged", true, serverPR("pr:merged", serverInternal(webhook.PRMerged))},
		{"server-pr-fork-declined.json", "pr:declined", true, serverPR("pr:declined", serverFork(webhook.PRClosed))},
		{"server-pr-fork-declined.json", "pr:deleted", true, serverPR("pr:deleted", serverFork(webhook.PRClosed))},
		// A title change builds nothing.
		{"server-pr-modified.json", "pr:modified", true, webhook.Event{Kind: webhook.KindOther,
			RawKind: "pr:modified", Provider: "bitbucket-server", DeliveryID: "d-pr", Repo: "ACME/demo"}},
	}
	for _, tt := range tests {
		t.Run(tt.key+"/"+tt.fixture, func(t *testing.T) {
			h := cloudHeaders(tt.key, "d-pr")
			if tt.server {
				h = serverHeaders(tt.key, "d-pr")
			}
			got, err := bitbucket.Webhook{}.Parse(h, fixture(t, tt.fixture))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n %+v\n %+v\nwant\n %+v\n %+v", got, got.PullRequest, tt.want, tt.want.PullRequest)
			}
			peek, err := bitbucket.Webhook{}.Peek(h, fixture(t, tt.fixture))
			if err != nil || peek.Repo != tt.want.Repo || peek.Kind != tt.want.Kind || peek.Provider != tt.want.Provider {
				t.Errorf("Peek = %+v, %v; want the base repository %s", peek, err, tt.want.Repo)
			}
		})
	}
}

func cloudPR(key string, pr *webhook.PullRequest) webhook.Event {
	return webhook.Event{Kind: webhook.KindPullRequest, RawKind: key, Provider: "bitbucket", DeliveryID: "d-pr",
		Repo: "acme/demo", PullRequest: pr}
}

func serverPR(key string, pr *webhook.PullRequest) webhook.Event {
	return webhook.Event{Kind: webhook.KindPullRequest, RawKind: key, Provider: "bitbucket-server", DeliveryID: "d-pr",
		Repo: "ACME/demo", PullRequest: pr}
}

// A pull request's event is told Cloud's or Data Center's by its key even
// when the delivery id header is not the one its dialect sends.
func TestPullRequestDialectByKey(t *testing.T) {
	h := http.Header{"X-Event-Key": {"pr:opened"}, "X-Request-Uuid": {"u1"}}
	if _, err := (bitbucket.Webhook{}).Parse(h, fixture(t, "server-pr-opened.json")); err == nil {
		t.Fatal("a Data Center key with Cloud's delivery header parsed; want an error for the missing X-Request-Id")
	}
}

func TestPullRequestRejects(t *testing.T) {
	tests := []struct {
		name, fixture, key string
		server             bool
		edit               func(map[string]any)
	}{
		{"cloud head not hex", "cloud-pr-created.json", "pullrequest:created", false, func(m map[string]any) {
			m["pullrequest"].(map[string]any)["source"].(map[string]any)["commit"].(map[string]any)["hash"] = "--x"
		}},
		{"cloud branch is a refspec", "cloud-pr-created.json", "pullrequest:created", false, func(m map[string]any) {
			m["pullrequest"].(map[string]any)["source"].(map[string]any)["branch"].(map[string]any)["name"] = "a:refs/heads/main"
		}},
		{"server without toRef repository", "server-pr-opened.json", "pr:opened", true, func(m map[string]any) {
			m["pullRequest"].(map[string]any)["toRef"].(map[string]any)["repository"] = nil
		}},
		{"server head missing", "server-pr-opened.json", "pr:opened", true, func(m map[string]any) {
			delete(m["pullRequest"].(map[string]any)["fromRef"].(map[string]any), "latestCommit")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := cloudHeaders(tt.key, "d1")
			if tt.server {
				h = serverHeaders(tt.key, "d1")
			}
			body := webhooktest.EditJSON(t, fixture(t, tt.fixture), tt.edit)
			if _, err := (bitbucket.Webhook{}).Parse(h, body); err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
		})
	}
}
