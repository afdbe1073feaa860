package main

import (
	"context"
	"fmt"
	"os"

	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/forge/bitbucket"
	"github.com/slipway-build/slipway/forge/gitea"
	ghforge "github.com/slipway-build/slipway/forge/github"
	"github.com/slipway-build/slipway/forge/gitlab"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/source"
	"github.com/slipway-build/slipway/webhook"
)

// hosts is everything Slipway knows about the Git hosts: how their webhooks
// read, how their APIs are called, and how to authenticate to them.
type hosts struct {
	providers []webhook.Provider
	forges    map[string]forge.Forge
	app       *ghforge.App
}

func newHosts(cfg config.Config) (*hosts, error) {
	h := &hosts{
		providers: []webhook.Provider{ghforge.Webhook{}, bitbucket.Webhook{}, gitlab.Webhook{}, gitea.Webhook{}},
		forges:    map[string]forge.Forge{},
	}
	for _, f := range []forge.Forge{ghforge.Forge{}, bitbucket.Cloud{}, bitbucket.Server{}, gitlab.Forge{}, gitea.Forge{}} {
		h.forges[f.Name()] = f
	}
	if cfg.GitHubAppID == 0 {
		return h, nil
	}
	key, err := os.ReadFile(cfg.GitHubAppKeyFile)
	if err != nil {
		return nil, fmt.Errorf("SLIPWAY_GITHUB_APP_KEY_FILE: %w", err)
	}
	h.app, err = ghforge.NewApp(cfg.GitHubAppID, key, cfg.GitHubAPIURL, nil)
	if err != nil {
		return nil, fmt.Errorf("SLIPWAY_GITHUB_APP_KEY_FILE: %w", err)
	}
	return h, nil
}

// appToken is nil without a GitHub App, so the API can say it is missing.
func (h *hosts) appToken() func(context.Context, int64) (string, error) {
	if h.app == nil {
		return nil
	}
	return h.app.InstallationToken
}

// token is the credential for a repository's host API and clones: its
// App installation token when it has an installation, else its own token.
func (h *hosts) token(ctx context.Context, repo model.Repo) (string, error) {
	id := repo.Installation()
	if id == 0 {
		return repo.Token, nil
	}
	if h.app == nil {
		return "", fmt.Errorf("repository %s names GitHub App installation %d, but no App is configured", repo.FullName, id)
	}
	return h.app.InstallationToken(ctx, id)
}

// credentials are what a clone of repo needs.
func (h *hosts) credentials(ctx context.Context, repo model.Repo) (source.Credentials, error) {
	token, err := h.token(ctx, repo)
	if err != nil {
		return source.Credentials{}, err
	}
	return source.Credentials{Provider: repo.Provider, Token: token, SSHKey: repo.SSHKey, KnownHosts: repo.KnownHosts}, nil
}
