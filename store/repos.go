package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// openRepos creates (or finds) the repositories bucket.
//
// Why not CreateOrUpdateKeyValue: a KV bucket's stream denies message
// deletes, and the file store never overwrites a removed message's bytes
// except on a secure delete. A KV Delete only adds a marker; a Purge marks
// the older messages deleted, but their bytes stay in the block file until
// the block is compacted, which never happens to the block being written
// (nats-server v2.15 filestore: removeMsg erases only when secure, and
// compaction skips the last block). So a deleted repository's sealed
// secrets would stay on disk for as long as the bucket is small. The
// bucket is therefore made here as the same stream a KV bucket is, with
// deletes allowed. A stream an older Slipway made keeps denying them (NATS
// cannot undo deny_delete); there rollBlock gets the bytes out instead.
func (s *Store) openRepos(ctx context.Context, replicas int) error {
	name := "KV_" + reposBucket
	st, err := s.js.Stream(ctx, name)
	switch {
	case err == nil && st.CachedInfo().Config.DenyDelete:
		if s.repos, err = bucket(ctx, s.js, reposBucket, replicas); err != nil {
			return err
		}
		s.logger.Warn("the repositories bucket was made by an older Slipway and denies erasing: deleted repositories' sealed secrets stay in NATS's files until it compacts them", "stream", name)
	case err == nil || errors.Is(err, jetstream.ErrStreamNotFound):
		if st, err = s.js.CreateOrUpdateStream(ctx, reposStreamConfig(replicas)); err != nil {
			return fmt.Errorf("create bucket %s: %w", reposBucket, err)
		}
		s.erase = !st.CachedInfo().Config.DenyDelete
		if s.repos, err = s.js.KeyValue(ctx, reposBucket); err != nil {
			return fmt.Errorf("open bucket %s: %w", reposBucket, err)
		}
	default:
		return fmt.Errorf("find bucket %s: %w", reposBucket, err)
	}
	s.reposStream = st
	return nil
}

// reposStreamConfig is what CreateOrUpdateKeyValue makes for a bucket
// with History 1 (nats.go v1.55 prepareKeyValueConfig), deletes allowed.
func reposStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + reposBucket,
		Subjects:          []string{"$KV." + reposBucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		AllowRollup:       true,
		DenyDelete:        false,
		AllowDirect:       true,
		Discard:           jetstream.DiscardNew,
		Duplicates:        2 * time.Minute,
	}
}

// Padding that fills the block being written: nats-server v2.15 writes KV
// streams in 4 MiB blocks. Chunks stay under the 1 MiB default payload limit.
const (
	padKey   = "pad"
	padChunk = 64 << 10
	padTotal = 4<<20 + 512<<10
)

// rollBlock makes the file store close the block it is writing, on a
// stream that denies message deletes (see openRepos): it fills the block
// with padding under a key of its own and purges it. The file store then
// rewrites the closed block without its removed messages (a block it no
// longer writes to is compacted once less than half of it is live), so
// the bytes of purged or overwritten records leave the disk. On a server
// with larger blocks the bytes stay until the block fills up, as before.
func (s *Store) rollBlock(ctx context.Context) error {
	pad := make([]byte, padChunk)
	for written := 0; written < padTotal; written += padChunk {
		if _, err := s.repos.Put(ctx, padKey, pad); err != nil {
			return fmt.Errorf("roll the repos bucket's block: %w", err)
		}
	}
	if err := s.repos.Purge(ctx, padKey); err != nil {
		return fmt.Errorf("roll the repos bucket's block: %w", err)
	}
	return nil
}
