package bitbucket

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/forge/rest"
)

// CloudAPIURL is Bitbucket Cloud's API root, used when Conn.APIURL is
// empty.
const CloudAPIURL = "https://api.bitbucket.org/2.0"

// CloudKeyLimit is the longest build status key Bitbucket Cloud accepts;
// longer Status.Keys are shortened (see SetStatus).
const CloudKeyLimit = 40

// Cloud is Bitbucket Cloud's API 2.0. Conn.FullName is "workspace/repo_slug".
// The zero value is ready to use.
type Cloud struct{}

var _ forge.Forge = Cloud{}

// Name is "bitbucket".
func (Cloud) Name() string { return CloudName }

// cloudStates maps build states to Bitbucket Cloud's commit status states.
var cloudStates = map[forge.State]string{
	forge.Pending:   "INPROGRESS",
	forge.Running:   "INPROGRESS",
	forge.Success:   "SUCCESSFUL",
	forge.Failure:   "FAILED",
	forge.Error:     "FAILED",
	forge.Cancelled: "STOPPED",
}

// SetStatus posts POST /repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build;
// a status with the same key is overwritten. The key is Status.Key,
// shortened to 40 characters when longer (a prefix, "-" and a hash); the
// name shows the whole key.
func (Cloud) SetStatus(ctx context.Context, c forge.Conn, s forge.Status) error {
	return cloudStatuses.Set(ctx, c, s)
}

var cloudStatuses = rest.Statuses{Host: CloudName, States: cloudStates, Open: openCloud,
	Request: func(repo string, s forge.Status, state, key string) (string, any) {
		return repo + "/commit/" + url.PathEscape(s.Commit) + "/statuses/build", newBuildStatus(s, state, key, CloudKeyLimit)
	},
}

type link struct {
	Href string `json:"href"`
	Name string `json:"name"`
}

type cloudRepository struct {
	FullName   string `json:"full_name"`
	IsPrivate  bool   `json:"is_private"`
	MainBranch *struct {
		Name string `json:"name"`
	} `json:"mainbranch"`
	Links struct {
		Clone []link `json:"clone"`
	} `json:"links"`
}

// Repo reads GET /repositories/{workspace}/{repo_slug}. The clone URL is
// the "https" clone link without the user name Bitbucket puts in it. An
// empty repository has no main branch yet: DefaultBranch is then "".
func (Cloud) Repo(ctx context.Context, c forge.Conn) (forge.Repo, error) {
	const op = "Repo"
	a, repo, err := openCloud(op, c)
	if err != nil {
		return forge.Repo{}, err
	}
	var r cloudRepository
	if err := a.Call(ctx, op, http.MethodGet, repo, nil, &r); err != nil {
		return forge.Repo{}, err
	}
	out := forge.Repo{FullName: r.FullName, Private: r.IsPrivate}
	if out.FullName == "" {
		out.FullName = c.FullName
	}
	if r.MainBranch != nil {
		out.DefaultBranch = r.MainBranch.Name
	}
	for _, l := range r.Links.Clone {
		if l.Name == "https" {
			out.CloneURL = cleanCloneURL(l.Href)
		}
	}
	if out.CloneURL == "" {
		return forge.Repo{}, fmt.Errorf("bitbucket: %s: GET %s: the answer has no https clone link", op, repo)
	}
	return out, nil
}

type cloudHook struct {
	Description string   `json:"description"`
	URL         string   `json:"url"`
	Active      bool     `json:"active"`
	Secret      string   `json:"secret"`
	Events      []string `json:"events"`
}

type cloudHookAnswer struct {
	UUID string `json:"uuid"`
	URL  string `json:"url"`
}

// CreateHook adds a repo:push webhook with POST
// /repositories/{workspace}/{repo_slug}/hooks. Its id is the hook's UUID,
// braces included. Bitbucket signs each delivery with the secret
// (X-Hub-Signature: sha256=<hex HMAC of the body>).
func (Cloud) CreateHook(ctx context.Context, c forge.Conn, hookURL, secret string) (forge.Hook, error) {
	const op = "CreateHook"
	a, repo, err := openCloud(op, c)
	if err != nil {
		return forge.Hook{}, err
	}
	a.Hide(secret)
	var h cloudHookAnswer
	err = a.Call(ctx, op, http.MethodPost, repo+"/hooks", cloudHook{
		Description: "Slipway", URL: hookURL, Active: true, Secret: secret, Events: []string{"repo:push"},
	}, &h)
	if err != nil {
		return forge.Hook{}, err
	}
	if h.UUID == "" {
		return forge.Hook{}, fmt.Errorf("bitbucket: %s: POST %s/hooks: the answer has no uuid", op, repo)
	}
	if h.URL == "" {
		h.URL = hookURL
	}
	return forge.Hook{ID: h.UUID, URL: h.URL}, nil
}

// DeleteHook removes a webhook with DELETE
// /repositories/{workspace}/{repo_slug}/hooks/{uid}; the braces of the
// UUID are escaped.
func (Cloud) DeleteHook(ctx context.Context, c forge.Conn, id string) error {
	const op = "DeleteHook"
	if id == "" {
		return fmt.Errorf("bitbucket: %s: the hook id is empty", op)
	}
	a, repo, err := openCloud(op, c)
	if err != nil {
		return err
	}
	return a.Call(ctx, op, http.MethodDelete, repo+"/hooks/"+url.PathEscape(id), nil, nil)
}

// openCloud checks c and returns its API and the escaped
// "/repositories/{workspace}/{repo_slug}".
func openCloud(op string, c forge.Conn) (*rest.Client, string, error) {
	ws, slug, err := rest.OwnerAndName("bitbucket", op, c.FullName)
	if err != nil {
		return nil, "", err
	}
	root := c.APIURL
	if root == "" {
		root = CloudAPIURL
	}
	auth, secrets := authFor(c.Token)
	a, err := rest.New("bitbucket", op, root, c.HTTP, auth, secrets...)
	return a, "/repositories/" + ws + "/" + slug, err
}
