package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
)

// repoCacheSize bounds the repositories a RepoCache holds; when full it
// starts again empty.
const repoCacheSize = 10000

// RepoCache answers FindRepo from memory: a webhook's repository lookup is
// otherwise two reads from NATS and the opening of its sealed secrets. It
// watches the repositories bucket and forgets everything on any change,
// from this process or another, so a record is stale only between a write
// and its watch event reaching this process (well under a millisecond on
// one machine); FindRepoFresh reads past it, for a signature that does not
// verify against a possibly older secret.
type RepoCache struct {
	s  *Store
	mu sync.Mutex
	// gen counts changes seen: a lookup that started before one does not
	// keep what it read.
	gen    uint64
	live   bool // the watch runs; without it nothing is kept
	byName map[string]model.Repo
}

// WatchRepos starts a RepoCache whose watch lasts as long as ctx.
func (s *Store) WatchRepos(ctx context.Context) (*RepoCache, error) {
	w, err := s.repos.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return nil, fmt.Errorf("watch bucket %s: %w", reposBucket, err)
	}
	c := &RepoCache{s: s, live: true, byName: map[string]model.Repo{}}
	go c.follow(w)
	return c, nil
}

// follow forgets everything on each change; when the watch ends (ctx
// done, connection closed) the cache stops keeping anything.
func (c *RepoCache) follow(w jetstream.KeyWatcher) {
	for range w.Updates() {
		c.forget()
	}
	c.mu.Lock()
	c.live = false
	c.mu.Unlock()
	c.forget()
}

func (c *RepoCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.byName)
}

// FindRepo answers the repository a webhook names, from memory when it
// can. Its Rules and Hooks are shared with the cache: callers read them.
func (c *RepoCache) FindRepo(ctx context.Context, provider, fullName string) (model.Repo, error) {
	key := nameKey(provider, fullName)
	c.mu.Lock()
	r, ok := c.byName[key]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := c.s.FindRepo(ctx, provider, fullName)
	if err != nil {
		return r, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live && c.gen == gen {
		if len(c.byName) >= repoCacheSize {
			clear(c.byName)
		}
		c.byName[key] = r
	}
	return r, nil
}

// FindRepoFresh reads the repository from NATS, and keeps nothing.
func (c *RepoCache) FindRepoFresh(ctx context.Context, provider, fullName string) (model.Repo, error) {
	return c.s.FindRepo(ctx, provider, fullName)
}

// UpdateRepo changes the stored repository, and forgets the cached one at
// once rather than when the watch tells.
func (c *RepoCache) UpdateRepo(ctx context.Context, id string, change func(*model.Repo) error) (model.Repo, error) {
	defer c.forget()
	return c.s.UpdateRepo(ctx, id, change)
}
