// Package source fetches the exact commit a build is for, with go-git, and
// answers which commit a ref points at.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Checkout is a request to materialise one commit in a directory.
type Checkout struct {
	URL    string
	Ref    string // full ref the commit was pushed to, used when a host refuses fetching by SHA
	Commit string
	Dir    string
	Auth   transport.AuthMethod
	// Submodules fetches the commits .gitmodules names (the repository's
	// `submodules: true`); without it they are left empty.
	Submodules bool
	// Progress receives git's progress and Slipway's own lines.
	Progress io.Writer
	// Log takes what a mirror has to say about this checkout (a tree or
	// a mirror started over), with the build's keys on it; nil is the
	// Mirrors' logger, naming the build by id.
	Log *slog.Logger
}

// Clone fetches c.Commit into c.Dir and checks it out. It fetches just that
// commit (depth 1) where the server allows it, and otherwise the ref's
// history until the commit is found.
func Clone(ctx context.Context, c Checkout) error {
	if err := checkRemote(c.URL); err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	if !isSHA(c.Commit) {
		return fmt.Errorf("clone %s: %q is not a full commit hash", c.URL, c.Commit)
	}
	// Only Slipway reads a checkout: other users of the machine must not.
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("clone %s: %w", c.URL, err)
	}
	repo, err := git.PlainInit(c.Dir, false)
	if err != nil {
		return fmt.Errorf("clone %s: init: %w", c.URL, err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{c.URL}}); err != nil {
		return fmt.Errorf("clone %s: %w", c.URL, err)
	}
	fmt.Fprintf(c.progress(), "fetching %s at %s\n", c.URL, c.Commit)
	err = fetch(ctx, repo, c, config.RefSpec(c.Commit+":refs/slipway/build"), 1)
	if errors.Is(err, git.ErrExactSHA1NotSupported) && c.Ref != "" {
		fmt.Fprintf(c.progress(), "server does not serve commits by hash; fetching %s\n", c.Ref)
		err = fetch(ctx, repo, c, config.RefSpec("+"+c.Ref+":refs/slipway/build"), 0)
	}
	if err != nil {
		return fmt.Errorf("clone %s: %w", c.URL, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("clone %s: %w", c.URL, err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(c.Commit), Force: true}); err != nil {
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return fmt.Errorf("clone %s: commit %s is not on %s (was it force-pushed away?)", c.URL, c.Commit, c.Ref)
		}
		return fmt.Errorf("clone %s: checkout %s: %w", c.URL, c.Commit, err)
	}
	fmt.Fprintf(c.progress(), "checked out %s\n", c.Commit)
	if err := submodules(ctx, wt, c); err != nil {
		return fmt.Errorf("clone %s: %w", c.URL, err)
	}
	return nil
}

// fetch fetches spec from c.URL into repo. The remote lives only in
// memory: a mirror's checkout names none.
func fetch(ctx context.Context, repo *git.Repository, c Checkout, spec config.RefSpec, depth int) error {
	remote := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{c.URL}})
	err := remote.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{spec},
		Depth:      depth,
		Auth:       c.Auth,
		Progress:   c.progress(),
		Tags:       git.NoTags,
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	return err
}

func (c Checkout) progress() io.Writer {
	if c.Progress == nil {
		return io.Discard
	}
	return c.Progress
}

// Resolve returns the commit ref points at on the remote (git ls-remote).
func Resolve(ctx context.Context, url, ref string, auth transport.AuthMethod) (string, error) {
	if err := checkRemote(url); err != nil {
		return "", fmt.Errorf("list refs: %w", err)
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	// AppendPeeled: go-git leaves out the "^{}" lines by default, without
	// which an annotated tag would resolve to the tag object, not the commit.
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return "", fmt.Errorf("list refs of %s: %w", url, err)
	}
	found := ""
	for _, r := range refs {
		switch {
		case r.Type() != plumbing.HashReference:
		case r.Name().String() == ref+"^{}":
			return r.Hash().String(), nil // an annotated tag, peeled to its commit
		case r.Name().String() == ref:
			found = r.Hash().String()
		}
	}
	if found == "" {
		return "", fmt.Errorf("ref %s not found in %s", ref, url)
	}
	return found, nil
}

func isSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	return strings.Trim(strings.ToLower(s), "0123456789abcdef") == ""
}

// Heads lists the branches of a remote and their commits (git ls-remote
// --heads).
func Heads(ctx context.Context, url string, auth transport.AuthMethod) (map[string]string, error) {
	if err := checkRemote(url); err != nil {
		return nil, fmt.Errorf("list branches: %w", err)
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return nil, fmt.Errorf("list refs of %s: %w", url, err)
	}
	heads := map[string]string{}
	for _, r := range refs {
		if r.Type() == plumbing.HashReference && r.Name().IsBranch() {
			heads[r.Name().String()] = r.Hash().String()
		}
	}
	return heads, nil
}
