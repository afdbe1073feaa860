package api

import (
	"context"
	"net/url"

	"github.com/slipway-build/slipway/model"
)

// Whoami is what GET /api/v1/whoami answers about the caller's token.
type Whoami struct {
	Account      string `json:"account"`
	Organization string `json:"organization"`
	Role         string `json:"role"`
	SiteAdmin    bool   `json:"site_admin"`
	TokenID      string `json:"token_id"`
}

// Whoami reads the token's account, organization and role: the call a
// login makes to check a token.
func (c Client) Whoami(ctx context.Context) (Whoami, error) {
	var out Whoami
	return out, c.do(ctx, "GET", "/api/v1/whoami", nil, &out)
}

// Repo reads one repository (its secrets are never answered).
func (c Client) Repo(ctx context.Context, id string) (model.Repo, error) {
	var out model.Repo
	return out, c.do(ctx, "GET", "/api/v1/repos/"+url.PathEscape(id), nil, &out)
}

// RegisterRequest is a repository to register; BuildNow builds its
// watched branch tips at once.
type RegisterRequest = createRequest

// Register registers a repository; the answer holds the webhook secret
// when Slipway generated it, the one time it is shown.
func (c Client) Register(ctx context.Context, req RegisterRequest) (Registered, error) {
	var out Registered
	return out, c.do(ctx, "POST", "/api/v1/repos", req, &out)
}

// SetRules replaces a repository's build rules.
func (c Client) SetRules(ctx context.Context, id string, rules []model.Rule) (model.Repo, error) {
	var out model.Repo
	return out, c.do(ctx, "PATCH", "/api/v1/repos/"+url.PathEscape(id), repoPatch{Rules: &rules}, &out)
}
