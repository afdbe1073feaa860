package github

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/slipway-build/slipway/trigger"
	"github.com/slipway-build/slipway/webhook"
)

// Webhook is GitHub's webhook dialect. The zero value is ready to use.
type Webhook struct{}

var _ webhook.Provider = Webhook{}

// Name is the provider name used in repositories and URLs.
func (Webhook) Name() string { return "github" }

// MaxBody is GitHub's documented payload cap.
func (Webhook) MaxBody() int64 { return 25 << 20 }

type pushPayload struct {
	Ref     string `json:"ref"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Deleted bool   `json:"deleted"`
	Created bool   `json:"created"`
	Forced  bool   `json:"forced"`
	Commits []struct {
		Added    []string `json:"added"`
		Removed  []string `json:"removed"`
		Modified []string `json:"modified"`
	} `json:"commits"`
	Pusher struct {
		Name string `json:"name"`
	} `json:"pusher"`
	HeadCommit *struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	} `json:"head_commit"`
	Installation *struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Repository struct {
		FullName      string `json:"full_name"`
		CloneURL      string `json:"clone_url"`
		DefaultBranch string `json:"default_branch"`
	} `json:"repository"`
}

// head reads the headers of a request and the JSON document of its body.
func head(h http.Header, body []byte) (webhook.Event, []byte, error) {
	ev := webhook.Event{RawKind: h.Get("X-GitHub-Event"), DeliveryID: h.Get("X-GitHub-Delivery")}
	if ev.RawKind == "" {
		return ev, nil, fmt.Errorf("missing X-GitHub-Event header")
	}
	if ev.DeliveryID == "" {
		return ev, nil, fmt.Errorf("missing X-GitHub-Delivery header")
	}
	switch ev.RawKind {
	case "ping":
		ev.Kind = webhook.KindPing
	case "push":
		ev.Kind = webhook.KindPush
	case "pull_request":
		ev.Kind = webhook.KindPullRequest
	default:
		ev.Kind = webhook.KindOther
	}
	raw, err := jsonBody(h, body)
	return ev, raw, err
}

// Peek reads the event's kind and repository, decoding nothing else.
func (Webhook) Peek(h http.Header, body []byte) (webhook.Event, error) {
	ev, raw, err := head(h, body)
	if err != nil {
		return ev, err
	}
	var p struct {
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return ev, fmt.Errorf("decode %s payload: %w", ev.RawKind, err)
	}
	ev.Repo = p.Repository.FullName
	if ev.Repo == "" {
		return ev, fmt.Errorf("payload has no repository.full_name")
	}
	return ev, nil
}

// Parse reads a GitHub webhook request.
func (Webhook) Parse(h http.Header, body []byte) (webhook.Event, error) {
	ev, raw, err := head(h, body)
	if err != nil {
		return ev, err
	}
	var p pushPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		return ev, fmt.Errorf("decode %s payload: %w", ev.RawKind, err)
	}
	ev.Repo = p.Repository.FullName
	if p.Installation != nil {
		ev.InstallationID = p.Installation.ID
	}
	if ev.Repo == "" {
		return ev, fmt.Errorf("payload has no repository.full_name")
	}
	if ev.Kind == webhook.KindPullRequest {
		return ev, parsePullRequest(&ev, raw)
	}
	if ev.Kind == webhook.KindPush {
		push := webhook.Push{Ref: p.Ref, Before: p.Before, After: p.After, Deleted: p.Deleted,
			Pusher: p.Pusher.Name, CloneURL: p.Repository.CloneURL, DefaultBranch: p.Repository.DefaultBranch}
		push.Files, push.FilesComplete = changedFiles(p)
		if p.HeadCommit != nil {
			push.Message = p.HeadCommit.Message
			// For an annotated tag "after" is the tag object; head_commit
			// is the commit it points at, which is what gets built.
			if strings.HasPrefix(p.Ref, "refs/tags/") && p.HeadCommit.ID != "" && !p.Deleted {
				push.After = p.HeadCommit.ID
			}
		}
		if push.Ref == "" || (push.After == "" && !push.Deleted) {
			return ev, fmt.Errorf("push payload lacks ref or after")
		}
		if push.After == "" {
			push.After = trigger.ZeroSHA // a deletion names no commit
		}
		ev.Pushes = []webhook.Push{push}
	}
	return ev, webhook.CheckPushes(ev.Pushes)
}

// maxCommits is how many commits GitHub lists in a push payload at most;
// a push of more is truncated.
const maxCommits = 2048

// changedFiles lists the paths the push touched. The list is complete only
// for an ordinary fast-forward push GitHub did not truncate.
func changedFiles(p pushPayload) ([]string, bool) {
	seen := map[string]bool{}
	var files []string
	for _, c := range p.Commits {
		for _, list := range [][]string{c.Added, c.Removed, c.Modified} {
			for _, f := range list {
				if !seen[f] {
					seen[f] = true
					files = append(files, f)
				}
			}
		}
	}
	complete := !p.Created && !p.Forced && !p.Deleted && len(p.Commits) > 0 && len(p.Commits) < maxCommits
	return files, complete
}

// jsonBody returns the JSON document of a JSON or form-encoded delivery.
func jsonBody(h http.Header, body []byte) ([]byte, error) {
	if !strings.HasPrefix(h.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("decode form body: %w", err)
	}
	p := form.Get("payload")
	if p == "" {
		return nil, fmt.Errorf("form body has no payload field")
	}
	return []byte(p), nil
}

// Verify checks X-Hub-Signature-256, which covers the raw body in either
// encoding.
func (Webhook) Verify(h http.Header, body []byte, secret string) error {
	return webhook.CheckPrefixedHMAC(h, "X-Hub-Signature-256", body, secret)
}
