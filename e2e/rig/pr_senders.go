package rig

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/webhook"
)

// Each host's pull request event, rendered as the host documents it (the
// adapters' testdata fixtures have the same shapes) and signed as the host
// signs it. An Action that is not one of webhook.PR* is sent as the host's
// own action or event name, for tests of ignored events.

var (
	_ = prSender("github", hostSender("/hooks/github", PullRequest.GitHub))
	_ = prSender("gitlab", hostSender("/hooks/gitlab", PullRequest.GitLab))
	_ = prSender("gitea", hostSender("/hooks/gitea", PullRequest.Gitea))
	_ = prSender("bitbucket", hostSender("/hooks/bitbucket", PullRequest.BitbucketCloud))
	_ = prSender("bitbucket-server", hostSender("/hooks/bitbucket", PullRequest.BitbucketServer))
)

// hostSender posts what render makes of a pull request to path.
func hostSender(path string, render func(PullRequest, string, string) ([]byte, map[string]string)) func(testing.TB, string, PullRequest, string, string) HookResponse {
	return func(t testing.TB, baseURL string, pr PullRequest, delivery, secret string) HookResponse {
		t.Helper()
		body, headers := render(pr, delivery, secret)
		return SendHook(t, baseURL+path, headers, body)
	}
}

// headRepo is the full name of the repository the head branch is in.
func (pr PullRequest) headRepo() string {
	if pr.Fork {
		return pr.ForkRepo
	}
	return pr.Repo
}

func (pr PullRequest) title() string { return "Change " + pr.HeadRef }

// hostAction is the host's word for pr.Action: opened, updated, closed and
// merged in that order; anything else is passed through.
func (pr PullRequest) hostAction(opened, updated, closed, merged string) string {
	switch pr.Action {
	case webhook.PROpened:
		return opened
	case webhook.PRUpdated:
		return updated
	case webhook.PRClosed:
		return closed
	case webhook.PRMerged:
		return merged
	}
	return pr.Action
}

func mustJSON(doc any) []byte {
	body, err := json.Marshal(doc)
	if err != nil {
		panic(err) // maps of strings, numbers and bools always encode
	}
	return body
}

// GitHub renders a pull_request event; a merge is "closed" with merged set.
func (pr PullRequest) GitHub(delivery, secret string) ([]byte, map[string]string) {
	ghRepo := func(full string, id int, fork bool) map[string]any {
		owner, name, _ := strings.Cut(full, "/")
		return map[string]any{"id": id, "name": name, "full_name": full, "fork": fork, "private": false,
			"owner": map[string]any{"login": owner}, "clone_url": "https://github.com/" + full + ".git", "default_branch": "main"}
	}
	base := ghRepo(pr.Repo, 42, false)
	head := base
	if pr.Fork {
		head = ghRepo(pr.ForkRepo, 43, true)
	}
	doc := map[string]any{
		"action": pr.hostAction("opened", "synchronize", "closed", "closed"), "number": pr.Number,
		"pull_request": map[string]any{
			"number": pr.Number, "state": map[bool]string{true: "closed", false: "open"}[pr.closing()],
			"title": pr.title(), "user": map[string]any{"login": "octocat", "id": 1}, "merged": pr.Action == webhook.PRMerged,
			"head": map[string]any{"label": pr.HeadRef, "ref": pr.HeadRef, "sha": pr.Head, "repo": head},
			"base": map[string]any{"label": pr.Base, "ref": pr.Base, "sha": strings.Repeat("b", 40), "repo": base},
		},
		"repository": base, "sender": map[string]any{"login": "octocat", "id": 1},
	}
	body := mustJSON(doc)
	return body, map[string]string{"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": delivery,
		"User-Agent": "GitHub-Hookshot/test", "X-Hub-Signature-256": "sha256=" + webhook.SignHMAC(body, secret)}
}

func (pr PullRequest) closing() bool {
	return pr.Action == webhook.PRClosed || pr.Action == webhook.PRMerged
}

// GitLab renders a Merge Request Hook; an update carries oldrev, as GitLab
// sends it only when commits were pushed. The token is the secret.
func (pr PullRequest) GitLab(delivery, secret string) ([]byte, map[string]string) {
	project := func(full string, id int) map[string]any {
		return map[string]any{"id": id, "path_with_namespace": full, "default_branch": "main",
			"git_http_url": "https://gitlab.example.invalid/" + full + ".git"}
	}
	target := project(pr.Repo, 15)
	source := target
	if pr.Fork {
		source = project(pr.ForkRepo, 27)
	}
	attrs := map[string]any{
		"iid": pr.Number, "id": 900 + pr.Number, "title": pr.title(), "action": pr.hostAction("open", "update", "close", "merge"),
		"source_branch": pr.HeadRef, "target_branch": pr.Base, "source_project_id": source["id"], "target_project_id": target["id"],
		"source": source, "target": target, "last_commit": map[string]any{"id": pr.Head, "message": pr.title()},
	}
	if pr.Action == webhook.PRUpdated {
		attrs["oldrev"] = strings.Repeat("a", 40)
	}
	doc := map[string]any{"object_kind": "merge_request", "event_type": "merge_request",
		"user": map[string]any{"username": "mona", "name": "Mona Lisa"}, "project": target, "object_attributes": attrs}
	body := mustJSON(doc)
	return body, map[string]string{"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": secret,
		"Idempotency-Key": delivery, "X-Gitlab-Event-UUID": delivery, "User-Agent": "GitLab/17.0.0"}
}

