// Package hosts is the one table of the Git hosts Slipway serves. Adding a
// host is a folder under forge/ (its webhook adapter and API client) and one
// row in table; everything else (the webhook handler's adapters, the API's
// provider names and clients, clone credentials) is read from here.
//
// The table lives in its own package because it names every host's folder,
// and those import package forge: in forge itself it would be a cycle.
package hosts

import (
	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/forge/bitbucket"
	"github.com/slipway-build/slipway/forge/gitea"
	"github.com/slipway-build/slipway/forge/github"
	"github.com/slipway-build/slipway/forge/gitlab"
	"github.com/slipway-build/slipway/webhook"
)

// Host is one Git host, as repositories name it in their provider.
type Host struct {
	// Name is the provider name repositories are registered under.
	Name string
	// TokenUser is how a clone over HTTPS authenticates with a bare token:
	// as this user's password, a name each host chooses. (A token written
	// "user:password" and SSH keys work alike on every host.)
	TokenUser string
	// Webhook reads the webhooks the host posts to HookPath. Hosts that
	// share an endpoint share the adapter, which names the sender in
	// webhook.Event.Provider (Bitbucket Cloud and Data Center).
	Webhook webhook.Provider
	// API is the host's API client: statuses, repository facts, webhooks.
	API forge.Forge
}

// HookPath is where the host posts webhooks: the handler serves
// /hooks/{adapter name}, so the path follows from the adapter.
func (h Host) HookPath() string { return "/hooks/" + h.Webhook.Name() }

// table lists the hosts in the order error messages name them.
var table = []Host{
	{Name: "github", TokenUser: "x-access-token", Webhook: github.Webhook{}, API: github.Forge{}},                  // #nosec G101 -- a user name GitHub wants with tokens, not a secret
	{Name: bitbucket.CloudName, TokenUser: "x-token-auth", Webhook: bitbucket.Webhook{}, API: bitbucket.Cloud{}},   // #nosec G101 -- a user name Bitbucket wants with tokens, not a secret
	{Name: bitbucket.ServerName, TokenUser: "x-token-auth", Webhook: bitbucket.Webhook{}, API: bitbucket.Server{}}, // #nosec G101 -- a user name Bitbucket wants with tokens, not a secret
	{Name: "gitlab", TokenUser: "oauth2", Webhook: gitlab.Webhook{}, API: gitlab.Forge{}},
	// Forgejo repositories are registered as gitea too.
	{Name: "gitea", TokenUser: "oauth2", Webhook: gitea.Webhook{}, API: gitea.Forge{}},
}

// All returns the table; changing the copy changes nothing.
func All() []Host { return append([]Host(nil), table...) }

// Find returns the host repositories name provider.
func Find(provider string) (Host, bool) {
	for _, h := range table {
		if h.Name == provider {
			return h, true
		}
	}
	return Host{}, false
}

// Names are the provider names, for validating a repository's.
func Names() []string {
	names := make([]string, len(table))
	for i, h := range table {
		names[i] = h.Name
	}
	return names
}

// Webhooks are the adapters the webhook handler serves, each once.
func Webhooks() []webhook.Provider {
	var out []webhook.Provider
	seen := map[string]bool{}
	for _, h := range table {
		if !seen[h.Webhook.Name()] {
			seen[h.Webhook.Name()] = true
			out = append(out, h.Webhook)
		}
	}
	return out
}

// APIs are the API clients by provider name.
func APIs() map[string]forge.Forge {
	out := make(map[string]forge.Forge, len(table))
	for _, h := range table {
		out[h.Name] = h.API
	}
	return out
}
