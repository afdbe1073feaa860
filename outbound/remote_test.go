package outbound

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestRemote(t *testing.T) {
	good := map[string]string{
		"https://github.com/acme/demo.git":   "https://github.com/acme/demo.git",
		"http://git.lan/acme/demo.git":       "http://git.lan/acme/demo.git",
		"ssh://git@github.com/acme/demo.git": "ssh://git@github.com/acme/demo.git",
		"git@github.com:acme/demo.git":       "ssh://git@github.com/acme/demo.git",
		"ssh://git@[::1]:2222/acme/demo.git": "ssh://git@[::1]:2222/acme/demo.git",
	}
	for raw, want := range good {
		u, err := Remote(raw)
		if err != nil || u.String() != want {
			t.Errorf("Remote(%q) = %v, %v; want %s", raw, u, err, want)
		}
	}
	bad := []string{
		"file:///srv/git/demo.git", "/srv/git/demo.git", "./demo", "ext::sh -c touch% /tmp/pwned",
		"fd::17", "git://github.com/acme/demo.git", "ftp://git.example/demo.git", "https:///demo.git",
		"https://user:hunter2@github.com/acme/demo.git", "https://x-access-token@github.com/acme/demo.git",
		"ssh://git:hunter2@github.com/acme/demo.git", "not a url",
	}
	for _, raw := range bad {
		if u, err := Remote(raw); err == nil {
			t.Errorf("Remote(%q) = %v, want refused", raw, u)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Remote(%q): the error shows the password: %v", raw, err)
		}
	}
}

func TestPlainReachesOnlyAllowedRanges(t *testing.T) {
	g := (&Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}).Plain()
	if err := g.Check(netip.MustParseAddr("127.0.0.1"), 80); err != nil {
		t.Errorf("an allowed loopback address: %v", err)
	}
	if err := g.Check(netip.MustParseAddr("8.8.8.8"), 80); !errors.Is(err, ErrRefused) {
		t.Errorf("a public address over plain HTTP: %v, want ErrRefused", err)
	}
	u, _ := Remote("http://140.82.112.3/acme/demo.git")
	if err := g.CheckURL(context.Background(), u); !errors.Is(err, ErrRefused) {
		t.Errorf("CheckURL(%s) = %v, want ErrRefused", u, err)
	}
}
