package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/slipway-build/slipway/outbound"
)

// Mirrors keeps one bare repository per Slipway repository under Dir, so
// that a build fetches only the commits that are new since the last one
// and checks out from local disk. A build's checkout borrows the mirror's
// objects (objects/info/alternates) for as long as the build holds it.
type Mirrors struct {
	Dir string
	// MaxBytes bounds the mirrors' total size: after a fetch, the least
	// recently used mirrors no build holds are deleted until they fit.
	MaxBytes int64
	// CLI checks out with the git command instead of go-git; it reads
	// only local disk.
	CLI bool
	// Guard, when set, makes the git command fetch http(s) remotes,
	// pinned to an address the guard allows; nil (and any ssh remote)
	// fetches with go-git, whose connections go through the guard
	// installed in its transport.
	Guard  *outbound.Guard
	Logger *slog.Logger

	mu    sync.Mutex
	state map[string]*mirror
}

type mirror struct {
	fetch sync.Mutex   // one fetch into a mirror at a time
	users int          // builds holding it: never evicted while > 0
	trees map[int]bool // working trees builds hold (Tree), by number
}

// Clone is source.Clone through the mirror of repository id: it fetches
// c.Commit into the mirror if it is not there yet, then checks it out in
// c.Dir. release lets the mirror go once the build no longer reads c.Dir's
// history (it must be called, also after an error).
func (m *Mirrors) Clone(ctx context.Context, id, build string, c Checkout) (release func(), err error) {
	if err := check(id, c); err != nil {
		return func() {}, err
	}
	mr := m.hold(id)
	release = func() { m.release(id) }
	err = m.repair(ctx, mr, id, m.buildLog(build, c), func() error { return m.update(ctx, mr, m.path(id), c) })
	if err != nil {
		return release, fmt.Errorf("clone %s: %w", c.URL, err)
	}
	m.evict()
	return release, nil
}

// check refuses what cannot be fetched or cannot name a mirror.
func check(id string, c Checkout) error {
	if err := checkRemote(c.URL); err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	if !isSHA(c.Commit) {
		return fmt.Errorf("clone %s: %q is not a full commit hash", c.URL, c.Commit)
	}
	if !validID(id) {
		return fmt.Errorf("clone %s: repository id %q cannot name a mirror", c.URL, id)
	}
	return nil
}

// repair runs update, which fetches into mirror id and checks out from
// it; when update fails for anything but the remote (a crash mid-write, a
// disk error: the mirror's own fault) the mirror is started over once. Its
// working trees are kept: other builds may be reading theirs.
func (m *Mirrors) repair(ctx context.Context, mr *mirror, id string, log *slog.Logger, update func() error) error {
	err := update()
	if err == nil || isRemote(err) || ctx.Err() != nil {
		return err
	}
	dir := m.path(id)
	log.Warn("mirror unreadable; deleting it and cloning again", "mirror", dir, "err", err)
	mr.fetch.Lock()
	rerr := clearMirror(dir)
	mr.fetch.Unlock()
	if rerr != nil {
		return fmt.Errorf("delete broken mirror: %w", rerr)
	}
	return update()
}

