package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/config"
	ghforge "github.com/slipway-build/slipway/forge/github"
	githosts "github.com/slipway-build/slipway/forge/hosts"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/source"
)

// hosts is how Slipway authenticates to the Git hosts: the hosts table's
// token users, and the GitHub App when one is configured. What the hosts
// are is the table's (package forge/hosts).
type hosts struct {
	app *ghforge.App
}

// hc sends the App's token exchanges (behind the outbound guard).
// keys open the App's key file when it is sealed.
func newHosts(cfg config.Config, hc *http.Client, keys *seal.Keyring) (*hosts, error) {
	h := &hosts{}
	if cfg.GitHubAppID == 0 {
		return h, nil
	}
	key, err := os.ReadFile(cfg.GitHubAppKeyFile)
	if err != nil {
		return nil, fmt.Errorf("SLIPWAY_GITHUB_APP_KEY_FILE: %w", err)
	}
	if key, err = openAppKey(key, keys); err != nil {
		return nil, fmt.Errorf("SLIPWAY_GITHUB_APP_KEY_FILE: %w", err)
	}
	h.app, err = ghforge.NewApp(cfg.GitHubAppID, key, cfg.GitHubAPIURL, hc)
	if err != nil {
		return nil, fmt.Errorf("SLIPWAY_GITHUB_APP_KEY_FILE: %w", err)
	}
	return h, nil
}

// appToken is nil without a GitHub App, so the API can say it is missing.
func (h *hosts) appToken() func(context.Context, int64, string) (string, error) {
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
	return h.app.InstallationToken(ctx, id, repo.FullName)
}

// apiHosts is the hosts table as the API needs it.
func apiHosts() []api.Host {
	var out []api.Host
	for _, h := range githosts.All() {
		out = append(out, api.Host{Name: h.Name, HookPath: h.HookPath(), API: h.API})
	}
	return out
}

// credentials are what a clone of repo needs.
func (h *hosts) credentials(ctx context.Context, repo model.Repo) (source.Credentials, error) {
	host, ok := githosts.Find(repo.Provider)
	if !ok {
		return source.Credentials{}, fmt.Errorf("repository %s: provider %q is not a Git host Slipway knows", repo.FullName, repo.Provider)
	}
	token, err := h.token(ctx, repo)
	if err != nil {
		return source.Credentials{}, err
	}
	return source.Credentials{Token: token, TokenUser: host.TokenUser, SSHKey: repo.SSHKey, KnownHosts: repo.KnownHosts}, nil
}
