package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// treesDir holds a mirror's working trees, <mirror>/slipway-trees/<n>:
// inside the mirror, so that its size counts towards MaxBytes and eviction
// deletes them with it.
const treesDir = "slipway-trees"

// WorkTree is a checkout a build holds until it calls Release (it must,
// also after an error).
type WorkTree struct {
	// Dir is where the commit is checked out.
	Dir string
	// Key names Dir across builds: the same key, the same directory, of
	// which only the files that changed since the last build are new. ""
	// for a checkout made for this build alone.
	Key     string
	Release func()
}

// Tree checks c.Commit out in a working tree kept beside the mirror of
// repository id, updated in place: only the files that differ from the
// tree's last build are written, and their neighbours keep their
// modification times, so BuildKit sends only those (WorkTree.Key). A build
// holds its tree alone; a concurrent build of the same repository takes
// another one. A checkout with submodules is made afresh in c.Dir, as
// Clone does: they are repositories of their own that a kept tree would
// carry into the next build.
func (m *Mirrors) Tree(ctx context.Context, id, build string, c Checkout) (WorkTree, error) {
	if c.Submodules {
		release, err := m.Clone(ctx, id, build, c)
		return WorkTree{Dir: c.Dir, Release: release}, err
	}
	if err := check(id, c); err != nil {
		return WorkTree{Release: func() {}}, err
	}
	mr := m.hold(id)
	n := m.takeTree(mr)
	wt := WorkTree{
		Dir:     filepath.Join(m.path(id), treesDir, strconv.Itoa(n)),
		Key:     "slipway-tree/" + id + "/" + strconv.Itoa(n),
		Release: func() { m.giveTree(mr, n); m.release(id) },
	}
	c.Dir = wt.Dir
	log := m.buildLog(build, c)
	err := m.repair(ctx, mr, id, log, func() error { return m.reuse(ctx, mr, id, log, c) })
	if err != nil {
		return wt, fmt.Errorf("clone %s: %w", c.URL, err)
	}
	m.evict()
	return wt, nil
}

// reuse fetches into the mirror and brings the tree c.Dir to c.Commit; a
// tree that cannot be brought there is checked out afresh.
func (m *Mirrors) reuse(ctx context.Context, mr *mirror, id string, log *slog.Logger, c Checkout) error {
	mr.fetch.Lock()
	err := m.fetch(ctx, m.path(id), c)
	mr.fetch.Unlock()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.Dir, ".git")); errors.Is(err, fs.ErrNotExist) {
		return m.fresh(ctx, id, c)
	}
	fmt.Fprintf(c.progress(), "updating the kept working tree %s\n", filepath.Base(c.Dir))
	err = m.move(ctx, c)
	if err == nil || isRemote(err) || ctx.Err() != nil {
		return err
	}
	log.Warn("working tree unusable; checking it out afresh", "tree", c.Dir, "err", err)
	return m.fresh(ctx, id, c)
}

// fresh makes c.Dir a new checkout borrowing the mirror's objects.
func (m *Mirrors) fresh(ctx context.Context, id string, c Checkout) error {
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("clear %s: %w", c.Dir, err)
	}
	if err := borrow(m.path(id), c); err != nil {
		return err
	}
	return m.checkout(ctx, c)
}

// move brings a tree from its last build's commit to c.Commit: whatever
// its index does not list goes first, then the checkout writes what the
// commits or someone's edits changed, and deletes what the commit does
// not have.
func (m *Mirrors) move(ctx context.Context, c Checkout) error {
	if err := point(c); err != nil {
		return err
	}
	if err := sweep(c.Dir); err != nil {
		return err
	}
	return m.checkout(ctx, c)
}

// sweep deletes from the checkout dir every file and directory its index
// does not list, untracked and ignored alike, and empties submodules'
// directories: the checkout then holds the index's files and nothing else.
func sweep(dir string) error {
	repo, err := openClone(dir)
	if err != nil {
		return err
	}
	idx, err := repo.Storer.Index()
	if err != nil {
		return fmt.Errorf("read index of %s: %w", dir, err)
	}
	files, dirs := map[string]bool{}, map[string]bool{}
	for _, e := range idx.Entries {
		if e.Mode == filemode.Submodule {
			dirs[e.Name] = true // kept, but empty: nothing inside is listed
		} else {
			files[e.Name] = true
		}
		for p := path.Dir(e.Name); p != "." && !dirs[p]; p = path.Dir(p) {
			dirs[p] = true
		}
	}
	// Within the root: a link in the tree never takes a removal outside.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("clean %s: %w", dir, err)
	}
	defer root.Close()
	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case rel == ".":
			return nil
		case rel == ".git":
			return fs.SkipDir
		case d.IsDir() && dirs[rel]:
			return nil
		case d.IsDir():
			if err := root.RemoveAll(rel); err != nil {
				return err
			}
			return fs.SkipDir
		case files[rel]:
			return nil
		}
		return root.Remove(rel)
	})
	if err != nil {
		return fmt.Errorf("clean %s: %w", dir, err)
	}
	return nil
}

// takeTree picks the lowest-numbered tree of mr no build holds.
func (m *Mirrors) takeTree(mr *mirror) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mr.trees == nil {
		mr.trees = map[int]bool{}
	}
	n := 0
	for mr.trees[n] {
		n++
	}
	mr.trees[n] = true
	return n
}

func (m *Mirrors) giveTree(mr *mirror, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(mr.trees, n)
}
