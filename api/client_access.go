package api

import (
	"context"
	"net/url"

	"github.com/slipway-build/slipway/access"
)

// CreateToken issues a token; its text is in the answer's Secret, once.
func (c Client) CreateToken(ctx context.Context, req access.TokenRequest) (Issued, error) {
	var out Issued
	return out, c.do(ctx, "POST", "/api/v1/tokens", req, &out)
}

// Tokens lists the tokens the caller may see, of org when not empty.
func (c Client) Tokens(ctx context.Context, org string) ([]access.Token, error) {
	var out []access.Token
	return out, c.do(ctx, "GET", "/api/v1/tokens?organization="+url.QueryEscape(org), nil, &out)
}

// RevokeToken revokes a token by id.
func (c Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/api/v1/tokens/"+url.PathEscape(id), nil, nil)
}

// CreateOrg creates an organization with its owners (bootstrap admin only).
func (c Client) CreateOrg(ctx context.Context, name string, owners []string) (access.Org, error) {
	var out access.Org
	return out, c.do(ctx, "POST", "/api/v1/orgs", orgRequest{Name: name, Owners: owners}, &out)
}

// Org reads an organization and its teams.
func (c Client) Org(ctx context.Context, name string) (access.Org, error) {
	var out access.Org
	return out, c.do(ctx, "GET", "/api/v1/orgs/"+url.PathEscape(name), nil, &out)
}

// SetTeam creates or replaces a team of an organization.
func (c Client) SetTeam(ctx context.Context, org, team string, t access.Team) (access.Org, error) {
	var out access.Org
	return out, c.do(ctx, "PUT", "/api/v1/orgs/"+url.PathEscape(org)+"/teams/"+url.PathEscape(team), t, &out)
}

// SetPublicImages sets which of an organization's images anyone may pull.
func (c Client) SetPublicImages(ctx context.Context, org string, images []string) (access.Org, error) {
	var out access.Org
	return out, c.do(ctx, "PATCH", "/api/v1/orgs/"+url.PathEscape(org), orgPatch{PublicImages: &images}, &out)
}

// SetRegistryLogin stores an organization's login for a registry host.
func (c Client) SetRegistryLogin(ctx context.Context, org, host string, login access.RegistryLogin) (access.Org, error) {
	var out access.Org
	return out, c.do(ctx, "PUT", "/api/v1/orgs/"+url.PathEscape(org)+"/registries/"+url.PathEscape(host), login, &out)
}
