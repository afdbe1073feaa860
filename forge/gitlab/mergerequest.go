package gitlab

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/slipway-build/slipway/webhook"
)

// mrProject is a merge request's source or target project.
type mrProject struct {
	PathWithNamespace string `json:"path_with_namespace"`
	GitHTTPURL        string `json:"git_http_url"`
	DefaultBranch     string `json:"default_branch"`
}

// mrPayload is the part of a Merge Request Hook Slipway reads. project is
// the target project, the one the webhook belongs to.
type mrPayload struct {
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	Project          mrProject `json:"project"`
	ObjectAttributes struct {
		IID             int    `json:"iid"`
		Title           string `json:"title"`
		Action          string `json:"action"`
		SourceBranch    string `json:"source_branch"`
		TargetBranch    string `json:"target_branch"`
		SourceProjectID int64  `json:"source_project_id"`
		TargetProjectID int64  `json:"target_project_id"`
		// OldRev is set on an update only when it pushed new commits
		// (not for a title, label or description change).
		OldRev     string `json:"oldrev"`
		LastCommit struct {
			ID string `json:"id"`
		} `json:"last_commit"`
		Source *mrProject `json:"source"`
	} `json:"object_attributes"`
}

// mrAction maps object_attributes.action to Slipway's; approvals and
// updates that pushed nothing are ignored.
func mrAction(action, oldRev string) string {
	switch action {
	case "open", "reopen":
		return webhook.PROpened
	case "update":
		if oldRev != "" {
			return webhook.PRUpdated
		}
	case "close":
		return webhook.PRClosed
	case "merge":
		return webhook.PRMerged
	}
	return ""
}

// parseMergeRequest reads a Merge Request Hook's body into ev.PullRequest.
func parseMergeRequest(ev *webhook.Event, body []byte) error {
	var p mrPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("decode %s payload: %w", ev.RawKind, err)
	}
	a := p.ObjectAttributes
	// GitLab names the merge request's author only by id; the user is
	// whoever acted (opened, pushed, merged).
	out := &webhook.PullRequest{Action: mrAction(a.Action, a.OldRev), Number: a.IID, Head: a.LastCommit.ID,
		HeadRef: a.SourceBranch, Base: a.TargetBranch, Fork: a.SourceProjectID != a.TargetProjectID,
		FetchRef: "refs/merge-requests/" + strconv.Itoa(a.IID) + "/head", Title: a.Title,
		Author: p.User.Username, DefaultBranch: p.Project.DefaultBranch}
	if a.Source != nil {
		out.HeadCloneURL = a.Source.GitHTTPURL
	}
	ev.PullRequest = out
	return webhook.CheckPullRequest(out)
}