// clearMirror deletes the mirror's repository, all but its working trees.
func clearMirror(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == treesDir {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// update fetches into the mirror and checks out from it.
func (m *Mirrors) update(ctx context.Context, mr *mirror, dir string, c Checkout) error {
	mr.fetch.Lock()
	err := m.fetch(ctx, dir, c)
	mr.fetch.Unlock()
	if err != nil {
		return err
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("clear %s: %w", c.Dir, err)
	}
	if err := borrow(dir, c); err != nil {
		return err
	}
	// go-git resolves a relative submodule URL against the remote origin.
	if err := nameOrigin(c); err != nil {
		return err
	}
	return m.checkout(ctx, c)
}

// nameOrigin writes c.URL as the checkout's remote origin: only in a
// checkout made for one build, never in a kept tree.
func nameOrigin(c Checkout) error {
	repo, err := openClone(c.Dir)
	if err != nil {
		return err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{c.URL}}); err != nil {
		return fmt.Errorf("init %s: %w", c.Dir, err)
	}
	return nil
}

// checkout checks c.Commit out in c.Dir, a repository borrowing the
// mirror's objects, and fetches its submodules.
func (m *Mirrors) checkout(ctx context.Context, c Checkout) error {
	var err error
	if m.CLI {
		err = checkoutCLI(ctx, c)
	} else {
		err = checkoutGoGit(c)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.progress(), "checked out %s\n", c.Commit)
	wt, err := openWorktree(c.Dir)
	if err != nil {
		return err
	}
	// Submodules are fetched from their remotes into c.Dir, as without a
	// mirror: a submodule's failure is the remote's, not the mirror's.
	if err := submodules(ctx, wt, c); err != nil {
		return remoteError{err}
	}
	return nil
}

// remoteError is the remote failing (unreachable, refusing, missing the
// commit): no reason to distrust the mirror.
type remoteError struct{ err error }

func (e remoteError) Error() string { return e.err.Error() }
func (e remoteError) Unwrap() error { return e.err }

func isRemote(err error) bool {
	var r remoteError
	return errors.As(err, &r)
}

// fetch brings c.Commit into the bare mirror at dir: nothing when it
// is already there; otherwise the ref it was pushed to, with the mirror's
// refs as what the server need not send, and the commit by hash when the
// ref no longer leads to it. The remote exists only in memory: no URL, let
// alone a token, is written to the mirror's config.
func (m *Mirrors) fetch(ctx context.Context, dir string, c Checkout) error {
	repo, err := openMirror(dir)
	if err != nil {
		return err
	}
	if err := verify(repo); err != nil {
		return fmt.Errorf("mirror %s: %w", dir, err)
	}
	if has(repo, c.Commit) {
		fmt.Fprintf(c.progress(), "mirror already has %s\n", c.Commit)
		return touch(dir)
	}
	remote := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{c.URL}})
	get := func(spec string) error {
		if m.Guard != nil {
			err := fetchCLI(ctx, m.Guard, dir, c, spec)
			if !errors.Is(err, errNotCLI) {
				if err == nil {
					// go-git lists the packs once: see the new one.
					repo, err = openMirror(dir)
				}
				return err
			}
		}
		err := remote.FetchContext(ctx, &git.FetchOptions{
			RemoteName: "origin",
			RefSpecs:   []config.RefSpec{config.RefSpec(spec)},
			Auth:       c.Auth,
			Progress:   c.progress(),
			Tags:       git.NoTags,
		})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return remoteError{err}
		}
		return nil
	}
	fmt.Fprintf(c.progress(), "fetching %s at %s into the mirror\n", redact(c.URL), c.Commit)
	if c.Ref != "" {
		if err := get("+" + c.Ref + ":" + mirrorRef(c.Ref)); err != nil {
			return err
		}
	}
	if !has(repo, c.Commit) {
		err := get(c.Commit + ":refs/slipway/commits/" + c.Commit)
		if errors.Is(err, git.ErrExactSHA1NotSupported) || errors.Is(err, plumbing.ErrObjectNotFound) || !has(repo, c.Commit) {
			return remoteError{fmt.Errorf("commit %s is not on %s (was it force-pushed away?): %v", c.Commit, c.Ref, err)}
		}
		if err != nil {
			return err
		}
	}
	return touch(dir)
}

// mirrorRef keeps every fetched ref under refs/slipway/, so that no name a
// remote chooses can land on HEAD or the mirror's own refs.
func mirrorRef(ref string) string {
	return "refs/slipway/refs/" + strings.TrimPrefix(ref, "refs/")
}

func openMirror(dir string) (*git.Repository, error) {
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return nil, fmt.Errorf("mirror dir: %w", err)
		}
		repo, err = git.PlainInit(dir, true)
	}
	if err != nil {
		return nil, fmt.Errorf("open mirror %s: %w", dir, err)
	}
	return repo, nil
}

// verify reads the commit every ref of the mirror names: a mirror whose
// packs were damaged fails here instead of in the middle of a checkout.
func verify(repo *git.Repository) error {
	refs, err := repo.References()
	if err != nil {
		return fmt.Errorf("list refs: %w", err)
	}
	return refs.ForEach(func(r *plumbing.Reference) error {
		if r.Type() != plumbing.HashReference {
			return nil
		}
		if _, err := repo.CommitObject(r.Hash()); err != nil {
			return fmt.Errorf("%s: commit %s: %w", r.Name(), r.Hash(), err)
		}
		return nil
	})
}

func has(repo *git.Repository, sha string) bool {
	_, err := repo.CommitObject(plumbing.NewHash(sha))
	return err == nil
}

// touch records a use: the mirror directory's modification time is its
// place in the least-recently-used order, kept across restarts.
func touch(dir string) error {
	now := time.Now()
	if err := os.Chtimes(dir, now, now); err != nil {
		return fmt.Errorf("mark mirror used: %w", err)
	}
	return nil
}

// borrow makes c.Dir a repository whose objects are the mirror's, with
// refs/slipway/build at the commit. It names no remote: what reads its
// history later fetches from c.URL, held in memory.
func borrow(mirrorDir string, c Checkout) error {
	// Only Slipway reads a checkout: other users of the machine must not.
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("checkout dir: %w", err)
	}
	if _, err := git.PlainInit(c.Dir, false); err != nil {
		return fmt.Errorf("init %s: %w", c.Dir, err)
	}
	info := filepath.Join(c.Dir, ".git", "objects", "info")
	if err := os.MkdirAll(info, 0o700); err != nil {
		return fmt.Errorf("init %s: %w", c.Dir, err)
	}
	abs, err := filepath.Abs(filepath.Join(mirrorDir, "objects"))
	if err != nil {
		return fmt.Errorf("mirror path: %w", err)
	}
	if err := os.WriteFile(filepath.Join(info, "alternates"), []byte(abs+"\n"), 0o600); err != nil {
		return fmt.Errorf("init %s: %w", c.Dir, err)
	}
	return point(c)
}

