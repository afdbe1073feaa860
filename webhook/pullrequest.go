package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/trigger"
)

// PullRequests is what a closed or merged pull request needs: the builds
// of its newest head (package store) and a way to stop them (package
// queue). Nil leaves the builds of a closed pull request running.
type PullRequests interface {
	Newest(ctx context.Context, repoID, ref string) (commit string, builds []string, err error)
	GetBuild(ctx context.Context, id string) (model.Build, error)
	Cancel(ctx context.Context, id, reason, by string) (bool, error)
}

// TagDeleter removes tags of a repository's image from the registry (a
// closed pull request's, for rules with delete_on_close); nil deletes
// nothing.
type TagDeleter interface {
	DeleteTags(ctx context.Context, repo model.Repo, tags []string) error
}

// ReasonClosed is why a closed or merged pull request's builds stop.
const ReasonClosed = "pull request closed"

// submitPullRequest builds an opened or updated pull request's head, or
// stops a closed one's builds. Any other action does nothing.
func (h *Handler) submitPullRequest(ctx context.Context, repo model.Repo, ev Event, log *slog.Logger) (Answer, bool, error) {
	ans := Answer{Builds: []string{}}
	pr := ev.PullRequest
	if err := checkPullRequest(pr); err != nil {
		return ans, false, badEvent{err}
	}
	log = log.With("pull_request", pr.Number, "action", pr.Action, "fork", pr.Fork)
	switch pr.Action {
	case PROpened, PRUpdated:
		return h.buildPullRequest(ctx, repo, ev, log)
	case PRClosed, PRMerged:
		return h.closePullRequest(ctx, repo, *pr, log)
	}
	ans.Ignored = "pull request action " + pr.Action + " does not build"
	return ans, true, nil
}

func (h *Handler) buildPullRequest(ctx context.Context, repo model.Repo, ev Event, log *slog.Logger) (Answer, bool, error) {
	pr := ev.PullRequest
	if err := h.fullHead(ctx, repo, pr); err != nil {
		return Answer{Builds: []string{}}, false, err
	}
	if pr.Fork {
		// The fork's URL is only logged: builds clone the registered
		// repository at the host's ref of the head.
		log = log.With("head_repo", pr.HeadCloneURL)
	}
	builds, off, err := trigger.PullRequest(repo, trigger.PullRequestEvent{
		PR:    modelPullRequest(*pr),
		Title: pr.Title, Author: pr.Author, Time: h.now(), DeliveryID: ev.DeliveryID, InstallationID: ev.InstallationID,
	})
	if err != nil {
		return Answer{Builds: []string{}}, false, err
	}
	if off {
		return Answer{Builds: []string{}, Ignored: trigger.SkipPullRequestsOff}, true, nil
	}
	ans, complete, err := h.enqueue(ctx, repo, builds, log)
	if len(builds) > 0 && builds[0].Status == model.StatusSkipped {
		ans.Reason = builds[0].Reason
	}
	return ans, complete, err
}

// closePullRequest cancels the builds of the pull request's newest head
// (older heads' builds were superseded by it) and deletes its tags where a
// rule asks.
func (h *Handler) closePullRequest(ctx context.Context, repo model.Repo, pr PullRequest, log *slog.Logger) (Answer, bool, error) {
	ans := Answer{Builds: []string{}}
	if h.PullRequests == nil {
		return ans, true, nil
	}
	_, ids, err := h.PullRequests.Newest(ctx, repo.ID, trigger.PullRequestRef(pr.Number))
	if err != nil {
		return ans, false, fmt.Errorf("builds of pull request %d: %w", pr.Number, err)
	}
	for _, id := range ids {
		active, err := h.PullRequests.Cancel(ctx, id, ReasonClosed, "")
		if err != nil {
			return ans, false, err
		}
		if active {
			ans.Cancelled = append(ans.Cancelled, id)
		}
	}
	log.Info("pull request closed", "cancelled", ans.Cancelled)
	if h.Tags == nil || pr.Fork {
		// A fork's builds pushed nothing.
		return ans, true, nil
	}
	tags, err := h.closedTags(ctx, repo, pr, ids)
	if err != nil {
		return ans, false, err
	}
	if len(tags) == 0 {
		return ans, true, nil
	}
	if err := h.Tags.DeleteTags(ctx, repo, tags); err != nil {
		// Answered 503, so the host redelivers and the delete is tried again.
		return ans, false, fmt.Errorf("delete the pull request's tags: %w", err)
	}
	log.Info("deleted the pull request's tags", "image", repo.Image, "tags", tags)
	return ans, true, nil
}

