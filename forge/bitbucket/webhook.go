package bitbucket

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/slipway-build/slipway/trigger"
	"github.com/slipway-build/slipway/webhook"
)

// Provider names.
const (
	// CloudName is Bitbucket Cloud (bitbucket.org), and the webhook
	// adapter's Name.
	CloudName = "bitbucket"
	// ServerName is Bitbucket Data Center (formerly Server).
	ServerName = "bitbucket-server"
)

// Webhook is Bitbucket's webhook dialect. The zero value is ready to use.
type Webhook struct{}

var _ webhook.Provider = Webhook{}

// Name is the provider name used in URLs and for Bitbucket Cloud
// repositories; Data Center events say ServerName in Event.Provider.
func (Webhook) Name() string { return CloudName }

// MaxBody is the largest payload accepted, 256 KB.
func (Webhook) MaxBody() int64 { return 256 << 10 }

// Parse reads a Bitbucket Cloud or Data Center webhook request.
func (Webhook) Parse(h http.Header, body []byte) (webhook.Event, error) {
	key := h.Get("X-Event-Key")
	if key == "" {
		return webhook.Event{}, fmt.Errorf("missing X-Event-Key header")
	}
	if isServer(key, h) {
		return parseServer(key, h, body)
	}
	return parseCloud(key, h, body)
}

// Peek reads the event's kind, dialect and repository, decoding nothing
// else; it names the repository exactly as Parse does.
func (Webhook) Peek(h http.Header, body []byte) (webhook.Event, error) {
	key := h.Get("X-Event-Key")
	if key == "" {
		return webhook.Event{}, fmt.Errorf("missing X-Event-Key header")
	}
	if isServer(key, h) {
		return peekServer(key, h, body)
	}
	return peekCloud(key, h, body)
}

func peekCloud(key string, h http.Header, body []byte) (webhook.Event, error) {
	ev, err := cloudHead(key, h)
	if err != nil {
		return ev, err
	}
	var p struct {
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("decode %s payload: %w", key, err)
	}
	ev.Repo = p.Repository.FullName
	if ev.Repo == "" {
		return ev, fmt.Errorf("payload has no repository.full_name")
	}
	return ev, nil
}

func cloudHead(key string, h http.Header) (webhook.Event, error) {
	ev := webhook.Event{RawKind: key, Provider: CloudName, DeliveryID: h.Get("X-Request-UUID"), Kind: webhook.KindOther}
	if ev.DeliveryID == "" {
		return ev, fmt.Errorf("missing X-Request-UUID header")
	}
	if key == "repo:push" {
		ev.Kind = webhook.KindPush
	}
	if _, ok := cloudPRActions[key]; ok {
		ev.Kind = webhook.KindPullRequest
	}
	return ev, nil
}

// peekRepo is the part of serverRepo that names it.
type peekRepo struct {
	Slug    string `json:"slug"`
	Project struct {
		Key string `json:"key"`
	} `json:"project"`
}

