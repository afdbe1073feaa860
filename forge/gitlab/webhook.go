package gitlab

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/slipway-build/slipway/trigger"
	"github.com/slipway-build/slipway/webhook"
)

// Webhook is GitLab's webhook dialect. The zero value is ready to use.
type Webhook struct{}

var _ webhook.Provider = Webhook{}

// Name is the provider name used in repositories and URLs.
func (Webhook) Name() string { return "gitlab" }

// MaxBody is GitLab's webhook payload cap, 25 MB.
func (Webhook) MaxBody() int64 { return 25 << 20 }

// maxCommits is how many commits a push event lists at most; the rest are
// only counted in total_commits_count.
const maxCommits = 20

type pushPayload struct {
	Ref          string `json:"ref"`
	Before       string `json:"before"`
	After        string `json:"after"`
	CheckoutSHA  string `json:"checkout_sha"` // null for a deleted ref
	UserName     string `json:"user_name"`
	UserUsername string `json:"user_username"`
	Project      struct {
		PathWithNamespace string `json:"path_with_namespace"`
		GitHTTPURL        string `json:"git_http_url"`
		DefaultBranch     string `json:"default_branch"`
	} `json:"project"`
	Commits []struct {
		ID       string   `json:"id"`
		Message  string   `json:"message"`
		Added    []string `json:"added"`
		Modified []string `json:"modified"`
		Removed  []string `json:"removed"`
	} `json:"commits"`
	TotalCommitsCount int `json:"total_commits_count"`
}

// head reads the headers of a request.
func head(h http.Header) (webhook.Event, error) {
	ev := webhook.Event{RawKind: h.Get("X-Gitlab-Event"), DeliveryID: deliveryID(h)}
	if ev.RawKind == "" {
		return ev, fmt.Errorf("missing X-Gitlab-Event header")
	}
	if ev.DeliveryID == "" {
		return ev, fmt.Errorf("missing Idempotency-Key and X-Gitlab-Event-UUID headers")
	}
	switch ev.RawKind {
	case "Push Hook", "Tag Push Hook":
		ev.Kind = webhook.KindPush
	case "Merge Request Hook":
		ev.Kind = webhook.KindPullRequest
	default:
		ev.Kind = webhook.KindOther
	}
	return ev, nil
}

// Peek reads the event's kind and project, decoding nothing else.
func (Webhook) Peek(h http.Header, body []byte) (webhook.Event, error) {
	ev, err := head(h)
	if err != nil {
		return ev, err
	}
	var p struct {
		Project struct {
			PathWithNamespace string `json:"path_with_namespace"`
		} `json:"project"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("decode %s payload: %w", ev.RawKind, err)
	}
	ev.Repo = p.Project.PathWithNamespace
	if ev.Repo == "" {
		return ev, fmt.Errorf("payload has no project.path_with_namespace")
	}
	return ev, nil
}

// Parse reads a GitLab webhook request.
func (Webhook) Parse(h http.Header, body []byte) (webhook.Event, error) {
	ev, err := head(h)
	if err != nil {
		return ev, err
	}
	var p pushPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("decode %s payload: %w", ev.RawKind, err)
	}
	ev.Repo = p.Project.PathWithNamespace
	if ev.Repo == "" {
		return ev, fmt.Errorf("payload has no project.path_with_namespace")
	}
	if ev.Kind == webhook.KindPullRequest {
		return ev, parseMergeRequest(&ev, body)
	}
	if ev.Kind != webhook.KindPush {
		return ev, nil
	}
	if p.Ref == "" || p.After == "" {
		return ev, fmt.Errorf("push payload lacks ref or after")
	}
	push := webhook.Push{Ref: p.Ref, Before: p.Before, After: p.After, Deleted: trigger.IsZeroSHA(p.After),
		Pusher: p.UserUsername, CloneURL: p.Project.GitHTTPURL, DefaultBranch: p.Project.DefaultBranch}
	if push.Pusher == "" {
		push.Pusher = p.UserName
	}
	// For an annotated tag "after" is the tag object; checkout_sha is the
	// commit it points at, which is what gets built.
	if strings.HasPrefix(p.Ref, "refs/tags/") && p.CheckoutSHA != "" && !push.Deleted {
		push.After = p.CheckoutSHA
	}
	var lists [][]string
	for _, c := range p.Commits {
		lists = append(lists, c.Added, c.Removed, c.Modified)
		if c.ID == push.After {
			push.Message = c.Message
		}
	}
	push.Files = webhook.UniqueFiles(lists...)
	// A new ref's commits are not its changes, and GitLab lists at most 20.
	push.FilesComplete = !push.Deleted && !trigger.IsZeroSHA(p.Before) && p.Before != "" &&
		len(p.Commits) > 0 && len(p.Commits) <= maxCommits && p.TotalCommitsCount == len(p.Commits)
	ev.Pushes = []webhook.Push{push}
	return ev, webhook.CheckPushes(ev.Pushes)
}

// deliveryID is the id that stays the same when GitLab retries a delivery:
// Idempotency-Key (GitLab 17.4 and later), else the event's UUID.
func deliveryID(h http.Header) string {
	if id := h.Get("Idempotency-Key"); id != "" {
		return id
	}
	return h.Get("X-Gitlab-Event-UUID")
}

// Verify compares X-Gitlab-Token, the webhook's secret token itself, with
// secret in constant time.
func (Webhook) Verify(h http.Header, _ []byte, secret string) error {
	token := h.Get("X-Gitlab-Token")
	if token == "" {
		return webhook.ErrNoSignature
	}
	// Comparing digests keeps the time independent of the lengths too.
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(secret))
	if secret == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return webhook.ErrBadSignature
	}
	return nil
}
