package source

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// maxSubmoduleDepth bounds nested submodules, as git's own default does.
const maxSubmoduleDepth = 10

// submodules checks out the commits .gitmodules names, recursively, when the
// repository opted in; the caller names the clone in its errors. Each submodule is fetched on its own so that the
// repository's credentials go only to its own host.
func submodules(ctx context.Context, wt *git.Worktree, c Checkout) error {
	subs, err := wt.Submodules()
	if err != nil {
		return fmt.Errorf("read .gitmodules: %w", err)
	}
	if len(subs) == 0 {
		return nil
	}
	if !c.Submodules {
		fmt.Fprintf(c.progress(), "skipped %d submodules (%s): the repository does not set submodules: true; their directories are empty\n",
			len(subs), submoduleNames(subs))
		return nil
	}
	fmt.Fprintf(c.progress(), "updating %d submodules\n", len(subs))
	return updateSubmodules(ctx, subs, c, maxSubmoduleDepth)
}

func updateSubmodules(ctx context.Context, subs git.Submodules, c Checkout, depth int) error {
	if depth == 0 {
		return fmt.Errorf("submodules nested more than %d deep", maxSubmoduleDepth)
	}
	for _, sub := range subs {
		if err := updateSubmodule(ctx, sub, c, depth); err != nil {
			return err
		}
	}
	return nil
}

// updateSubmodule checks the URL go-git will fetch from (a relative URL
// resolved against its parent's) before anything is fetched, then recurses
// into the submodule's own .gitmodules.
func updateSubmodule(ctx context.Context, sub *git.Submodule, c Checkout, depth int) error {
	name := sub.Config().Name
	raw := sub.Config().URL
	if err := sub.Init(); err != nil && !errors.Is(err, git.ErrSubmoduleAlreadyInitialized) {
		return fmt.Errorf("submodule %q: %w", name, err)
	}
	repo, err := sub.Repository()
	if err != nil {
		return fmt.Errorf("submodule %q (%s): %w", name, raw, err)
	}
	remote, err := repo.Remote(git.DefaultRemoteName)
	if err != nil {
		return fmt.Errorf("submodule %q (%s): %w", name, raw, err)
	}
	resolved := remote.Config().URLs[0]
	auth, err := submoduleAuth(c.URL, raw, resolved, c.Auth)
	if err != nil {
		return fmt.Errorf("submodule %q (%s): %w", name, raw, err)
	}
	who := "anonymously"
	if auth != nil {
		who = "with the repository's credentials"
	}
	fmt.Fprintf(c.progress(), "submodule %s: fetching %s %s\n", name, resolved, who)
	err = sub.UpdateContext(ctx, &git.SubmoduleUpdateOptions{Init: true, RecurseSubmodules: git.NoRecurseSubmodules, Auth: auth})
	if err != nil {
		return fmt.Errorf("submodule %q (%s): %w", name, resolved, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("submodule %q: %w", name, err)
	}
	nested, err := wt.Submodules()
	if err != nil {
		return fmt.Errorf("submodule %q: read .gitmodules: %w", name, err)
	}
	return updateSubmodules(ctx, nested, c, depth-1)
}

// remoteHelper is git's <transport>::<address> syntax (ext::, fd::).
var remoteHelper = regexp.MustCompile(`^[a-z0-9+.-]+::`)

// submoduleAuth decides what a submodule is fetched with. URLs that reach
// Slipway's own disk or run commands are refused; the repository's
// credentials go only where the repository itself lives (same scheme, host
// and port); any other host is fetched anonymously.
func submoduleAuth(parent, raw, resolved string, auth transport.AuthMethod) (transport.AuthMethod, error) {
	lower := strings.ToLower(strings.TrimSpace(raw))
	switch {
	case remoteHelper.MatchString(lower):
		return nil, errors.New("remote-helper URLs (ext::, fd::) are refused: they run commands")
	case strings.HasPrefix(lower, "file:"):
		return nil, errors.New("file:// URLs are refused: they would copy from Slipway's own disk")
	}
	sub, err := transport.NewEndpoint(resolved)
	if err != nil {
		return nil, fmt.Errorf("URL: %w", err)
	}
	switch sub.Protocol {
	case "file":
		return nil, errors.New("local paths are refused: they would copy from Slipway's own disk")
	case "git":
		return nil, errors.New("git:// URLs are refused: unauthenticated and unencrypted")
	case "http", "https", "ssh":
	default:
		return nil, fmt.Errorf("scheme %q is refused", sub.Protocol)
	}
	top, err := transport.NewEndpoint(parent)
	if err != nil {
		return nil, fmt.Errorf("repository URL: %w", err)
	}
	if sameOrigin(top, sub) {
		return auth, nil
	}
	if sub.Protocol == "ssh" {
		// SSH has no anonymous access, and with no key go-git would offer
		// the keys of Slipway's own SSH agent.
		return nil, errors.New("ssh URLs on another host than the repository's are refused: Slipway has no key to give them")
	}
	return nil, nil
}

// sameOrigin compares scheme, host and port, a default port written out or
// not.
func sameOrigin(a, b *transport.Endpoint) bool {
	return a.Protocol == b.Protocol && strings.EqualFold(a.Host, b.Host) && port(a) == port(b)
}

func port(e *transport.Endpoint) int {
	if e.Port != 0 {
		return e.Port
	}
	switch e.Protocol {
	case "http":
		return 80
	case "https":
		return 443
	case "ssh":
		return 22
	}
	return 0
}

func submoduleNames(subs git.Submodules) string {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.Config().Path
	}
	return strings.Join(names, ", ")
}
