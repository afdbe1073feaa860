package trigger_test

import (
	"testing"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/trigger"
)

func prRepo(mode string) model.Repo {
	repo := demoRepo()
	repo.PullRequests = mode
	repo.Rules = append(repo.Rules, model.Rule{SourceType: "pull_request", Source: "main", Tags: []string{"pr-{pr}"}, DeleteOnClose: true})
	return repo
}

func prEvent(fork bool, fetchRef string) trigger.PullRequestEvent {
	return trigger.PullRequestEvent{
		PR:    model.PullRequest{Number: 7, Head: head, HeadRef: "feature", Base: "main", Fork: fork, FetchRef: fetchRef},
		Title: "Add feature", Author: "octocat", Time: at, DeliveryID: "d-1",
	}
}

func TestPullRequest(t *testing.T) {
	tests := []struct {
		name     string
		mode     string
		fork     bool
		fetchRef string
		off      bool
		status   string
		reason   string
		tags     []string
	}{
		{"internal by default", "", false, "refs/pull/7/head", false, model.StatusQueued, "", []string{"pr-7"}},
		{"internal", model.PullRequestsInternal, false, "refs/pull/7/head", false, model.StatusQueued, "", []string{"pr-7"}},
		{"fork under the default", "", true, "refs/pull/7/head", false, model.StatusSkipped, "pull request from a fork; pull_requests is internal", nil},
		{"fork under all: built, no tags", model.PullRequestsAll, true, "refs/pull/7/head", false, model.StatusQueued, "", nil},
		{"fork without a fetch ref (Bitbucket Cloud)", model.PullRequestsAll, true, "", false, model.StatusSkipped, trigger.SkipNoFetchRef, nil},
		{"off", model.PullRequestsOff, false, "refs/pull/7/head", true, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			builds, off, err := trigger.PullRequest(prRepo(tt.mode), prEvent(tt.fork, tt.fetchRef))
			if err != nil {
				t.Fatal(err)
			}
			if off != tt.off {
				t.Fatalf("off = %v, want %v", off, tt.off)
			}
			if tt.off {
				if len(builds) != 0 {
					t.Fatalf("builds = %v, want none", builds)
				}
				return
			}
			if len(builds) != 1 {
				t.Fatalf("%d builds, want 1 (only the pull_request rule)", len(builds))
			}
			b := builds[0]
			if b.Status != tt.status || b.Reason != tt.reason {
				t.Errorf("status %q reason %q, want %q %q", b.Status, b.Reason, tt.status, tt.reason)
			}
			if len(b.Tags) != len(tt.tags) || (len(tt.tags) > 0 && b.Tags[0] != tt.tags[0]) {
				t.Errorf("tags = %v, want %v", b.Tags, tt.tags)
			}
			if b.Ref != "refs/pull/7/head" || b.Commit != head || b.Trigger != trigger.Webhook || b.Message != "Add feature" || b.Pusher != "octocat" {
				t.Errorf("ref %q commit %q trigger %q message %q pusher %q", b.Ref, b.Commit, b.Trigger, b.Message, b.Pusher)
			}
			if b.PullRequest == nil || b.PullRequest.Number != 7 || b.PullRequest.Fork != tt.fork || b.PullRequest.FetchRef != tt.fetchRef {
				t.Errorf("pull request = %+v", b.PullRequest)
			}
		})
	}
}

// A redelivered event names the same build; a new head is a new one.
func TestPullRequestID(t *testing.T) {
	repo := prRepo("")
	a, _, _ := trigger.PullRequest(repo, prEvent(false, "refs/pull/7/head"))
	b, _, _ := trigger.PullRequest(repo, prEvent(false, "refs/pull/7/head"))
	if a[0].ID != b[0].ID || a[0].ID != "a39fd6a2d5954470b671" {
		t.Fatalf("ids %s, %s; want both a39fd6a2d5954470b671", a[0].ID, b[0].ID)
	}
	e := prEvent(false, "refs/pull/7/head")
	e.PR.Head = before
	c, _, _ := trigger.PullRequest(repo, e)
	if c[0].ID == a[0].ID {
		t.Fatal("a new head got the old head's id")
	}
}
