package trigger

import (
	"fmt"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/rules"
)

// PullRequestEvent is a pull request's head as Slipway learned of it, in
// plain values: the webhook handler converts its event, so this package
// imports no webhook code.
type PullRequestEvent struct {
	PR             model.PullRequest
	Title, Author  string
	Time           time.Time
	DeliveryID     string
	InstallationID int64
}

// Why a pull request builds nothing.
const (
	SkipPullRequestsOff = "pull_requests is off"
	SkipFork            = "pull request from a fork; pull_requests is internal"
	SkipNoFetchRef      = "the host keeps no ref of the pull request's head in the repository (a Bitbucket Cloud fork); its commit cannot be fetched"
)

// PullRequestRef is the ref a pull request's builds are recorded under:
// one per pull request, so that a new head supersedes the build of the
// previous one, whatever ref the host keeps the head at.
func PullRequestRef(number int) string { return fmt.Sprintf("refs/pull/%d/head", number) }

// PullRequestMode is the repository's pull_requests setting, internal when
// unset.
func PullRequestMode(repo model.Repo) string {
	if repo.PullRequests == "" {
		return model.PullRequestsInternal
	}
	return repo.PullRequests
}

// PullRequest returns the builds a pull request's head asks for under the
// repository's pull_request rules. off says the repository builds no pull
// requests at all: nothing is returned, not even a record. A pull request
// the settings refuse (a fork under internal, a head that cannot be
// fetched) comes back as skipped builds with the reason. A fork's build
// has no tags: it is built and tested, never pushed.
func PullRequest(repo model.Repo, e PullRequestEvent) (builds []model.Build, off bool, err error) {
	mode := PullRequestMode(repo)
	if mode == model.PullRequestsOff {
		return nil, true, nil
	}
	plans, err := rules.PullRequestPlans(repo, rules.PullRequest{Number: e.PR.Number, Head: e.PR.Head, Base: e.PR.Base, Time: e.Time})
	if err != nil {
		return nil, false, err
	}
	skip := pullRequestSkip(mode, e.PR)
	for _, plan := range plans {
		plan.Skip = skip
		builds = append(builds, newPullRequestBuild(repo, plan, e))
	}
	return builds, false, nil
}

func pullRequestSkip(mode string, pr model.PullRequest) string {
	switch {
	case pr.Fork && mode != model.PullRequestsAll:
		return SkipFork
	case pr.FetchRef == "":
		return SkipNoFetchRef
	}
	return ""
}

func newPullRequestBuild(repo model.Repo, plan rules.Plan, e PullRequestEvent) model.Build {
	pr := e.PR
	b := newBuild(repo, plan, Push{
		Ref: PullRequestRef(pr.Number), After: pr.Head, Message: e.Title, Pusher: e.Author, Time: e.Time,
		Trigger: Webhook, DeliveryID: e.DeliveryID, InstallationID: e.InstallationID,
	})
	b.PullRequest = &pr
	if pr.Fork {
		// Code from outside the repository: nothing of it reaches the
		// registry.
		b.Tags = nil
	}
	return b
}
