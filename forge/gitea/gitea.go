// Package gitea is the folder of Gitea and of Forgejo, its fork. Webhook
// reads their push events, signed with a plain hex HMAC-SHA256 of the body
// in X-Gitea-Signature (X-Forgejo-Signature from Forgejo). Both also send
// GitHub's headers (X-GitHub-Event, X-Hub-Signature-256), so a hook
// configured as a GitHub one reaches /hooks/github; the handler recognises
// it by X-Gitea-Event or X-Forgejo-Event and hands it to Webhook.
//
// Forge implements forge.Forge over the REST API under /api/v1 they share.
//
// There is no public host: Conn.APIURL must name the instance's API root,
// e.g. https://gitea.example.com/api/v1. Calls authenticate with
// "Authorization: token <token>".
//
// Gitea has no running or cancelled commit status: Running is reported as
// "pending" and Cancelled as "warning" (see SetStatus).
package gitea

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/forge/rest"
)

// Forge is the Gitea/Forgejo API. The zero value is ready to use.
type Forge struct{}

var _ forge.Forge = Forge{}

// Name is "gitea".
func (Forge) Name() string { return "gitea" }

// states maps build states to Gitea's CommitStatusState. Cancelled is
// "warning": Gitea ranks it between failure and pending, so a cancelled or
// superseded build reads as neither a broken commit ("failure") nor a
// Slipway fault ("error"), and it still does not satisfy a required check
// (only "success" does).
var states = map[forge.State]string{
	forge.Pending:   "pending",
	forge.Running:   "pending",
	forge.Success:   "success",
	forge.Failure:   "failure",
	forge.Error:     "error",
	forge.Cancelled: "warning",
}

type statusBody struct {
	State       string `json:"state"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description"`
	Context     string `json:"context"`
}

var statuses = rest.Statuses{Host: "gitea", States: states, Open: open,
	Request: func(repo string, s forge.Status, state, key string) (string, any) {
		return repo + "/statuses/" + url.PathEscape(s.Commit), statusBody{
			State: state, TargetURL: s.URL, Description: forge.Describe(s.Description), Context: key,
		}
	},
}

// SetStatus posts POST /repos/{owner}/{repo}/statuses/{sha}; the context is
// Status.Key.
func (Forge) SetStatus(ctx context.Context, c forge.Conn, s forge.Status) error {
	return statuses.Set(ctx, c, s)
}

type repository struct {
	FullName      string `json:"full_name"`
	DefaultBranch string `json:"default_branch"`
	CloneURL      string `json:"clone_url"`
	Private       bool   `json:"private"`
	Internal      bool   `json:"internal"`
}

// Repo reads GET /repos/{owner}/{repo}. Private and internal (signed-in
// users only) repositories are Private.
func (Forge) Repo(ctx context.Context, c forge.Conn) (forge.Repo, error) {
	const op = "Repo"
	a, repo, err := open(op, c)
	if err != nil {
		return forge.Repo{}, err
	}
	var r repository
	if err := a.Call(ctx, op, http.MethodGet, repo, nil, &r); err != nil {
		return forge.Repo{}, err
	}
	full := r.FullName
	if full == "" {
		full = c.FullName
	}
	return forge.Repo{FullName: full, DefaultBranch: r.DefaultBranch, CloneURL: r.CloneURL, Private: r.Private || r.Internal}, nil
}

type hookConfig struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Secret      string `json:"secret"`
}

type hookBody struct {
	Type   string     `json:"type"`
	Active bool       `json:"active"`
	Events []string   `json:"events"`
	Config hookConfig `json:"config"`
}

type hookAnswer struct {
	ID     rest.FlexID       `json:"id"`
	Config map[string]string `json:"config"`
}

// CreateHook adds a "gitea" hook for pushes with POST
// /repos/{owner}/{repo}/hooks. Gitea signs each delivery with the secret
// (X-Gitea-Signature: hex HMAC-SHA256 of the body).
func (Forge) CreateHook(ctx context.Context, c forge.Conn, hookURL, secret string) (forge.Hook, error) {
	const op = "CreateHook"
	a, repo, err := open(op, c)
	if err != nil {
		return forge.Hook{}, err
	}
	a.Hide(secret)
	var h hookAnswer
	err = a.Call(ctx, op, http.MethodPost, repo+"/hooks", hookBody{
		Type: "gitea", Active: true, Events: []string{"push"},
		Config: hookConfig{URL: hookURL, ContentType: "json", Secret: secret},
	}, &h)
	if err != nil {
		return forge.Hook{}, err
	}
	if h.ID == "" {
		return forge.Hook{}, fmt.Errorf("gitea: %s: POST %s/hooks: the answer has no id", op, repo)
	}
	u := h.Config["url"]
	if u == "" {
		u = hookURL
	}
	return forge.Hook{ID: string(h.ID), URL: u}, nil
}

// DeleteHook removes a hook with DELETE /repos/{owner}/{repo}/hooks/{id}.
func (Forge) DeleteHook(ctx context.Context, c forge.Conn, id string) error {
	const op = "DeleteHook"
	if id == "" {
		return fmt.Errorf("gitea: %s: the hook id is empty", op)
	}
	a, repo, err := open(op, c)
	if err != nil {
		return err
	}
	return a.Call(ctx, op, http.MethodDelete, repo+"/hooks/"+url.PathEscape(id), nil, nil)
}

// open checks c and returns its API and the escaped "/repos/{owner}/{repo}".
func open(op string, c forge.Conn) (*rest.Client, string, error) {
	if c.APIURL == "" {
		return nil, "", fmt.Errorf("gitea: %s: Conn.APIURL is empty: Gitea and Forgejo have no public host; set it to the instance's API root, e.g. https://gitea.example.com/api/v1", op)
	}
	owner, name, err := rest.OwnerAndName("gitea", op, c.FullName)
	if err != nil {
		return nil, "", err
	}
	token := c.Token
	a, err := rest.New("gitea", op, c.APIURL, c.HTTP, func(h http.Header) {
		if token != "" {
			h.Set("Authorization", "token "+token)
		}
	}, token)
	return a, "/repos/" + owner + "/" + name, err
}
