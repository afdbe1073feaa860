package main

import (
	"context"
	"testing"

	"github.com/slipway-build/slipway/model"
)

// Clone credentials carry the token user of the repository's host from the
// hosts table.
func TestCredentialsTakeTheHostsTokenUser(t *testing.T) {
	hs := &hosts{}
	for provider, want := range map[string]string{
		"github": "x-access-token", "bitbucket": "x-token-auth", "bitbucket-server": "x-token-auth",
		"gitlab": "oauth2", "gitea": "oauth2",
	} {
		c, err := hs.credentials(context.Background(), model.Repo{Provider: provider, FullName: "acme/demo", Token: "t0ken"})
		if err != nil {
			t.Fatalf("%s: %v", provider, err)
		}
		if c.TokenUser != want || c.Token != "t0ken" {
			t.Errorf("%s: token user, token = %q, %q; want %q, t0ken", provider, c.TokenUser, c.Token, want)
		}
	}
	if _, err := hs.credentials(context.Background(), model.Repo{Provider: "sourcehut", FullName: "acme/demo"}); err == nil {
		t.Error("a provider the table lacks: no error")
	}
}
