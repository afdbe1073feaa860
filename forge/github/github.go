// Package github is GitHub's folder: Webhook reads its webhooks (push and
// ping events, JSON or form-encoded, signed with X-Hub-Signature-256), and
// Forge calls GitHub and GitHub Enterprise Server through go-github: commit
// statuses, repository facts and push webhooks. App authenticates as a
// GitHub App and hands out cached installation tokens for those calls.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v93/github"

	"github.com/slipway-build/slipway/forge"
)

// DefaultAPIURL is the public GitHub API root, used when Conn.APIURL is empty.
const DefaultAPIURL = "https://api.github.com/"

// defaultTimeout bounds a request when Conn.HTTP (or App.HTTP) is nil.
const defaultTimeout = 30 * time.Second

const userAgent = "slipway"

// Forge is GitHub's API. The zero value is ready to use; it keeps no state,
// so one value serves any number of repositories and goroutines.
type Forge struct{}

var _ forge.Forge = Forge{}

// Name is the provider name used in repositories and /hooks/github.
func (Forge) Name() string { return "github" }

// SetStatus posts a commit status: POST /repos/{owner}/{repo}/statuses/{sha}.
func (Forge) SetStatus(ctx context.Context, c forge.Conn, s forge.Status) error {
	owner, name, err := splitFullName(c.FullName)
	if err != nil {
		return err
	}
	if strings.TrimSpace(s.Commit) == "" {
		return errors.New("github: set status: empty commit SHA")
	}
	state, desc, err := mapState(s.State, s.Description)
	if err != nil {
		return err
	}
	key := s.Key
	if key == "" {
		key = forge.DefaultKey
	}
	st := gh.RepoStatus{State: &state, Context: &key}
	if desc = forge.Describe(desc); desc != "" {
		st.Description = &desc
	}
	if s.URL != "" {
		target := s.URL
		st.TargetURL = &target
	}
	client, err := newClient(c)
	if err != nil {
		return err
	}
	_, resp, err := client.Repositories.CreateStatus(ctx, owner, name, s.Commit, st)
	return apiError(http.MethodPost, "/repos/"+owner+"/"+name+"/statuses/"+s.Commit, resp, err, c.Token)
}

// Repo reads the repository: GET /repos/{owner}/{repo}.
func (Forge) Repo(ctx context.Context, c forge.Conn) (forge.Repo, error) {
	owner, name, err := splitFullName(c.FullName)
	if err != nil {
		return forge.Repo{}, err
	}
	client, err := newClient(c)
	if err != nil {
		return forge.Repo{}, err
	}
	r, resp, err := client.Repositories.Get(ctx, owner, name)
	if err := apiError(http.MethodGet, "/repos/"+owner+"/"+name, resp, err, c.Token); err != nil {
		return forge.Repo{}, err
	}
	if r == nil {
		return forge.Repo{}, fmt.Errorf("github: GET /repos/%s/%s: empty answer", owner, name)
	}
	full := r.GetFullName()
	if full == "" {
		full = c.FullName
	}
	return forge.Repo{
		FullName:      full,
		DefaultBranch: r.GetDefaultBranch(),
		CloneURL:      r.GetCloneURL(),
		Private:       r.GetPrivate(),
	}, nil
}

