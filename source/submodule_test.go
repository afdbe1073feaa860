package source

import (
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

func TestSubmoduleAuth(t *testing.T) {
	token := &githttp.BasicAuth{Username: "x-access-token", Password: "ghp_secret"}
	const parent = "https://git.example.com/acme/app.git"
	tests := []struct {
		raw, resolved string
		want          string // "token", "anonymous", or the error
	}{
		{"../lib.git", "https://git.example.com/acme/lib.git", "token"},
		{"https://git.example.com/other/lib.git", "https://git.example.com/other/lib.git", "token"},
		{"https://GIT.example.com:443/other/lib.git", "https://GIT.example.com:443/other/lib.git", "token"},
		{"https://git.example.com:8443/lib.git", "https://git.example.com:8443/lib.git", "anonymous"},
		{"http://git.example.com/lib.git", "http://git.example.com/lib.git", "anonymous"},
		{"https://evil.example.net/lib.git", "https://evil.example.net/lib.git", "anonymous"},
		{"https://[::1]:9000/lib.git", "https://[::1]:9000/lib.git", "anonymous"},
		{"file:///srv/slipway/data", "file:///srv/slipway/data", "file:// URLs are refused: they would copy from Slipway's own disk"},
		{"FILE:///srv/slipway/data", "FILE:///srv/slipway/data", "file:// URLs are refused: they would copy from Slipway's own disk"},
		{"/srv/slipway/data", "/srv/slipway/data", "local paths are refused: they would copy from Slipway's own disk"},
		{"ext::sh -c touch% /tmp/pwned", "ext::sh -c touch% /tmp/pwned", "remote-helper URLs (ext::, fd::) are refused: they run commands"},
		{"git://git.example.com/lib.git", "git://git.example.com/lib.git", "git:// URLs are refused: unauthenticated and unencrypted"},
		{"git@evil.example.net:lib.git", "git@evil.example.net:lib.git", "ssh URLs on another host than the repository's are refused: Slipway has no key to give them"},
	}
	for _, tt := range tests {
		auth, err := submoduleAuth(parent, tt.raw, tt.resolved, token)
		got := "anonymous"
		switch {
		case err != nil:
			got = err.Error()
		case auth == token:
			got = "token"
		case auth != nil:
			got = "other credentials"
		}
		if got != tt.want {
			t.Errorf("submodule %q: got %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestSubmoduleAuthSSHParent(t *testing.T) {
	key := &githttp.BasicAuth{Username: "stands-in-for-a-key"}
	auth, err := submoduleAuth("git@git.example.com:acme/app.git", "../lib.git", "ssh://git@git.example.com/acme/lib.git", key)
	if err != nil || auth != key {
		t.Errorf("same-host ssh submodule: %v %v, want the repository's key", auth, err)
	}
}
