package bitbucket

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/forge/rest"
)

// ServerKeyLimit bounds the build status key sent to Data Center; longer
// Status.Keys are shortened like Cloud's.
const ServerKeyLimit = 255

// Server is Bitbucket Data Center (formerly Server). Conn.APIURL is the
// server's base URL, e.g. https://bitbucket.example.com (a trailing
// /rest/api/latest or /rest/api/1.0 is accepted too); there is no public
// default. Conn.FullName is "PROJECTKEY/repo-slug" ("~USER/repo-slug" for a
// personal repository). The zero value is ready to use.
type Server struct{}

var _ forge.Forge = Server{}

// Name is "bitbucket-server".
func (Server) Name() string { return ServerName }

// serverStates maps build states to the Data Center builds API's states.
var serverStates = map[forge.State]string{
	forge.Pending:   "INPROGRESS",
	forge.Running:   "INPROGRESS",
	forge.Success:   "SUCCESSFUL",
	forge.Failure:   "FAILED",
	forge.Error:     "FAILED",
	forge.Cancelled: "CANCELLED",
}

// SetStatus posts POST /rest/api/latest/projects/{projectKey}/repos/{repositorySlug}/commits/{commitId}/builds,
// the repository-scoped builds API of current Data Center versions (older
// servers only have /rest/build-status/1.0/commits/{commit}, which is not
// used). A status with the same key is replaced.
func (Server) SetStatus(ctx context.Context, c forge.Conn, s forge.Status) error {
	return serverStatuses.Set(ctx, c, s)
}

var serverStatuses = rest.Statuses{Host: ServerName, States: serverStates, Open: openServer,
	Request: func(repo string, s forge.Status, state, key string) (string, any) {
		return repo + "/commits/" + url.PathEscape(s.Commit) + "/builds", newBuildStatus(s, state, key, ServerKeyLimit)
	},
}

type serverRepository struct {
	Slug    string `json:"slug"`
	Public  bool   `json:"public"`
	Project struct {
		Key    string `json:"key"`
		Public bool   `json:"public"`
	} `json:"project"`
	DefaultBranch string `json:"defaultBranch"`
	Links         struct {
		Clone []link `json:"clone"`
	} `json:"links"`
}

type branchRef struct {
	ID        string `json:"id"`
	DisplayID string `json:"displayId"`
}

// Repo reads GET /rest/api/latest/projects/{key}/repos/{slug} and, unless
// that names it, the default branch from …/default-branch (…/branches/default
// on servers without it). A repository is public when it or its project is.
// The clone URL is the "http" clone link without the user name in it.
func (Server) Repo(ctx context.Context, c forge.Conn) (forge.Repo, error) {
	const op = "Repo"
	a, repo, err := openServer(op, c)
	if err != nil {
		return forge.Repo{}, err
	}
	var r serverRepository
	if err := a.Call(ctx, op, http.MethodGet, repo, nil, &r); err != nil {
		return forge.Repo{}, err
	}
	out := forge.Repo{FullName: c.FullName, Private: !r.Public && !r.Project.Public, DefaultBranch: r.DefaultBranch}
	if r.Project.Key != "" && r.Slug != "" {
		out.FullName = r.Project.Key + "/" + r.Slug
	}
	for _, l := range r.Links.Clone {
		if l.Name == "http" {
			out.CloneURL = cleanCloneURL(l.Href)
		}
	}
	if out.CloneURL == "" {
		return forge.Repo{}, fmt.Errorf("bitbucket-server: %s: GET %s: the answer has no http clone link", op, repo)
	}
	if out.DefaultBranch == "" {
		var b branchRef
		err := a.Call(ctx, op, http.MethodGet, repo+"/default-branch", nil, &b)
		var e *rest.Error
		if errors.As(err, &e) && e.Status == http.StatusNotFound {
			err = a.Call(ctx, op, http.MethodGet, repo+"/branches/default", nil, &b)
		}
		if err != nil {
			return forge.Repo{}, err
		}
		out.DefaultBranch = b.DisplayID
		if out.DefaultBranch == "" {
			out.DefaultBranch = strings.TrimPrefix(b.ID, "refs/heads/")
		}
	}
	return out, nil
}

type serverHook struct {
	Name          string            `json:"name"`
	URL           string            `json:"url"`
	Active        bool              `json:"active"`
	Events        []string          `json:"events"`
	Configuration map[string]string `json:"configuration"`
}

type serverHookAnswer struct {
	ID  rest.FlexID `json:"id"`
	URL string      `json:"url"`
}

// CreateHook adds a repo:refs_changed webhook with POST
// /rest/api/latest/projects/{key}/repos/{slug}/webhooks. Data Center signs
// each delivery with the secret (X-Hub-Signature: sha256=<hex HMAC>).
func (Server) CreateHook(ctx context.Context, c forge.Conn, hookURL, secret string) (forge.Hook, error) {
	const op = "CreateHook"
	a, repo, err := openServer(op, c)
	if err != nil {
		return forge.Hook{}, err
	}
	a.Hide(secret)
	var h serverHookAnswer
	err = a.Call(ctx, op, http.MethodPost, repo+"/webhooks", serverHook{
		Name: "Slipway", URL: hookURL, Active: true, Events: []string{"repo:refs_changed"},
		Configuration: map[string]string{"secret": secret},
	}, &h)
	if err != nil {
		return forge.Hook{}, err
	}
	if h.ID == "" {
		return forge.Hook{}, fmt.Errorf("bitbucket-server: %s: POST %s/webhooks: the answer has no id", op, repo)
	}
	if h.URL == "" {
		h.URL = hookURL
	}
	return forge.Hook{ID: string(h.ID), URL: h.URL}, nil
}

// DeleteHook removes a webhook with DELETE
// /rest/api/latest/projects/{key}/repos/{slug}/webhooks/{webhookId}.
func (Server) DeleteHook(ctx context.Context, c forge.Conn, id string) error {
	const op = "DeleteHook"
	if id == "" {
		return fmt.Errorf("bitbucket-server: %s: the hook id is empty", op)
	}
	a, repo, err := openServer(op, c)
	if err != nil {
		return err
	}
	return a.Call(ctx, op, http.MethodDelete, repo+"/webhooks/"+url.PathEscape(id), nil, nil)
}

// openServer checks c and returns its API (rooted at the server's base URL)
// and the escaped "/rest/api/latest/projects/{key}/repos/{slug}".
func openServer(op string, c forge.Conn) (*rest.Client, string, error) {
	if c.APIURL == "" {
		return nil, "", fmt.Errorf("bitbucket-server: %s: Conn.APIURL is empty: Bitbucket Data Center has no public host; set it to the server's base URL, e.g. https://bitbucket.example.com", op)
	}
	project, slug, err := rest.OwnerAndName("bitbucket-server", op, c.FullName)
	if err != nil {
		return nil, "", err
	}
	root := strings.TrimRight(c.APIURL, "/")
	for _, suffix := range []string{"/rest/api/latest", "/rest/api/1.0"} {
		root = strings.TrimSuffix(root, suffix)
	}
	auth, secrets := authFor(c.Token)
	a, err := rest.New("bitbucket-server", op, root, c.HTTP, auth, secrets...)
	return a, "/rest/api/latest/projects/" + project + "/repos/" + slug, err
}
