package rig

// TEMPORARY: delete on merging branch pradapt, whose GitHub file registers
// "github" too (a second registration panics). Until then it lets the
// pull request pipeline's e2e tests send GitHub's pull_request events.

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/webhook"
)

var _ = prSender("github", sendGitHubPullRequest)

// githubPRAction is GitHub's action for each of the rig's.
var githubPRAction = map[string]string{"opened": "opened", "updated": "synchronize", "closed": "closed", "merged": "closed"}

func sendGitHubPullRequest(t testing.TB, baseURL string, pr PullRequest, delivery, secret string) HookResponse {
	t.Helper()
	owner, name, _ := strings.Cut(pr.Repo, "/")
	headRepo := pr.Repo
	if pr.Fork {
		headRepo = pr.ForkRepo
	}
	repo := func(full string) map[string]any {
		o, n, _ := strings.Cut(full, "/")
		return map[string]any{"id": len(full), "name": n, "full_name": full, "owner": map[string]any{"login": o},
			"clone_url": "https://github.com/" + full + ".git", "default_branch": "main", "fork": full != pr.Repo}
	}
	doc := map[string]any{
		"action": githubPRAction[pr.Action], "number": pr.Number,
		"pull_request": map[string]any{
			"number": pr.Number, "state": map[bool]string{true: "closed", false: "open"}[pr.Action == "closed" || pr.Action == "merged"],
			"title": "pull request " + pr.HeadRef, "user": map[string]any{"login": "octocat"},
			"merged": pr.Action == "merged", "draft": false,
			"head": map[string]any{"ref": pr.HeadRef, "sha": pr.Head, "repo": repo(headRepo)},
			"base": map[string]any{"ref": pr.Base, "repo": repo(pr.Repo)},
		},
		"repository": map[string]any{"id": 42, "name": name, "full_name": pr.Repo, "owner": map[string]any{"login": owner},
			"clone_url": "https://github.com/" + pr.Repo + ".git", "default_branch": "main"},
		"sender": map[string]any{"login": "octocat", "id": 1},
	}
	body, _ := json.Marshal(doc)
	return SendHook(t, baseURL+"/hooks/github", map[string]string{
		"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": delivery,
		"X-Hub-Signature-256": "sha256=" + webhook.SignHMAC(body, secret),
	}, body)
}
