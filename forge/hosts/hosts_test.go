package hosts_test

import (
	"reflect"
	"testing"

	"github.com/slipway-build/slipway/forge/hosts"
)

// Each row must agree with what its parts say about themselves: the API
// client's name is the provider's, and the hook path routes to an adapter
// the handler serves.
func TestRowsAgreeWithTheirParts(t *testing.T) {
	served := map[string]bool{}
	for _, p := range hosts.Webhooks() {
		if served[p.Name()] {
			t.Errorf("adapter %s served twice", p.Name())
		}
		served[p.Name()] = true
	}
	names := map[string]bool{}
	for _, h := range hosts.All() {
		if names[h.Name] {
			t.Errorf("provider %s listed twice", h.Name)
		}
		names[h.Name] = true
		if got := h.API.Name(); got != h.Name {
			t.Errorf("%s: API client's Name() = %q", h.Name, got)
		}
		if h.TokenUser == "" {
			t.Errorf("%s: no token user for clones", h.Name)
		}
		if !served[h.Webhook.Name()] {
			t.Errorf("%s: hook path %s has no adapter", h.Name, h.HookPath())
		}
	}
}

// The names, paths, clone users and body limits are the hosts' own: a
// change here is a change users see.
func TestTable(t *testing.T) {
	type row struct {
		name, hookPath, tokenUser string
		maxBody                   int64
	}
	want := []row{
		{"github", "/hooks/github", "x-access-token", 25 << 20},
		{"bitbucket", "/hooks/bitbucket", "x-token-auth", 256 << 10},
		{"bitbucket-server", "/hooks/bitbucket", "x-token-auth", 256 << 10},
		{"gitlab", "/hooks/gitlab", "oauth2", 25 << 20},
		{"gitea", "/hooks/gitea", "oauth2", 25 << 20},
	}
	var got []row
	for _, h := range hosts.All() {
		got = append(got, row{h.Name, h.HookPath(), h.TokenUser, h.Webhook.MaxBody()})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("table =\n %v\nwant\n %v", got, want)
	}
	if names := hosts.Names(); !reflect.DeepEqual(names, []string{"github", "bitbucket", "bitbucket-server", "gitlab", "gitea"}) {
		t.Errorf("Names() = %v", names)
	}
	if h, ok := hosts.Find("bitbucket-server"); !ok || h.API.Name() != "bitbucket-server" || h.Webhook.Name() != "bitbucket" {
		t.Errorf("Find(bitbucket-server) = %+v, %v", h, ok)
	}
	if _, ok := hosts.Find("sourcehut"); ok {
		t.Error("Find(sourcehut) found a host")
	}
	if apis := hosts.APIs(); len(apis) != 5 || apis["gitea"] == nil {
		t.Errorf("APIs() = %v", apis)
	}
}