// CreateHook adds an active "web" hook for push events that posts JSON to
// url, signed with secret: POST /repos/{owner}/{repo}/hooks. The returned
// ID is GitHub's numeric hook id in decimal.
func (Forge) CreateHook(ctx context.Context, c forge.Conn, hookURL, secret string) (forge.Hook, error) {
	owner, name, err := splitFullName(c.FullName)
	if err != nil {
		return forge.Hook{}, err
	}
	if hookURL == "" {
		return forge.Hook{}, errors.New("github: create hook: empty webhook URL")
	}
	if secret == "" {
		// An unsigned hook could never pass webhook verification.
		return forge.Hook{}, errors.New("github: create hook: empty webhook secret")
	}
	client, err := newClient(c)
	if err != nil {
		return forge.Hook{}, err
	}
	hook := &gh.Hook{
		Name:   new("web"),
		Active: new(true),
		Events: []string{"push"},
		Config: &gh.HookConfig{
			URL:         new(hookURL),
			ContentType: new("json"),
			Secret:      new(secret),
			InsecureSSL: new("0"),
		},
	}
	endpoint := "/repos/" + owner + "/" + name + "/hooks"
	h, resp, err := client.Repositories.CreateHook(ctx, owner, name, hook)
	if err := apiError(http.MethodPost, endpoint, resp, err, c.Token); err != nil {
		return forge.Hook{}, err
	}
	if h.GetID() <= 0 {
		return forge.Hook{}, fmt.Errorf("github: POST %s: the answer has no hook id", endpoint)
	}
	out := forge.Hook{ID: strconv.FormatInt(h.GetID(), 10), URL: hookURL}
	if u := h.GetConfig().GetURL(); u != "" {
		out.URL = u
	}
	return out, nil
}

// DeleteHook removes a webhook: DELETE /repos/{owner}/{repo}/hooks/{id}.
// A hook that is already gone answers 404, returned as an *APIError.
func (Forge) DeleteHook(ctx context.Context, c forge.Conn, id string) error {
	owner, name, err := splitFullName(c.FullName)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("github: delete hook: hook id %q is not a positive decimal number", id)
	}
	client, err := newClient(c)
	if err != nil {
		return err
	}
	resp, err := client.Repositories.DeleteHook(ctx, owner, name, n)
	return apiError(http.MethodDelete, "/repos/"+owner+"/"+name+"/hooks/"+id, resp, err, c.Token)
}

// mapState turns a Slipway state into GitHub's word. GitHub has no
// "cancelled": it becomes "error" and the description says so.
func mapState(s forge.State, desc string) (string, string, error) {
	switch s {
	case forge.Pending, forge.Running:
		return "pending", desc, nil
	case forge.Success:
		return "success", desc, nil
	case forge.Failure:
		return "failure", desc, nil
	case forge.Error:
		return "error", desc, nil
	case forge.Cancelled:
		switch {
		case desc == "":
			desc = "cancelled"
		case !strings.Contains(strings.ToLower(desc), "cancel"):
			desc = "cancelled: " + desc
		}
		return "error", desc, nil
	}
	return "", "", fmt.Errorf("github: unknown build state %q", s)
}

// splitFullName checks owner/name and returns both parts.
func splitFullName(full string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(full, "/")
	if !ok || !validPart(owner) || !validPart(name) {
		return "", "", fmt.Errorf("github: repository %q is not owner/name", full)
	}
	return owner, name, nil
}

// validPart accepts what GitHub allows in an owner or repository name
// (letters, digits, '-', '_', '.'), but not "." or "..".
func validPart(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '-' || r == '_' || r == '.':
		default:
			return false
		}
	}
	return true
}

// baseURL returns the API root with a trailing slash.
func baseURL(apiURL string) (string, error) {
	if apiURL == "" {
		return DefaultAPIURL, nil
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("github: API URL %q is not an absolute http(s) URL", apiURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("github: API URL %q must not carry credentials, a query or a fragment", u.Redacted())
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u.String(), nil
}

// httpClient returns hc, or a client with a 30 s timeout when hc is nil.
func httpClient(hc *http.Client) *http.Client {
	if hc != nil {
		return hc
	}
	return &http.Client{Timeout: defaultTimeout}
}

// newClient builds a go-github client for one call. go-github copies the
// http.Client it is given, so c.HTTP is never modified.
func newClient(c forge.Conn) (*gh.Client, error) {
	base, err := baseURL(c.APIURL)
	if err != nil {
		return nil, err
	}
	opts := []gh.ClientOptionsFunc{
		gh.WithHTTPClient(httpClient(c.HTTP)),
		gh.WithURLs(&base, nil),
		gh.WithUserAgent(userAgent),
	}
	if c.Token != "" {
		opts = append(opts, gh.WithAuthToken(c.Token))
	}
	client, err := gh.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("github: client: %w", err)
	}
	return client, nil
}
