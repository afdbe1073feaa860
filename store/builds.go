package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
)

// The build index lists each repository's builds without reading the
// others': one key per build, repo.<repository>.<newest-first time>.<id>,
// in its own bucket so that a build's record stays at its id (GetBuild,
// UpdateBuild). Listing a repository's keys is a subject filter, so it
// costs what that repository has, not what the store holds, and the keys
// sort newest first. An entry never changes: a build's repository and
// creation time are fixed when it is made.

// indexedMark records that every build written before the index existed
// has its entry (indexOldBuilds).
const indexedMark = "indexed.v1"

// repoPrefix is the filter of one repository's entries; hex keeps any
// repository id a legal key token.
func repoPrefix(repoID string) string {
	return "repo." + hex.EncodeToString([]byte(repoID)) + "."
}

// indexKey is b's entry.
func indexKey(b model.Build) string {
	return repoPrefix(b.RepoID) + orderOf(b)
}

// orderOf is the part of b's entry that sorts: later creation first, then
// the id, so equal times still have one order.
func orderOf(b model.Build) string {
	var ns int64 // before 1970 (a zero time), where UnixNano is undefined
	if b.CreatedAt.After(time.Unix(0, 0)) {
		ns = b.CreatedAt.UnixNano()
	}
	return fmt.Sprintf("%016x.%s", uint64(math.MaxInt64-ns), b.ID)
}

// order is the sorting part of an entry key: what follows repo.<id>. It
// slices rather than splits: sorting 100,000 keys calls it millions of
// times, and splitting allocated most of the time it took (pprof).
func order(key string) string {
	_, rest, _ := strings.Cut(key, ".")
	_, rest, _ = strings.Cut(rest, ".")
	return rest
}

// index writes b's entry. Entries never change, so a second writer finding
// it made is fine.
func (s *Store) index(ctx context.Context, b model.Build) error {
	if _, err := s.buildIndex.Create(ctx, indexKey(b), []byte(b.ID)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("index build %s: %w", b.ID, err)
	}
	return nil
}

// indexExisting is CreateBuild's answer to finding b's id stored already:
// it writes the stored build's entry, repairing one that the first
// writer's process died before writing, and removes the entry just written
// for b when b's creation time differs from the stored one's (a replayed
// webhook). Should that removal fail, the list still skips the entry (it
// is not its build's own), so the failure is only logged.
func (s *Store) indexExisting(ctx context.Context, b model.Build) error {
	stored, err := s.GetBuild(ctx, b.ID)
	if err != nil {
		return fmt.Errorf("index build %s: %w", b.ID, err)
	}
	if err := s.index(ctx, stored); err != nil {
		return err
	}
	if stray := indexKey(b); stray != indexKey(stored) {
		if err := s.buildIndex.Delete(ctx, stray); err != nil {
			s.logger.Warn("a replayed build's second index entry stays; the list skips it", "build", b.ID, "err", err)
		}
	}
	return nil
}

// indexOldBuilds gives every build an entry once, when the index is new:
// builds written by a Slipway without it have none. Running it twice, or
// in two processes at once, writes nothing twice.
func (s *Store) indexOldBuilds(ctx context.Context) error {
	_, err := s.buildIndex.Get(ctx, indexedMark)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("read %s/%s: %w", buildIndexBucket, indexedMark, err)
	}
	start, n := time.Now(), 0
	err = eachJSON(ctx, s.builds, ">", func(raw []byte) error {
		var b model.Build
		if err := json.Unmarshal(raw, &b); err != nil {
			return err
		}
		n++
		return s.index(ctx, b)
	})
	if err != nil {
		return fmt.Errorf("index the stored builds: %w", err)
	}
	if _, err := s.buildIndex.Put(ctx, indexedMark, []byte(nowUTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("mark the builds indexed: %w", err)
	}
	if n > 0 {
		s.logger.Info("indexed the builds of an older Slipway", "builds", n, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// QueryBuilds lists the builds q picks. It reads the entries of q's
// repository, then only the builds it lists and the ones a status filter
// or Keep passed over.
func (s *Store) QueryBuilds(ctx context.Context, q model.BuildQuery) (model.BuildPage, error) {
	filter := "repo.>"
	if q.RepoID != "" {
		filter = repoPrefix(q.RepoID) + ">"
	}
	keys, err := s.indexKeys(ctx, filter)
	if err != nil {
		return model.BuildPage{}, err
	}
	if q.Before != "" {
		before, err := s.GetBuild(ctx, q.Before)
		if err != nil {
			return model.BuildPage{}, fmt.Errorf("before build %s: %w", q.Before, err)
		}
		cut := orderOf(before)
		i, _ := slices.BinarySearchFunc(keys, cut, func(k, cut string) int { return strings.Compare(order(k), cut) })
		for i < len(keys) && order(keys[i]) <= cut {
			i++
		}
		keys = keys[i:]
	}
	var page model.BuildPage
	for _, k := range keys {
		if q.Limit > 0 && len(page.Builds) == q.Limit {
			page.More = true
			break
		}
		b, err := s.GetBuild(ctx, idOf(k))
		if errors.Is(err, ErrNotFound) {
			continue // an entry whose build was never written
		}
		if err != nil {
			return model.BuildPage{}, err
		}
		if indexKey(b) != k {
			continue // written by a replay of a stored build (indexExisting)
		}
		if q.Status != "" && b.Status != q.Status {
			continue
		}
		if q.Keep != nil {
			keep, err := q.Keep(b)
			if err != nil {
				return model.BuildPage{}, err
			}
			if !keep {
				continue
			}
		}
		page.Builds = append(page.Builds, b)
	}
	return page, nil
}

// idOf is the build id an entry key ends with.
func idOf(key string) string {
	parts := strings.SplitN(key, ".", 4)
	return parts[len(parts)-1]
}

// indexKeys are the entries matching filter, newest first.
func (s *Store) indexKeys(ctx context.Context, filter string) ([]string, error) {
	lister, err := s.buildIndex.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", buildIndexBucket, err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return strings.Compare(order(a), order(b)) })
	return keys, nil
}

// ListBuilds returns the builds of a repository (all when repoID is
// empty), newest first.
func (s *Store) ListBuilds(ctx context.Context, repoID string) ([]model.Build, error) {
	page, err := s.QueryBuilds(ctx, model.BuildQuery{RepoID: repoID})
	return page.Builds, err
}
