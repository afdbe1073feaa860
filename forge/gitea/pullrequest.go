package gitea

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/slipway-build/slipway/webhook"
)

// prRepo is a branch's repository in Gitea's PRBranchInfo; null when the
// head's fork was deleted.
type prRepo struct {
	ID            int64  `json:"id"`
	FullName      string `json:"full_name"`
	CloneURL      string `json:"clone_url"`
	DefaultBranch string `json:"default_branch"`
}

// prBranch is Gitea's PRBranchInfo.
type prBranch struct {
	Ref    string  `json:"ref"`
	SHA    string  `json:"sha"`
	RepoID int64   `json:"repo_id"`
	Repo   *prRepo `json:"repo"`
}

// prPayload is Gitea's (and Forgejo's) PullRequestPayload.
type prPayload struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest struct {
		Number int      `json:"number"`
		Title  string   `json:"title"`
		Merged bool     `json:"merged"`
		User   user     `json:"user"`
		Head   prBranch `json:"head"`
		Base   prBranch `json:"base"`
	} `json:"pull_request"`
}

// prAction maps Gitea's HookIssueAction values to Slipway's: a merge is
// "closed" with merged set; edited, label_updated, assigned, reviewed and
// the rest are ignored.
func prAction(action string, merged bool) string {
	switch action {
	case "opened", "reopened":
		return webhook.PROpened
	case "synchronized":
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
func parsePullRequest(ev *webhook.Event, body []byte) error {
	var p prPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("decode %s payload: %w", ev.RawKind, err)
	}
	pr := p.PullRequest
	n := p.Number
	if n == 0 {
		n = pr.Number
	}
	author := pr.User.Login
	if author == "" {
		author = pr.User.Username
	}
	out := &webhook.PullRequest{Action: prAction(p.Action, pr.Merged), Number: n, Head: pr.Head.SHA,
		HeadRef: pr.Head.Ref, Base: pr.Base.Ref, Fork: isFork(pr.Head, pr.Base),
		FetchRef: "refs/pull/" + strconv.Itoa(n) + "/head", Title: pr.Title, Author: author}
	if pr.Head.Repo != nil {
		out.HeadCloneURL = pr.Head.Repo.CloneURL
	}
	if pr.Base.Repo != nil {
		out.DefaultBranch = pr.Base.Repo.DefaultBranch
	}
	ev.PullRequest = out
	return webhook.CheckPullRequest(out)
}

// isFork says the head branch lives outside the base repository, by name,
// by id, or because the head's repository is gone.
func isFork(head, base prBranch) bool {
	if head.Repo == nil || base.Repo == nil {
		return true
	}
	if head.RepoID != 0 && base.RepoID != 0 && head.RepoID != base.RepoID {
		return true
	}
	return !strings.EqualFold(head.Repo.FullName, base.Repo.FullName)
}