func peekServer(key string, h http.Header, body []byte) (webhook.Event, error) {
	ev, err := serverHead(key, h)
	if err != nil {
		return ev, err
	}
	var p struct {
		Repository  *peekRepo `json:"repository"`
		PullRequest *struct {
			ToRef struct {
				Repository *peekRepo `json:"repository"`
			} `json:"toRef"`
		} `json:"pullRequest"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("decode %s payload: %w", key, err)
	}
	repo := p.Repository
	if repo == nil && p.PullRequest != nil {
		repo = p.PullRequest.ToRef.Repository
	}
	if repo != nil {
		ev.Repo = (&serverRepo{Slug: repo.Slug, Project: repo.Project}).fullName()
	}
	if ev.Repo == "" && (ev.Kind == webhook.KindPush || ev.Kind == webhook.KindPullRequest) {
		return ev, fmt.Errorf("payload has no repository.project.key and repository.slug")
	}
	return ev, nil
}

func serverHead(key string, h http.Header) (webhook.Event, error) {
	ev := webhook.Event{RawKind: key, Provider: ServerName, DeliveryID: h.Get("X-Request-Id"), Kind: webhook.KindOther}
	if ev.DeliveryID == "" {
		return ev, fmt.Errorf("missing X-Request-Id header")
	}
	switch key {
	case "diagnostics:ping":
		// The "Test connection" body is {"test": true}: no repository.
		ev.Kind = webhook.KindPing
	case "repo:refs_changed":
		ev.Kind = webhook.KindPush
	}
	if _, ok := serverPRActions[key]; ok {
		ev.Kind = webhook.KindPullRequest
	}
	return ev, nil
}

// isServer tells a Data Center request from a Cloud one: by the event for
// the events Slipway reads, else by the delivery id header each sends.
func isServer(key string, h http.Header) bool {
	switch key {
	case "repo:push":
		return false
	case "repo:refs_changed", "diagnostics:ping", "mirror:repo_synchronized":
		return true
	}
	if _, ok := cloudPRActions[key]; ok {
		return false
	}
	if _, ok := serverPRActions[key]; ok {
		return true
	}
	return h.Get("X-Request-UUID") == "" && h.Get("X-Request-Id") != ""
}

// Verify checks X-Hub-Signature, the hex HMAC-SHA256 of the body with a
// "sha256=" prefix (SHA-256 despite the header's name).
func (Webhook) Verify(h http.Header, body []byte, secret string) error {
	return webhook.CheckPrefixedHMAC(h, "X-Hub-Signature", body, secret)
}

// Bitbucket Cloud.

type cloudRef struct {
	Type   string `json:"type"` // branch or tag
	Name   string `json:"name"`
	Target struct {
		Hash    string `json:"hash"`
		Message string `json:"message"`
	} `json:"target"`
}

type cloudPayload struct {
	Actor struct {
		DisplayName string `json:"display_name"`
		Nickname    string `json:"nickname"`
	} `json:"actor"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Push struct {
		Changes []struct {
			New    *cloudRef `json:"new"` // null for a deleted ref
			Old    *cloudRef `json:"old"` // null for a created ref
			Closed bool      `json:"closed"`
		} `json:"changes"`
	} `json:"push"`
}

func parseCloud(key string, h http.Header, body []byte) (webhook.Event, error) {
	ev, err := cloudHead(key, h)
	if err != nil {
		return ev, err
	}
	var p cloudPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("decode %s payload: %w", key, err)
	}
	ev.Repo = p.Repository.FullName
	if ev.Repo == "" {
		return ev, fmt.Errorf("payload has no repository.full_name")
	}
	if ev.Kind == webhook.KindPullRequest {
		return ev, parseCloudPR(&ev, body)
	}
	if ev.Kind != webhook.KindPush {
		return ev, nil
	}
	pusher := p.Actor.DisplayName
	if pusher == "" {
		pusher = p.Actor.Nickname
	}
	// Cloud payloads carry no clone URL; the repository's registered
	// clone_url takes precedence over this one anyway.
	cloneURL := "https://bitbucket.org/" + ev.Repo + ".git"
	for i, c := range p.Push.Changes {
		ref := c.New
		if ref == nil {
			ref = c.Old
		}
		if ref == nil {
			return ev, fmt.Errorf("push change %d has neither new nor old", i)
		}
		name := refName(ref.Type, ref.Name)
		if name == "" {
			return ev, fmt.Errorf("push change %d: unknown ref type %q", i, ref.Type)
		}
		push := webhook.Push{Ref: name, Before: trigger.ZeroSHA, After: trigger.ZeroSHA,
			Deleted: c.New == nil, Pusher: pusher, CloneURL: cloneURL}
		if c.Old != nil {
			push.Before = c.Old.Target.Hash
		}
		if c.New != nil {
			// A tag's target is the commit even for an annotated tag.
			push.After, push.Message = c.New.Target.Hash, c.New.Target.Message
			if push.After == "" {
				return ev, fmt.Errorf("push change %d to %s has no new target hash", i, name)
			}
		}
		ev.Pushes = append(ev.Pushes, push)
	}
	return ev, webhook.CheckPushes(ev.Pushes)
}

