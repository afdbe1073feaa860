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

// GitHubPush is the part of GitHub's push payload Slipway reads, shaped as
// GitHub documents it.
type GitHubPush struct {
	Repo     string // full name
	CloneURL string
	Ref      string
	Before   string
	After    string
	Deleted  bool
	Message  string
	// Files are listed as modified by the head commit; Forced marks a
	// force-push, whose file list GitHub does not make complete.
	Files  []string
	Forced bool
	// Installation is the GitHub App installation that sends the event.
	Installation int64
}

// Payload renders the push as GitHub sends it.
func (p GitHubPush) Payload() []byte {
	owner, name, _ := strings.Cut(p.Repo, "/")
	files := p.Files
	if files == nil {
		files = []string{"Dockerfile"}
	}
	before := p.Before
	if before == "" {
		before = strings.Repeat("0", 40)
	}
	doc := map[string]any{
		"ref": p.Ref, "before": before, "after": p.After,
		"created": p.Before == "", "deleted": p.Deleted, "forced": p.Forced,
		"compare": "https://github.com/" + p.Repo + "/compare/" + before[:12] + "..." + p.After[:12],
		"commits": []map[string]any{{"id": p.After, "message": p.Message, "distinct": true,
			"added": []string{}, "removed": []string{}, "modified": files}},
		"head_commit": map[string]any{"id": p.After, "message": p.Message},
		"pusher":      map[string]any{"name": "octocat", "email": "octocat@example.invalid"},
		"sender":      map[string]any{"login": "octocat", "id": 1},
		"repository": map[string]any{"id": 42, "name": name, "full_name": p.Repo,
			"owner":     map[string]any{"login": owner, "name": owner},
			"clone_url": p.CloneURL, "default_branch": "main", "private": false},
	}
	if p.Installation != 0 {
		doc["installation"] = map[string]any{"id": p.Installation, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc="}
	}
	raw, _ := json.Marshal(doc)
	return raw
}

// HookResponse is a webhook endpoint's answer.
type HookResponse struct {
	Code    int
	Builds  []string `json:"builds"`
	Skipped []string `json:"skipped"`
	Error   string   `json:"error"`
	// Cancelled, Reason and Ignored answer pull request events.
	Cancelled []string `json:"cancelled"`
	Reason    string   `json:"reason"`
	Ignored   string   `json:"ignored"`
}

// SendGitHub posts a GitHub webhook signed with secret ("" sends it unsigned).
func SendGitHub(t testing.TB, baseURL, event, delivery, secret string, body []byte) HookResponse {
	t.Helper()
	req, err := http.NewRequest("POST", baseURL+"/hooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/test")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	if secret != "" {
		req.Header.Set("X-Hub-Signature-256", "sha256="+webhook.SignHMAC(body, secret))
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