// point sets refs/slipway/build of the checkout c.Dir to c.Commit.
func point(c Checkout) error {
	repo, err := openClone(c.Dir)
	if err != nil {
		return err
	}
	ref := plumbing.NewHashReference("refs/slipway/build", plumbing.NewHash(c.Commit))
	if err := repo.Storer.SetReference(ref); err != nil {
		return fmt.Errorf("set %s in %s: %w", ref.Name(), c.Dir, err)
	}
	return nil
}

// openClone opens a checkout. One that borrows a mirror's objects reads
// them through a storage of the mirror opened once (borrowed): go-git's
// own alternates support opens the mirror anew for every object it looks
// up, reading every pack index again (2.5 s for the 200 commits
// IsAncestor walks in a 200 MB mirror, growing with each fetch's pack).
func openClone(dir string) (*git.Repository, error) {
	own := filesystem.NewStorage(osfs.New(filepath.Join(dir, ".git")), cache.NewObjectLRUDefault())
	var st storage.Storer = own
	alt, err := os.ReadFile(filepath.Join(dir, ".git", "objects", "info", "alternates")) // #nosec G304 -- Slipway's own checkout
	switch {
	case err == nil:
		objects := strings.TrimSpace(string(alt))
		if strings.Contains(objects, "\n") || !filepath.IsAbs(objects) {
			return nil, fmt.Errorf("open clone %s: alternates %q is not one mirror", dir, objects)
		}
		mirror := filesystem.NewStorage(osfs.New(filepath.Dir(objects)), cache.NewObjectLRUDefault())
		st = borrowed{Storage: own, mirror: mirror}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open clone %s: %w", dir, err)
	}
	repo, err := git.Open(st, osfs.New(dir))
	if err != nil {
		return nil, fmt.Errorf("open clone %s: %w", dir, err)
	}
	return repo, nil
}

// borrowed is a checkout's storage that looks up what it does not hold in
// its mirror's.
type borrowed struct {
	*filesystem.Storage
	mirror *filesystem.Storage
}

func (b borrowed) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	o, err := b.Storage.EncodedObject(t, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return b.mirror.EncodedObject(t, h)
	}
	return o, err
}

func (b borrowed) HasEncodedObject(h plumbing.Hash) error {
	err := b.Storage.HasEncodedObject(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return b.mirror.HasEncodedObject(h)
	}
	return err
}

func (b borrowed) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	n, err := b.Storage.EncodedObjectSize(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return b.mirror.EncodedObjectSize(h)
	}
	return n, err
}

func openWorktree(dir string) (*git.Worktree, error) {
	repo, err := openClone(dir)
	if err != nil {
		return nil, err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, fmt.Errorf("worktree %s: %w", dir, err)
	}
	return wt, nil
}

func checkoutGoGit(c Checkout) error {
	wt, err := openWorktree(c.Dir)
	if err != nil {
		return err
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(c.Commit), Force: true}); err != nil {
		return fmt.Errorf("checkout %s: %w", c.Commit, err)
	}
	return nil
}

func (m *Mirrors) path(id string) string { return filepath.Join(m.Dir, id) }

// validID keeps a repository id one plain path element.
func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, `/\`) && filepath.Base(id) == id
}

func (m *Mirrors) hold(id string) *mirror {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == nil {
		m.state = map[string]*mirror{}
	}
	mr := m.state[id]
	if mr == nil {
		mr = &mirror{}
		m.state[id] = mr
	}
	mr.users++
	return mr
}

func (m *Mirrors) release(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mr := m.state[id]; mr != nil && mr.users > 0 {
		mr.users--
	}
}

// evict deletes the least recently used mirrors no build holds until the
// total fits MaxBytes.
func (m *Mirrors) evict() {
	m.mu.Lock()
	defer m.mu.Unlock()
	entries, err := os.ReadDir(m.Dir)
	if err != nil {
		m.logger().Warn("list mirrors for eviction", "err", err)
		return
	}
	type use struct {
		id   string
		size int64
		used time.Time
	}
	var all []use
	var total int64
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !e.IsDir() {
			continue
		}
		size := dirSize(filepath.Join(m.Dir, e.Name()))
		total += size
		all = append(all, use{id: e.Name(), size: size, used: info.ModTime()})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.Before(all[j].used) })
	for _, u := range all {
		if total <= m.MaxBytes {
			return
		}
		if mr := m.state[u.id]; mr != nil && mr.users > 0 {
			continue
		}
		if err := os.RemoveAll(m.path(u.id)); err != nil {
			m.logger().Warn("evict mirror", "mirror", u.id, "err", err)
			continue
		}
		delete(m.state, u.id)
		total -= u.size
		m.logger().Info("evicted least recently used mirror", "mirror", u.id, "bytes", u.size, "total", total, "max", m.MaxBytes)
	}
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// buildLog is where lines about build's checkout c go: c.Log, else the
// Mirrors' logger naming the build.
func (m *Mirrors) buildLog(build string, c Checkout) *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return m.logger().With("build", build)
}

func (m *Mirrors) logger() *slog.Logger {
	if m.Logger == nil {
		return slog.Default()
	}
	return m.Logger
}