// closedTags are the tags delete_on_close removes: those the pull
// request's newest builds pushed, and those its rules name for it now (a
// build still running when the pull request closed may have pushed
// them). Only tags of pull_request rules are named, and every one of
// those names the pull request ({pr}).
func (h *Handler) closedTags(ctx context.Context, repo model.Repo, pr PullRequest, ids []string) ([]string, error) {
	var tags []string
	for _, id := range ids {
		b, err := h.PullRequests.GetBuild(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("build %s of pull request %d: %w", id, pr.Number, err)
		}
		if b.PullRequest != nil && b.Rule.DeleteOnClose {
			tags = append(tags, b.Tags...)
		}
	}
	builds, _, err := trigger.PullRequest(repo, trigger.PullRequestEvent{PR: modelPullRequest(pr), Time: h.now()})
	if err != nil {
		return nil, err
	}
	for _, b := range builds {
		if b.Rule.DeleteOnClose {
			tags = append(tags, b.Tags...)
		}
	}
	slices.Sort(tags)
	return slices.Compact(tags), nil
}

func modelPullRequest(pr PullRequest) model.PullRequest {
	return model.PullRequest{Number: pr.Number, Head: pr.Head, HeadRef: pr.HeadRef, Base: pr.Base, Fork: pr.Fork, FetchRef: pr.FetchRef}
}

// checkPullRequest makes sure what reaches a clone, a tag or a ref name is
// what it claims to be, as CheckPushes does for pushes.
func checkPullRequest(pr *PullRequest) error {
	switch {
	case pr == nil:
		return errors.New("pull request event without its pull request")
	case pr.Number <= 0:
		return fmt.Errorf("pull request number %d", pr.Number)
	case pr.Action == PRClosed || pr.Action == PRMerged:
		return nil
	case !isShortCommit(pr.Head):
		// Bitbucket Cloud sends 12 characters; fullHead resolves them.
		return fmt.Errorf("pull request %d: head %q is not a commit id", pr.Number, pr.Head)
	case pr.Base == "" || strings.ContainsAny(pr.Base, " ~^:?*[\\"):
		return fmt.Errorf("pull request %d: base %q is not a branch name", pr.Number, pr.Base)
	case pr.FetchRef != "" && (!strings.HasPrefix(pr.FetchRef, "refs/") || strings.Contains(pr.FetchRef, "..")):
		return fmt.Errorf("pull request %d: fetch ref %q is not a full ref name", pr.Number, pr.FetchRef)
	}
	return nil
}

// badEvent is a payload that parsed but says something impossible; it is
// answered 400.
type badEvent struct{ err error }

func (e badEvent) Error() string { return e.err.Error() }
func (e badEvent) Unwrap() error { return e.err }

// fullHead turns a short head hash (Bitbucket Cloud sends 12 characters)
// into the full one, read from the head's ref in the registered
// repository: builds and statuses name full commits.
func (h *Handler) fullHead(ctx context.Context, repo model.Repo, pr *PullRequest) error {
	if len(pr.Head) == 40 || pr.FetchRef == "" {
		return nil // a fork without a ref is skipped by the trigger
	}
	if h.Heads == nil {
		return badEvent{fmt.Errorf("pull request %d: head %q is a short hash and this server cannot resolve it", pr.Number, pr.Head)}
	}
	full, err := h.Heads(ctx, repo, pr.FetchRef)
	if err != nil {
		return fmt.Errorf("resolve the head of pull request %d at %s: %w", pr.Number, pr.FetchRef, err)
	}
	if !strings.HasPrefix(full, pr.Head) {
		return badEvent{fmt.Errorf("pull request %d: %s names %s now, not %s (pushed again since?)", pr.Number, pr.FetchRef, full, pr.Head)}
	}
	pr.Head = full
	return nil
}

// isShortCommit is a full or abbreviated (7 or more) hex commit id.
func isShortCommit(s string) bool {
	if len(s) < 7 || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
