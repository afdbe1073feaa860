package source

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Credentials are what a private repository needs.
type Credentials struct {
	// Token is sent over HTTPS as the password: a personal access token,
	// an app installation token, or "user:password".
	Token string
	// TokenUser is the user name the repository's host expects alongside
	// a bare token (the Git hosts table says which).
	TokenUser string
	// SSHKey is a PEM private key for ssh:// and scp-style URLs;
	// KnownHosts the host keys the server must present (required with it).
	SSHKey     string
	KnownHosts string
}

// Auth returns how to authenticate to url, or nil for anonymous access.
// dir receives the known_hosts file an SSH key is checked against.
func (c Credentials) Auth(url, dir string) (transport.AuthMethod, error) {
	if isSSH(url) {
		return c.sshAuth(dir)
	}
	if c.Token == "" {
		return nil, nil
	}
	if user, pass, ok := strings.Cut(c.Token, ":"); ok {
		return &githttp.BasicAuth{Username: user, Password: pass}, nil
	}
	if c.TokenUser == "" {
		// Guessing a name would fail later as a puzzling 401 from the host.
		return nil, fmt.Errorf("a bare token needs the host's user name for it (Credentials.TokenUser)")
	}
	return &githttp.BasicAuth{Username: c.TokenUser, Password: c.Token}, nil
}

func (c Credentials) sshAuth(dir string) (transport.AuthMethod, error) {
	if c.SSHKey == "" {
		return nil, fmt.Errorf("ssh clone needs the repository's ssh_key")
	}
	if strings.TrimSpace(c.KnownHosts) == "" {
		return nil, fmt.Errorf("ssh clone needs known_hosts: Slipway never trusts an unknown host key")
	}
	keys, err := gitssh.NewPublicKeys("git", []byte(c.SSHKey), "")
	if err != nil {
		return nil, fmt.Errorf("ssh_key: %w", err)
	}
	file := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(file, []byte(c.KnownHosts+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	keys.HostKeyCallback = cb
	return keys, nil
}

// isSSH tells ssh://host/path and scp-style git@host:path URLs.
func isSSH(url string) bool {
	if strings.HasPrefix(url, "ssh://") {
		return true
	}
	return !strings.Contains(url, "://") && strings.Contains(url, "@") && strings.Contains(url, ":")
}
