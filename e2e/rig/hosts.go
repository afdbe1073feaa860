package rig

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/webhook"
)

// Push is a ref update as any Git host reports it.
type Push struct {
	Repo     string // full name
	CloneURL string
	Ref      string // full ref
	Before   string // "" for a new ref
	After    string
	Message  string
}

func (p Push) before() string {
	if p.Before == "" {
		return strings.Repeat("0", 40)
	}
	return p.Before
}

// SendHook posts body to path with headers and decodes the answer.
func SendHook(t testing.TB, url string, headers map[string]string, body []byte) HookResponse {
	t.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("send webhook: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := HookResponse{Code: resp.StatusCode}
	_ = json.Unmarshal(raw, &out)
	return out
}

// BitbucketCloud renders a repo:push as Bitbucket Cloud sends it, with its
// headers signed by secret.
func (p Push) BitbucketCloud(delivery, secret string) ([]byte, map[string]string) {
	kind, name := "branch", strings.TrimPrefix(p.Ref, "refs/heads/")
	if strings.HasPrefix(p.Ref, "refs/tags/") {
		kind, name = "tag", strings.TrimPrefix(p.Ref, "refs/tags/")
	}
	var old any
	if p.Before != "" {
		old = map[string]any{"type": kind, "name": name, "target": map[string]any{"type": "commit", "hash": p.Before}}
	}
	doc := map[string]any{
		"actor": map[string]any{"display_name": "Mona Lisa", "nickname": "mona", "type": "user"},
		"repository": map[string]any{"type": "repository", "full_name": p.Repo, "name": p.Repo[strings.Index(p.Repo, "/")+1:],
			"links": map[string]any{"html": map[string]any{"href": "https://bitbucket.org/" + p.Repo}}},
		"push": map[string]any{"changes": []any{map[string]any{
			"new": map[string]any{"type": kind, "name": name, "target": map[string]any{"type": "commit", "hash": p.After,
				"message": p.Message}},
			"old": old, "created": p.Before == "", "closed": false, "forced": false,
		}}},
	}
	body, _ := json.Marshal(doc)
	return body, map[string]string{
		"X-Event-Key": "repo:push", "X-Request-UUID": delivery, "User-Agent": "Bitbucket-Webhooks/2.0",
		"X-Hub-Signature": "sha256=" + webhook.SignHMAC(body, secret),
	}
}

// GitLab renders a Push Hook as GitLab sends it; the token is the secret.
func (p Push) GitLab(delivery, secret string) ([]byte, map[string]string) {
	event := "Push Hook"
	kind := "push"
	if strings.HasPrefix(p.Ref, "refs/tags/") {
		event, kind = "Tag Push Hook", "tag_push"
	}
	doc := map[string]any{
		"object_kind": kind, "event_name": kind, "ref": p.Ref, "before": p.before(), "after": p.After,
		"checkout_sha": p.After, "user_username": "mona", "user_name": "Mona Lisa",
		"project":             map[string]any{"path_with_namespace": p.Repo, "git_http_url": p.CloneURL, "default_branch": "main"},
		"commits":             []any{map[string]any{"id": p.After, "message": p.Message, "added": []string{}, "modified": []string{"Dockerfile"}, "removed": []string{}}},
		"total_commits_count": 1,
	}
	body, _ := json.Marshal(doc)
	return body, map[string]string{"X-Gitlab-Event": event, "X-Gitlab-Token": secret, "Idempotency-Key": delivery,
		"X-Gitlab-Event-UUID": delivery, "User-Agent": "GitLab/17.0.0"}
}

// Gitea renders a push as Gitea sends it (with GitHub's headers too, as
// Gitea does); forgejo switches to Forgejo's own header names.
func (p Push) Gitea(delivery, secret string, forgejo bool) ([]byte, map[string]string) {
	doc := map[string]any{
		"ref": p.Ref, "before": p.before(), "after": p.After, "compare_url": "",
		"commits":     []any{map[string]any{"id": p.After, "message": p.Message, "added": []string{}, "modified": []string{"Dockerfile"}, "removed": []string{}}},
		"head_commit": map[string]any{"id": p.After, "message": p.Message},
		"repository":  map[string]any{"full_name": p.Repo, "clone_url": p.CloneURL, "default_branch": "main"},
		"pusher":      map[string]any{"login": "mona", "username": "mona"},
	}
	body, _ := json.Marshal(doc)
	sig := webhook.SignHMAC(body, secret)
	prefix := "X-Gitea-"
	if forgejo {
		prefix = "X-Forgejo-"
	}
	return body, map[string]string{
		prefix + "Event": "push", prefix + "Delivery": delivery, prefix + "Signature": sig,
		"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": "sha256=" + sig,
	}
}

// BitbucketServer renders a repo:refs_changed as Bitbucket Data Center sends
// it; Repo is PROJECT/slug.
func (p Push) BitbucketServer(delivery, secret string) ([]byte, map[string]string) {
	project, slug, _ := strings.Cut(p.Repo, "/")
	kind, change := "BRANCH", "UPDATE"
	if strings.HasPrefix(p.Ref, "refs/tags/") {
		kind = "TAG"
	}
	if p.Before == "" {
		change = "ADD"
	}
	display := p.Ref[strings.LastIndex(p.Ref, "/")+1:]
	doc := map[string]any{
		"eventKey": "repo:refs_changed", "date": "2026-11-26T10:00:00+0000",
		"actor": map[string]any{"name": "mona", "displayName": "Mona Lisa"},
		"repository": map[string]any{"slug": slug, "name": slug, "project": map[string]any{"key": project},
			"links": map[string]any{"clone": []any{map[string]any{"href": p.CloneURL, "name": "http"}}}},
		"changes": []any{map[string]any{
			"ref":   map[string]any{"id": p.Ref, "displayId": display, "type": kind},
			"refId": p.Ref, "fromHash": p.before(), "toHash": p.After, "type": change,
		}},
	}
	body, _ := json.Marshal(doc)
	return body, map[string]string{
		"X-Event-Key": "repo:refs_changed", "X-Request-Id": delivery,
		"X-Hub-Signature": "sha256=" + webhook.SignHMAC(body, secret),
	}
}
