package source

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/slipway-build/slipway/outbound"
)

// checkoutCLI checks c.Commit out with the git command. It reads only
// c.Dir and, through its alternates, the mirror: no network, so the
// outbound guard has nothing to judge.
func checkoutCLI(ctx context.Context, c Checkout) error {
	var stderr bytes.Buffer
	// #nosec G204 -- fixed subcommand; c.Commit is checked to be a full hash and c.Dir is Slipway's own work dir.
	// No reflog: a kept working tree would grow one line per build.
	cmd := exec.CommandContext(ctx, "git", "-C", c.Dir, "-c", "core.hooksPath="+os.DevNull, "-c", "core.logAllRefUpdates=false",
		"checkout", "--quiet", "--force", "--detach", c.Commit, "--")
	cmd.Env = cliEnv()
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git checkout %s: %w: %s", c.Commit, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// cliEnv keeps the machine's and the user's git configuration (hooks,
// filters, credential helpers) out of Slipway's git commands.
func cliEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.DevNull,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
	}
}

// errNotCLI sends a fetch the git command cannot make behind the guard
// (ssh, credentials other than a token) to go-git.
var errNotCLI = errors.New("not a fetch for the git command")

// fetchCLI fetches spec into the bare mirror at dir with the git command.
// curl would resolve and connect by itself, so the guard resolves the host
// here and the command is pinned to the first address it allows
// (http.curloptResolve); redirects, other protocols, proxies from the
// environment and credential helpers are off. The token travels in an
// Authorization header given through the environment, never argv or disk.
func fetchCLI(ctx context.Context, guard *outbound.Guard, dir string, c Checkout, spec string) error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return errNotCLI
	}
	env := cliEnv()
	switch a := c.Auth.(type) {
	case nil:
	case *githttp.BasicAuth:
		basic := base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))
		env = append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0=Authorization: Basic "+basic)
	default:
		return errNotCLI
	}
	if u.Scheme == "http" {
		guard = guard.Plain() // as go-git's http client: only what the allow list opens
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return remoteError{fmt.Errorf("port of %s: %w", redact(c.URL), err)}
	}
	addrs, err := guard.Resolve(ctx, u.Hostname(), uint16(n))
	if err != nil {
		return remoteError{fmt.Errorf("fetch %s: %w", redact(c.URL), err)}
	}
	ip := addrs[0].String()
	if addrs[0].Is6() {
		ip = "[" + ip + "]"
	}
	var stderr bytes.Buffer
	// #nosec G204 -- fixed subcommand; the URL passed outbound.Remote and its host the guard, spec is built from a checked hash or ref.
	cmd := exec.CommandContext(ctx, "git", "-C", dir,
		"-c", "http.curloptResolve="+u.Hostname()+":"+port+":"+ip,
		"-c", "http.followRedirects=false", "-c", "protocol.allow=never", "-c", "protocol."+u.Scheme+".allow=always",
		"-c", "credential.helper=", "-c", "core.hooksPath="+os.DevNull,
		"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", c.URL, spec)
	cmd.Env = env
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return remoteError{fmt.Errorf("git fetch %s: %w: %s", redact(c.URL), err, strings.TrimSpace(stderr.String()))}
	}
	return nil
}
