package access_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/natsd/natsdtest"
)

var acme = access.Org{Name: "acme", Teams: map[string]access.Team{
	"owners":  {Role: access.Admin, Members: []string{"carol"}},
	"devs":    {Role: access.Write, Members: []string{"bob", "acme+ci"}},
	"viewers": {Role: access.Read, Members: []string{"alice", "bob"}},
}}

func TestResolveLowersTheTokenToTheTeams(t *testing.T) {
	tests := []struct {
		account string
		token   access.Role
		want    access.Role
	}{
		{"carol", access.Admin, access.Admin},
		{"carol", access.Read, access.Read},
		{"bob", access.Admin, access.Write}, // bob's best team is devs
		{"acme+ci", access.Write, access.Write},
		{"alice", access.Write, access.Read},
		{"mallory", access.Admin, access.None}, // in no team
	}
	for _, tt := range tests {
		p := access.Resolve(access.Token{Account: tt.account, Org: "acme", Role: tt.token}, acme)
		if p.Role != tt.want || p.RoleIn("acme") != tt.want || p.RoleIn("other") != access.None {
			t.Errorf("%s with a %s token: role %q (in acme %q, in other %q), want %q in acme and none elsewhere",
				tt.account, tt.token, p.Role, p.RoleIn("acme"), p.RoleIn("other"), tt.want)
		}
	}
}

func TestMayIssue(t *testing.T) {
	carol := access.Principal{Account: "carol", Org: "acme", Role: access.Admin}
	bob := access.Principal{Account: "bob", Org: "acme", Role: access.Write}
	dave := access.Principal{Account: "dave", Org: "other", Role: access.Admin}
	siteAdmin := access.Principal{Account: "admin", Site: true}
	req := func(account string, role access.Role) access.TokenRequest {
		return access.TokenRequest{Name: "t", Org: "acme", Account: account, Role: role}
	}
	tests := []struct {
		name string
		by   access.Principal
		req  access.TokenRequest
		want string // "" allowed, "forbidden" or "invalid"
	}{
		{"admin for a member", carol, req("bob", access.Write), ""},
		{"admin above the member's teams", carol, req("alice", access.Write), "invalid"},
		{"self at own role", bob, req("bob", access.Write), ""},
		{"self above own role", bob, req("bob", access.Admin), "forbidden"},
		{"write for someone else", bob, req("alice", access.Read), "forbidden"},
		{"other organization's admin", dave, req("bob", access.Read), "forbidden"},
		{"bootstrap admin", siteAdmin, req("acme+ci", access.Write), ""},
		{"no role", siteAdmin, req("bob", ""), "invalid"},
	}
	for _, tt := range tests {
		err := access.MayIssue(tt.by, tt.req, acme.RoleOf(tt.req.Account))
		got := ""
		switch {
		case err == nil:
		case access.IsForbidden(err):
			got = "forbidden"
		case access.IsInvalid(err):
			got = "invalid"
		default:
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestValidNames(t *testing.T) {
	for name, ok := range map[string]bool{"acme": true, "acme-corp": true, "a.b_c": true, "Acme": false, "-acme": false, "": false, "acme/x": false} {
		if got := access.ValidOrg(name) == nil; got != ok {
			t.Errorf("ValidOrg(%q) ok = %v, want %v", name, got, ok)
		}
	}
	if err := access.ValidTeam("acme", "ci", access.Team{Role: access.Write, Members: []string{"other+bot"}}); err == nil {
		t.Errorf("a robot of another organization was accepted as a member")
	}
}

// TestTokensOnJetStream issues, authenticates, expires and revokes tokens
// on a real embedded NATS.
func TestTokensOnJetStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, nc := natsdtest.Start(t)
	d, err := access.Open(ctx, nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d.Now = func() time.Time { return now }
	d.Bootstrap = "bootstrap-token-0123456789abcdef0123"
	if _, err := d.CreateOrg(ctx, "acme", []string{"carol"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateOrg(ctx, "acme", nil); !errors.Is(err, access.ErrExists) {
		t.Errorf("second CreateOrg: %v, want ErrExists", err)
	}
	site, err := d.Authenticate(ctx, d.Bootstrap)
	if err != nil || !site.Site {
		t.Fatalf("bootstrap: %+v %v", site, err)
	}
	tok, text, err := d.IssueToken(ctx, site, access.TokenRequest{Name: "ci", Org: "acme", Account: "carol", Role: access.Write, ExpiresIn: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	if len(text) != len("slp_")+20+1+43 || tok.Hash == "" || tok.Hash == text {
		t.Errorf("token text %d characters, hash %q: want slp_<20 hex>_<43 base64url> and only a hash stored", len(text), tok.Hash)
	}
	p, err := d.Authenticate(ctx, text)
	if err != nil || p.Account != "carol" || p.Org != "acme" || p.Role != access.Write {
		t.Errorf("Authenticate = %+v, %v; want carol, acme, write", p, err)
	}
	stored, _ := d.GetToken(ctx, tok.ID)
	if stored.LastUsed == nil || !stored.LastUsed.Equal(now) {
		t.Errorf("last_used = %v, want %v", stored.LastUsed, now)
	}
	if _, err := d.Authenticate(ctx, wrongSecret(text)); !errors.Is(err, access.ErrUnauthenticated) {
		t.Errorf("a wrong secret: %v, want ErrUnauthenticated", err)
	}
	now = now.Add(25 * time.Hour)
	if _, err := d.Authenticate(ctx, text); !errors.Is(err, access.ErrUnauthenticated) {
		t.Errorf("an expired token: %v, want ErrUnauthenticated", err)
	}
	_, text2, err := d.IssueToken(ctx, site, access.TokenRequest{Name: "deploy", Org: "acme", Account: "carol", Role: access.Read})
	if err != nil {
		t.Fatal(err)
	}
	id2, _, _ := access.Split(text2)
	if _, err := d.RevokeToken(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(ctx, text2); !errors.Is(err, access.ErrUnauthenticated) {
		t.Errorf("a revoked token: %v, want ErrUnauthenticated", err)
	}
	list, err := d.ListTokens(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].RevokedAt == nil {
		t.Errorf("ListTokens = %+v, %v; want 2 tokens, the newest revoked", list, err)
	}
}

// wrongSecret changes one character in the middle of the secret part.
// The last character is not used: it carries only four bits, so two
// different characters there can decode to the same bytes.
func wrongSecret(text string) string {
	i := len(text) - 10
	c := byte('A')
	if text[i] == 'A' {
		c = 'B'
	}
	return text[:i] + string(c) + text[i+1:]
}
