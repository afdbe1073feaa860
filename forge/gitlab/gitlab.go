// Package gitlab is GitLab's folder (gitlab.com and self-managed). Webhook
// reads its push and tag push events, authenticated by the secret token
// GitLab sends as X-Gitlab-Token; Forge implements forge.Forge over the REST
// API v4.
//
// A project is addressed by its URL-escaped path with namespace
// ("acme%2Fsub%2Fdemo"), so nested groups work; the escaped slashes are sent
// as they are. Calls authenticate with the PRIVATE-TOKEN header (personal,
// project or group access tokens).
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/forge/rest"
)

// DefaultAPIURL is gitlab.com's API root, used when Conn.APIURL is empty.
const DefaultAPIURL = "https://gitlab.com/api/v4"

// Forge is GitLab's API. The zero value is ready to use.
type Forge struct{}

var _ forge.Forge = Forge{}

// Name is "gitlab".
func (Forge) Name() string { return "gitlab" }

// states maps build states to GitLab's commit status states.
var states = map[forge.State]string{
	forge.Pending:   "pending",
	forge.Running:   "running",
	forge.Success:   "success",
	forge.Failure:   "failed",
	forge.Error:     "failed",
	forge.Cancelled: "canceled",
}

type statusBody struct {
	State       string `json:"state"`
	Name        string `json:"name"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description"`
}

// SetStatus posts POST /projects/:id/statuses/:sha. GitLab answers 400
// ("Cannot transition status via :run from :running") when a status is set
// to the state it already has; that answer counts as success.
func (Forge) SetStatus(ctx context.Context, c forge.Conn, s forge.Status) error {
	err := statuses.Set(ctx, c, s)
	if alreadyIn(err, states[s.State]) {
		return nil
	}
	return err
}

var statuses = rest.Statuses{Host: "gitlab", States: states, Open: open,
	Request: func(id string, s forge.Status, state, key string) (string, any) {
		return "/projects/" + id + "/statuses/" + url.PathEscape(s.Commit), statusBody{
			State: state, Name: key, TargetURL: s.URL, Description: forge.Describe(s.Description),
		}
	},
}

var transition = regexp.MustCompile(`Cannot transition status via :\w+ from :(\w+)`)

// alreadyIn tells whether err is GitLab refusing to set a status to the
// state it already has.
func alreadyIn(err error, state string) bool {
	var e *rest.Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		return false
	}
	m := transition.FindStringSubmatch(e.Message)
	return m != nil && m[1] == state
}

type project struct {
	PathWithNamespace string `json:"path_with_namespace"`
	DefaultBranch     string `json:"default_branch"`
	HTTPURLToRepo     string `json:"http_url_to_repo"`
	Visibility        string `json:"visibility"`
}

// Repo reads GET /projects/:id. Internal and private projects are Private.
func (Forge) Repo(ctx context.Context, c forge.Conn) (forge.Repo, error) {
	const op = "Repo"
	a, id, err := open(op, c)
	if err != nil {
		return forge.Repo{}, err
	}
	var p project
	if err := a.Call(ctx, op, http.MethodGet, "/projects/"+id, nil, &p); err != nil {
		return forge.Repo{}, err
	}
	full := p.PathWithNamespace
	if full == "" {
		full = c.FullName
	}
	return forge.Repo{
		FullName:      full,
		DefaultBranch: p.DefaultBranch,
		CloneURL:      p.HTTPURLToRepo,
		Private:       p.Visibility != "public",
	}, nil
}

type hookBody struct {
	URL                   string `json:"url"`
	PushEvents            bool   `json:"push_events"`
	TagPushEvents         bool   `json:"tag_push_events"`
	Token                 string `json:"token"`
	EnableSSLVerification bool   `json:"enable_ssl_verification"`
}

type hookAnswer struct {
	ID  rest.FlexID `json:"id"`
	URL string      `json:"url"`
}

// CreateHook adds a project hook for branch and tag pushes with
// POST /projects/:id/hooks. GitLab sends the secret back verbatim in the
// X-Gitlab-Token header of each delivery.
func (Forge) CreateHook(ctx context.Context, c forge.Conn, hookURL, secret string) (forge.Hook, error) {
	const op = "CreateHook"
	a, id, err := open(op, c)
	if err != nil {
		return forge.Hook{}, err
	}
	a.Hide(secret)
	var h hookAnswer
	err = a.Call(ctx, op, http.MethodPost, "/projects/"+id+"/hooks", hookBody{
		URL: hookURL, PushEvents: true, TagPushEvents: true, Token: secret, EnableSSLVerification: true,
	}, &h)
	if err != nil {
		return forge.Hook{}, err
	}
	if h.ID == "" {
		return forge.Hook{}, fmt.Errorf("gitlab: %s: POST /projects/%s/hooks: the answer has no id", op, id)
	}
	if h.URL == "" {
		h.URL = hookURL
	}
	return forge.Hook{ID: string(h.ID), URL: h.URL}, nil
}

// DeleteHook removes a project hook with DELETE /projects/:id/hooks/:hook_id.
func (Forge) DeleteHook(ctx context.Context, c forge.Conn, hookID string) error {
	const op = "DeleteHook"
	if hookID == "" {
		return fmt.Errorf("gitlab: %s: the hook id is empty", op)
	}
	a, id, err := open(op, c)
	if err != nil {
		return err
	}
	return a.Call(ctx, op, http.MethodDelete, "/projects/"+id+"/hooks/"+url.PathEscape(hookID), nil, nil)
}

// open checks c and returns its API and the escaped project id.
func open(op string, c forge.Conn) (*rest.Client, string, error) {
	id, err := projectID(op, c.FullName)
	if err != nil {
		return nil, "", err
	}
	root := c.APIURL
	if root == "" {
		root = DefaultAPIURL
	}
	token := c.Token
	a, err := rest.New("gitlab", op, root, c.HTTP, func(h http.Header) {
		if token != "" {
			h.Set("PRIVATE-TOKEN", token)
		}
	}, token)
	return a, id, err
}

// projectID is the URL-escaped path with namespace ("acme%2Fsub%2Fdemo"),
// or a numeric project id as it is.
func projectID(op, fullName string) (string, error) {
	full := strings.Trim(fullName, "/")
	if full == "" || strings.Contains(full, "//") {
		return "", fmt.Errorf("gitlab: %s: Conn.FullName %q is not a project path like group/project", op, fullName)
	}
	return url.PathEscape(full), nil
}