func refName(typ, name string) string {
	if name == "" {
		return ""
	}
	switch strings.ToLower(typ) {
	case "branch":
		return "refs/heads/" + name
	case "tag":
		return "refs/tags/" + name
	}
	return ""
}

// Bitbucket Data Center.

type serverRepo struct {
	Slug    string `json:"slug"`
	Project struct {
		Key string `json:"key"`
	} `json:"project"`
	Links struct {
		Clone []struct {
			Href string `json:"href"`
			Name string `json:"name"`
		} `json:"clone"`
	} `json:"links"`
}

func (r *serverRepo) fullName() string {
	if r == nil || r.Slug == "" || r.Project.Key == "" {
		return ""
	}
	return r.Project.Key + "/" + r.Slug
}

func (r *serverRepo) httpCloneURL() string {
	for _, l := range r.Links.Clone {
		if l.Name == "http" {
			return l.Href
		}
	}
	return ""
}

type serverPayload struct {
	Actor struct {
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
	} `json:"actor"`
	Repository  *serverRepo `json:"repository"`
	PullRequest *struct {
		ToRef struct {
			Repository *serverRepo `json:"repository"`
		} `json:"toRef"`
	} `json:"pullRequest"`
	Changes []struct {
		Ref struct {
			ID   string `json:"id"`
			Type string `json:"type"` // BRANCH or TAG
		} `json:"ref"`
		RefID    string `json:"refId"`
		FromHash string `json:"fromHash"`
		ToHash   string `json:"toHash"`
		Type     string `json:"type"` // ADD, UPDATE or DELETE
	} `json:"changes"`
	// ToCommit is the pushed commit, sent by newer Data Center versions.
	ToCommit *struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	} `json:"toCommit"`
}

func parseServer(key string, h http.Header, body []byte) (webhook.Event, error) {
	ev, err := serverHead(key, h)
	if err != nil {
		return ev, err
	}
	var p serverPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("decode %s payload: %w", key, err)
	}
	repo := p.Repository
	if repo == nil && p.PullRequest != nil {
		repo = p.PullRequest.ToRef.Repository
	}
	ev.Repo = repo.fullName()
	if ev.Kind != webhook.KindPush && ev.Kind != webhook.KindPullRequest {
		return ev, nil
	}
	if ev.Repo == "" {
		return ev, fmt.Errorf("payload has no repository.project.key and repository.slug")
	}
	if ev.Kind == webhook.KindPullRequest {
		return ev, parseServerPR(&ev, body)
	}
	pusher := p.Actor.Name
	if pusher == "" {
		pusher = p.Actor.DisplayName
	}
	cloneURL := repo.httpCloneURL()
	for i, c := range p.Changes {
		ref := c.Ref.ID
		if ref == "" {
			ref = c.RefID
		}
		if ref == "" {
			return ev, fmt.Errorf("change %d has no ref id", i)
		}
		push := webhook.Push{Ref: ref, Before: c.FromHash, After: c.ToHash, Pusher: pusher, CloneURL: cloneURL,
			Deleted: c.Type == "DELETE" || trigger.IsZeroSHA(c.ToHash)}
		if push.Before == "" {
			push.Before = trigger.ZeroSHA
		}
		if push.Deleted {
			push.After = trigger.ZeroSHA
		} else if push.After == "" {
			return ev, fmt.Errorf("change %d to %s has no toHash", i, ref)
		}
		if tc := p.ToCommit; tc != nil && tc.ID != "" && len(p.Changes) == 1 && !push.Deleted {
			// toHash of an annotated tag names the tag object; toCommit is
			// the commit, which is what gets built.
			if strings.HasPrefix(ref, "refs/tags/") {
				push.After = tc.ID
			}
			if push.After == tc.ID {
				push.Message = tc.Message
			}
		}
		ev.Pushes = append(ev.Pushes, push)
	}
	return ev, webhook.CheckPushes(ev.Pushes)
}
