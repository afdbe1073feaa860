package source

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/slipway-build/slipway/trigger"
)

// ErrNoBase means the commit to diff against is gone (a force-push) or
// never existed (a new branch); the caller builds without filtering.
var ErrNoBase = errors.New("base commit not available")

// Message returns the message of a commit in a clone made by Clone.
func Message(dir, sha string) (string, error) {
	repo, err := openClone(dir)
	if err != nil {
		return "", err
	}
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return "", fmt.Errorf("read commit %s: %w", sha, err)
	}
	return c.Message, nil
}

// ChangedFiles lists the paths that differ between base and c.Commit, in a
// clone made by Clone. It fetches just the base commit's tree, so it works
// for forced pushes and histories of any length. Without a base commit (a
// new branch) it compares with the tip of baseRef.
func ChangedFiles(ctx context.Context, c Checkout, base, baseRef string) ([]string, error) {
	repo, err := openClone(c.Dir)
	if err != nil {
		return nil, err
	}
	switch {
	case isSHA(base) && !trigger.IsZeroSHA(base) && has(repo, base):
		// A mirror's checkout has the history already.
		err = repo.Storer.SetReference(plumbing.NewHashReference("refs/slipway/base", plumbing.NewHash(base)))
	case isSHA(base) && !trigger.IsZeroSHA(base):
		err = fetch(ctx, repo, c, config.RefSpec(base+":refs/slipway/base"), 1)
	case baseRef != "" && baseRef != c.Ref:
		err = fetch(ctx, repo, c, config.RefSpec("+"+baseRef+":refs/slipway/base"), 1)
	default:
		return nil, ErrNoBase
	}
	if err != nil {
		return nil, fmt.Errorf("%w: fetch %s%s: %v", ErrNoBase, base, baseRef, err)
	}
	ref, err := repo.Reference("refs/slipway/base", true)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoBase, err)
	}
	base = ref.Hash().String()
	from, err := tree(repo, base)
	if err != nil {
		return nil, err
	}
	to, err := tree(repo, c.Commit)
	if err != nil {
		return nil, err
	}
	changes, err := object.DiffTreeWithOptions(ctx, from, to, &object.DiffTreeOptions{})
	if err != nil {
		return nil, fmt.Errorf("diff %s..%s: %w", base, c.Commit, err)
	}
	seen := map[string]bool{}
	var files []string
	for _, ch := range changes {
		for _, name := range []string{ch.From.Name, ch.To.Name} {
			if name != "" && !seen[name] {
				seen[name] = true
				files = append(files, name)
			}
		}
	}
	return files, nil
}

func tree(repo *git.Repository, sha string) (*object.Tree, error) {
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", sha, err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", sha, err)
	}
	return t, nil
}

// IsAncestor reports whether commit is an ancestor of descendant, in a
// clone made by Clone. It fetches descendant with depth commits of its
// history; an ancestor further back, or history that cannot be read,
// answers false, so a caller that uses it to hold a tag back errs on the
// side of moving it.
func IsAncestor(ctx context.Context, c Checkout, commit, descendant string, depth int) (bool, error) {
	repo, err := openClone(c.Dir)
	if err != nil {
		return false, err
	}
	// A commit is never an ancestor of its own parent: the usual case, a
	// tag held by the previous push, is answered without fetching.
	if isParent(repo, descendant, commit) {
		return false, nil
	}
	// A mirror's checkout has the history already. There the usual answer
	// is no: descendant is an older push, found a few steps back from
	// commit, where the walk from descendant would read all its history.
	if has(repo, descendant) && walksTo(repo, commit, descendant, depth) {
		return false, nil
	}
	if !has(repo, descendant) {
		if err := fetch(ctx, repo, c, config.RefSpec(descendant+":refs/slipway/descendant"), depth); err != nil {
			return false, fmt.Errorf("fetch %s: %w", descendant, err)
		}
	}
	d, err := repo.CommitObject(plumbing.NewHash(descendant))
	if err != nil {
		return false, fmt.Errorf("read commit %s: %w", descendant, err)
	}
	a, err := repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return false, fmt.Errorf("read commit %s: %w", commit, err)
	}
	return withinDepth(a, d, depth), nil
}

// isParent tells whether parent is one of child's parents, read from
// child's own commit object (which a shallow clone of child holds).
func isParent(repo *git.Repository, parent, child string) bool {
	c, err := repo.CommitObject(plumbing.NewHash(child))
	if err != nil {
		return false
	}
	return slices.Contains(c.ParentHashes, plumbing.NewHash(parent))
}

// walksTo tells whether to is found within depth commits back from from,
// both read locally; a missing object answers false.
func walksTo(repo *git.Repository, from, to string, depth int) bool {
	f, err := repo.CommitObject(plumbing.NewHash(from))
	if err != nil {
		return false
	}
	t, err := repo.CommitObject(plumbing.NewHash(to))
	if err != nil {
		return false
	}
	return withinDepth(t, f, depth)
}

// withinDepth walks back from d at most depth commits looking for a, as a
// depth-limited fetch would let it: a mirror holds the whole history,
// which an unbounded walk would read (12.8 s for 1,000 commits through
// go-git's alternates). A walk that cannot read further answers false.
func withinDepth(a, d *object.Commit, depth int) bool {
	seen := map[plumbing.Hash]bool{}
	level := []*object.Commit{d}
	for i := 0; i < depth && len(level) > 0; i++ {
		var next []*object.Commit
		for _, c := range level {
			if c.Hash == a.Hash {
				return true
			}
			_ = c.Parents().ForEach(func(p *object.Commit) error {
				if !seen[p.Hash] {
					seen[p.Hash] = true
					next = append(next, p)
				}
				return nil
			})
		}
		level = next
	}
	return false
}
