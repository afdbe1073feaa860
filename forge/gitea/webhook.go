package gitea

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/slipway-build/slipway/trigger"
	"github.com/slipway-build/slipway/webhook"
)

// Webhook is the Gitea and Forgejo webhook dialect. The zero value is ready
// to use.
type Webhook struct{}

var _ webhook.Provider = Webhook{}

// Name is the provider name used in repositories and URLs, for Forgejo
// repositories too.
func (Webhook) Name() string { return "gitea" }

// MaxBody is the largest payload accepted, 25 MB (as for GitHub; Gitea
// documents no cap and lists few commits).
func (Webhook) MaxBody() int64 { return 25 << 20 }

type user struct {
	Login    string `json:"login"`
	Username string `json:"username"`
}

type pushPayload struct {
	Ref     string `json:"ref"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Commits []struct {
		Added    []string `json:"added"`
		Removed  []string `json:"removed"`
		Modified []string `json:"modified"`
	} `json:"commits"`
	// TotalCommits counts the pushed commits; Gitea lists only the newest
	// few (setting [ui] FEED_MAX_COMMIT_NUM, 5 by default).
	TotalCommits int `json:"total_commits"`
	HeadCommit   *struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	} `json:"head_commit"`
	Pusher     *user `json:"pusher"`
	Repository struct {
		FullName      string `json:"full_name"`
		CloneURL      string `json:"clone_url"`
		DefaultBranch string `json:"default_branch"`
	} `json:"repository"`
}

// header returns Forgejo's header, else Gitea's (Forgejo sends both).
func header(h http.Header, name string) string {
	if v := h.Get("X-Forgejo-" + name); v != "" {
		return v
	}
	return h.Get("X-Gitea-" + name)
}

// head reads the headers of a request. Only push and pull request events
// build: create and delete events repeat what the push event says. Every
// pull request event (synchronized, label_updated…) comes as
// "pull_request"; X-Gitea-Event-Type names the kind, the body's action too.
func head(h http.Header) (webhook.Event, error) {
	ev := webhook.Event{RawKind: header(h, "Event"), DeliveryID: header(h, "Delivery"), Kind: webhook.KindOther}
	if ev.RawKind == "" {
		return ev, fmt.Errorf("missing X-Gitea-Event or X-Forgejo-Event header")
	}
	if ev.DeliveryID == "" {
		return ev, fmt.Errorf("missing X-Gitea-Delivery or X-Forgejo-Delivery header")
	}
	switch ev.RawKind {
	case "push":
		ev.Kind = webhook.KindPush
	case "pull_request":
		ev.Kind = webhook.KindPullRequest
	}
	return ev, nil
}

// Peek reads the event's kind and repository, decoding nothing else.
func (Webhook) Peek(h http.Header, body []byte) (webhook.Event, error) {
	ev, err := head(h)
	if err != nil {
		return ev, err
	}
	var p struct {
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("decode %s payload: %w", ev.RawKind, err)
	}
	ev.Repo = p.Repository.FullName
	if ev.Repo == "" {
		return ev, fmt.Errorf("payload has no repository.full_name")
	}
	return ev, nil
}

// Parse reads a Gitea or Forgejo webhook request.
func (Webhook) Parse(h http.Header, body []byte) (webhook.Event, error) {
	ev, err := head(h)
	if err != nil {
		return ev, err
	}
	var p pushPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("decode %s payload: %w", ev.RawKind, err)
	}
	ev.Repo = p.Repository.FullName
	if ev.Repo == "" {
		return ev, fmt.Errorf("payload has no repository.full_name")
	}
	if ev.Kind == webhook.KindPullRequest {
		return ev, parsePullRequest(&ev, body)
	}
	if ev.Kind != webhook.KindPush {
		return ev, nil
	}
	if p.Ref == "" || p.After == "" {
		return ev, fmt.Errorf("push payload lacks ref or after")
	}
	push := webhook.Push{Ref: p.Ref, Before: p.Before, After: p.After, Deleted: trigger.IsZeroSHA(p.After),
		CloneURL: p.Repository.CloneURL, DefaultBranch: p.Repository.DefaultBranch}
	if p.Pusher != nil {
		push.Pusher = p.Pusher.Login
		if push.Pusher == "" {
			push.Pusher = p.Pusher.Username
		}
	}
	if p.HeadCommit != nil && !push.Deleted {
		push.Message = p.HeadCommit.Message
		// For an annotated tag "after" is the tag object; head_commit is
		// the commit it points at, which is what gets built.
		if strings.HasPrefix(p.Ref, "refs/tags/") && p.HeadCommit.ID != "" {
			push.After = p.HeadCommit.ID
		}
	}
	var lists [][]string
	for _, c := range p.Commits {
		lists = append(lists, c.Added, c.Removed, c.Modified)
	}
	push.Files = webhook.UniqueFiles(lists...)
	// A new branch lists the last commits before its head, not its changes;
	// a long push lists only some commits.
	push.FilesComplete = !push.Deleted && p.Before != "" && !trigger.IsZeroSHA(p.Before) &&
		len(p.Commits) > 0 && p.TotalCommits == len(p.Commits)
	ev.Pushes = []webhook.Push{push}
	return ev, webhook.CheckPushes(ev.Pushes)
}

// Verify checks X-Forgejo-Signature or X-Gitea-Signature: the hex
// HMAC-SHA256 of the body, without GitHub's "sha256=" prefix.
func (Webhook) Verify(h http.Header, body []byte, secret string) error {
	return webhook.CheckHMAC(body, secret, header(h, "Signature"))
}
