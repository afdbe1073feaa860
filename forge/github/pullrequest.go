package github

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/slipway-build/slipway/webhook"
)

// prRepo is a pull request's head or base repository; the head's is null
// when the fork was deleted.
type prRepo struct {
	ID            int64  `json:"id"`
	FullName      string `json:"full_name"`
	Fork          bool   `json:"fork"`
	CloneURL      string `json:"clone_url"`
	DefaultBranch string `json:"default_branch"`
}

type prBranch struct {
	Ref  string  `json:"ref"`
	SHA  string  `json:"sha"`
	Repo *prRepo `json:"repo"`
}

type prPayload struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest struct {
		Number int    `json:"number"`
		Title  string `json:"title"`
		Merged bool   `json:"merged"`
		User   struct {
			Login string `json:"login"`
		} `json:"user"`
		Head prBranch `json:"head"`
		Base prBranch `json:"base"`
	} `json:"pull_request"`
}

// prAction maps GitHub's pull_request actions to Slipway's; the others
// (labeled, edited, assigned, converted_to_draft…) map to "", ignored.
func prAction(action string, merged bool) string {
	switch action {
	case "opened", "reopened", "ready_for_review":
		return webhook.PROpened
	case "synchronize":
		return webhook.PRUpdated
	case "closed":
		if merged {
			return webhook.PRMerged
		}
		return webhook.PRClosed
	}
	return ""
}

// parsePullRequest reads a pull_request event's body into ev.PullRequest.
func parsePullRequest(ev *webhook.Event, raw []byte) error {
	var p prPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("decode %s payload: %w", ev.RawKind, err)
	}
	pr := p.PullRequest
	n := p.Number
	if n == 0 {
		n = pr.Number
	}
	out := &webhook.PullRequest{Action: prAction(p.Action, pr.Merged), Number: n, Head: pr.Head.SHA,
		HeadRef: pr.Head.Ref, Base: pr.Base.Ref, Fork: isFork(pr.Head.Repo, pr.Base.Repo),
		FetchRef: "refs/pull/" + strconv.Itoa(n) + "/head", Title: pr.Title, Author: pr.User.Login}
	if pr.Head.Repo != nil {
		out.HeadCloneURL = pr.Head.Repo.CloneURL
	}
	if pr.Base.Repo != nil {
		out.DefaultBranch = pr.Base.Repo.DefaultBranch
	}
	ev.PullRequest = out
	return webhook.CheckPullRequest(out)
}

// isFork says the head branch lives outside the base repository: another
// name, another id (a fork renamed to the base's name), or a deleted fork.
func isFork(head, base *prRepo) bool {
	if head == nil || base == nil {
		return true
	}
	if head.ID != 0 && base.ID != 0 && head.ID != base.ID {
		return true
	}
	return !strings.EqualFold(head.FullName, base.FullName)
}