// Gitea renders a pull_request event with Gitea's headers; a merge is
// "closed" with merged set.
func (pr PullRequest) Gitea(delivery, secret string) ([]byte, map[string]string) {
	repo := func(full string, id int) map[string]any {
		return map[string]any{"id": id, "full_name": full, "clone_url": "https://gitea.example.invalid/" + full + ".git",
			"default_branch": "main", "fork": id != 3}
	}
	base := repo(pr.Repo, 3)
	head := base
	if pr.Fork {
		head = repo(pr.ForkRepo, 9)
	}
	doc := map[string]any{
		"action": pr.hostAction("opened", "synchronized", "closed", "closed"), "number": pr.Number,
		"pull_request": map[string]any{
			"number": pr.Number, "title": pr.title(), "user": map[string]any{"login": "mona", "username": "mona"},
			"merged": pr.Action == webhook.PRMerged,
			"head":   map[string]any{"ref": pr.HeadRef, "label": pr.HeadRef, "sha": pr.Head, "repo_id": head["id"], "repo": head},
			"base":   map[string]any{"ref": pr.Base, "label": pr.Base, "sha": strings.Repeat("b", 40), "repo_id": 3, "repo": base},
		},
		"repository": base, "sender": map[string]any{"login": "mona"},
	}
	body := mustJSON(doc)
	return body, map[string]string{"X-Gitea-Event": "pull_request", "X-Gitea-Event-Type": "pull_request",
		"X-Gitea-Delivery": delivery, "X-Gitea-Signature": webhook.SignHMAC(body, secret)}
}

// BitbucketCloud renders a pullrequest:* event. Cloud abbreviates commit
// hashes in pull requests to 12 digits, so the rig does too.
func (pr PullRequest) BitbucketCloud(delivery, secret string) ([]byte, map[string]string) {
	repo := func(full string) map[string]any {
		return map[string]any{"type": "repository", "full_name": full, "name": full[strings.Index(full, "/")+1:],
			"links": map[string]any{"html": map[string]any{"href": "https://bitbucket.org/" + full}}}
	}
	short := pr.Head
	if len(short) > 12 {
		short = short[:12]
	}
	author := map[string]any{"type": "user", "display_name": "Mona Lisa", "nickname": "mona"}
	doc := map[string]any{
		"actor": author, "repository": repo(pr.Repo),
		"pullrequest": map[string]any{
			"type": "pullrequest", "id": pr.Number, "title": pr.title(), "author": author,
			"state": pr.hostAction("OPEN", "OPEN", "DECLINED", "MERGED"),
			"source": map[string]any{"branch": map[string]any{"name": pr.HeadRef},
				"commit": map[string]any{"type": "commit", "hash": short}, "repository": repo(pr.headRepo())},
			"destination": map[string]any{"branch": map[string]any{"name": pr.Base},
				"commit": map[string]any{"type": "commit", "hash": strings.Repeat("b", 12)}, "repository": repo(pr.Repo)},
		},
	}
	body := mustJSON(doc)
	key := pr.hostAction("pullrequest:created", "pullrequest:updated", "pullrequest:rejected", "pullrequest:fulfilled")
	return body, map[string]string{"X-Event-Key": key, "X-Request-UUID": delivery, "User-Agent": "Bitbucket-Webhooks/2.0",
		"X-Hub-Signature": "sha256=" + webhook.SignHMAC(body, secret)}
}

// BitbucketServer renders a pr:* event as Bitbucket Data Center sends it;
// Repo and ForkRepo are PROJECT/slug.
func (pr PullRequest) BitbucketServer(delivery, secret string) ([]byte, map[string]string) {
	repo := func(full string, id int) map[string]any {
		project, slug, _ := strings.Cut(full, "/")
		return map[string]any{"slug": slug, "id": id, "name": slug, "project": map[string]any{"key": project},
			"links": map[string]any{"clone": []any{map[string]any{"name": "http",
				"href": "https://bitbucket.example.invalid/scm/" + strings.ToLower(project) + "/" + slug + ".git"}}}}
	}
	ref := func(branch, commit string, r map[string]any) map[string]any {
		return map[string]any{"id": "refs/heads/" + branch, "displayId": branch, "latestCommit": commit, "type": "BRANCH", "repository": r}
	}
	head := repo(pr.Repo, 58)
	if pr.Fork {
		head = repo(pr.ForkRepo, 77)
	}
	key := pr.hostAction("pr:opened", "pr:from_ref_updated", "pr:declined", "pr:merged")
	doc := map[string]any{
		"eventKey": key, "date": "2026-11-26T10:00:00+0000", "actor": map[string]any{"name": "mona", "displayName": "Mona Lisa"},
		"pullRequest": map[string]any{
			"id": pr.Number, "version": 1, "title": pr.title(), "state": pr.hostAction("OPEN", "OPEN", "DECLINED", "MERGED"),
			"open": !pr.closing(), "closed": pr.closing(),
			"author":  map[string]any{"user": map[string]any{"name": "mona"}, "role": "AUTHOR"},
			"fromRef": ref(pr.HeadRef, pr.Head, head), "toRef": ref(pr.Base, strings.Repeat("b", 40), repo(pr.Repo, 58)),
		},
	}
	body := mustJSON(doc)
	return body, map[string]string{"X-Event-Key": key, "X-Request-Id": delivery,
		"X-Hub-Signature": "sha256=" + webhook.SignHMAC(body, secret)}
}
