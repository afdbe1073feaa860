package access_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd/natsdtest"
	"github.com/slipway-build/slipway/regauth"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/store"
)

// TestRegistryAccess is who may pull, push and delete on the embedded
// registry, with Slipway tokens as passwords, on a real embedded NATS.
func TestRegistryAccess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, nc := natsdtest.Start(t)
	d, err := access.Open(ctx, nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, nc, store.Options{Keys: seal.Ephemeral()})
	if err != nil {
		t.Fatal(err)
	}
	d.Bootstrap = "bootstrap-token-0123456789abcdef0123"
	site, _ := d.Authenticate(ctx, d.Bootstrap)
	if _, err := d.CreateOrg(ctx, "acme", []string{"carol"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateOrg(ctx, "acme", func(o *access.Org) error {
		o.Teams["viewers"] = access.Team{Role: access.Read, Members: []string{"alice"}}
		o.PublicImages = []string{"acme/base"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateOrg(ctx, "other", []string{"dave"}); err != nil {
		t.Fatal(err)
	}
	issue := func(org, account string, role access.Role) string {
		_, text, err := d.IssueToken(ctx, site, access.TokenRequest{Name: "t", Org: org, Account: account, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	pub := model.Repo{ID: "r-pub", Provider: "github", FullName: "acme/site", Image: "127.0.0.1:5000/acme/site", PublicImage: true, CreatedAt: time.Now()}
	if err := st.CreateRepo(ctx, pub); err != nil {
		t.Fatal(err)
	}
	g := access.Registry{Dir: d, Repos: st, Host: "127.0.0.1:5000", IsGone: func(err error) bool { return errors.Is(err, store.ErrNotFound) }}

	login := func(user, secret string) regauth.Account {
		who, err := g.Login(ctx, user, secret)
		if err != nil {
			t.Fatalf("Login(%s): %v", user, err)
		}
		return who
	}
	alice := login("alice", issue("acme", "alice", access.Read))
	carol := login("carol", issue("acme", "carol", access.Admin))
	dave := login("dave", issue("other", "dave", access.Admin))
	boot := login("anyone", d.Bootstrap)
	if _, err := g.Login(ctx, "mallory", issue("acme", "alice", access.Read)); !errors.Is(err, regauth.ErrDenied) {
		t.Errorf("alice's token under another user name: %v, want ErrDenied", err)
	}
	if _, err := g.Login(ctx, "alice", "slp_wrong"); !errors.Is(err, regauth.ErrDenied) {
		t.Errorf("a wrong token: %v, want ErrDenied", err)
	}

	pull, all := []string{"pull"}, []string{"pull", "push", "delete"}
	tests := []struct {
		name string
		who  regauth.Account
		repo string
		want []string
	}{
		{"reader pulls its org's image", alice, "acme/app", pull},
		{"admin pushes and deletes", carol, "acme/app", all},
		{"another org's admin gets nothing", dave, "acme/app", nil},
		{"bootstrap admin everywhere", boot, "other/app", all},
		{"anonymous gets nothing private", regauth.Account{}, "acme/app", nil},
		{"anonymous pulls the org's public list", regauth.Account{}, "acme/base", pull},
		{"anonymous pulls a public repository's image", regauth.Account{}, "acme/site", pull},
		{"another org pulls a public image", dave, "acme/site", pull},
		{"a build pass pulls in its org", regauth.Account{Name: "build", Org: "acme", Role: "read", Push: "acme/app"}, "acme/lib", pull},
	}
	for _, tt := range tests {
		got, err := g.Actions(ctx, tt.who, tt.repo)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}
