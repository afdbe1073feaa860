package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
)

// refIndex is the newest push of one ref and the builds it started.
type refIndex struct {
	Seq    int64    `json:"seq"`
	Commit string   `json:"commit"`
	Builds []string `json:"builds"`
}

func refKey(repoID, ref string) string {
	return "ref." + repoID + "." + hex.EncodeToString([]byte(ref))
}

// Superseded is what recording a push as its ref's newest made out of date.
type Superseded struct {
	// Builds are out of date: those of older pushes when the build
	// recorded is of the newest one, or that build itself when a newer
	// push was recorded first.
	Builds []string
	// By is the build of the newest push, which the others give way to.
	By string
}

// Supersede records b as the newest build of its ref and answers which
// builds that makes out of date. It cancels nothing itself: cancelling a
// queued build also queues its "cancelled" commit status, which is
// package queue's. Skipped builds are recorded too, so reconciliation knows
// their commit was seen.
func (s *Store) Supersede(ctx context.Context, b model.Build) (Superseded, error) {
	var out Superseded
	err := casKV(ctx, s.refs, refKey(b.RepoID, b.Ref), func(idx *refIndex) bool {
		out = Superseded{By: b.ID}
		switch {
		case b.Seq > idx.Seq:
			out.Builds = idx.Builds
			*idx = refIndex{Seq: b.Seq, Commit: b.Commit, Builds: []string{b.ID}}
		case b.Seq == idx.Seq:
			if !slices.Contains(idx.Builds, b.ID) {
				idx.Builds = append(idx.Builds, b.ID)
			}
		case len(idx.Builds) > 0:
			out = Superseded{Builds: []string{b.ID}, By: idx.Builds[0]}
		}
		return true
	})
	if err != nil {
		return Superseded{}, fmt.Errorf("supersede builds of %s: %w", b.Ref, err)
	}
	return out, nil
}

// TagOwner returns the build whose image a tag points at; ok is false when
// no build has claimed the tag.
func (s *Store) TagOwner(ctx context.Context, image, tag string) (TagOwner, bool, error) {
	o, err := s.tagOwner(ctx, tagKey(image, tag))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return TagOwner{}, false, nil
	}
	return o, err == nil, err
}

// MarkSeen records commit as the newest push of ref, building nothing, when
// Slipway has seen no push of it yet: a repository's branches as they were
// when it was registered, which reconciliation must not build.
func (s *Store) MarkSeen(ctx context.Context, repoID, ref, commit string, seq int64) error {
	err := casKV(ctx, s.refs, refKey(repoID, ref), func(idx *refIndex) bool {
		if idx.Seq != 0 {
			return false
		}
		*idx = refIndex{Seq: seq, Commit: commit}
		return true
	})
	if err != nil {
		return fmt.Errorf("record %s as seen: %w", ref, err)
	}
	return nil
}

func baselineKey(repoID string) string { return "baseline." + repoID }

// Baselined reports whether a repository's branch tips as of its
// registration have been recorded with MarkSeen.
func (s *Store) Baselined(ctx context.Context, repoID string) (bool, error) {
	_, err := s.refs.Get(ctx, baselineKey(repoID))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read baseline of repo %s: %w", repoID, err)
	}
	return true, nil
}

// SetBaselined records that a repository's tips at registration are seen.
func (s *Store) SetBaselined(ctx context.Context, repoID string) error {
	if _, err := s.refs.Put(ctx, baselineKey(repoID), []byte(nowUTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("record baseline of repo %s: %w", repoID, err)
	}
	return nil
}

// Newest is the commit of the newest push of a ref and the builds it
// started; "" and none when Slipway has seen no push of it.
func (s *Store) Newest(ctx context.Context, repoID, ref string) (string, []string, error) {
	e, err := s.refs.Get(ctx, refKey(repoID, ref))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("read newest push of %s: %w", ref, err)
	}
	var idx refIndex
	if err := json.Unmarshal(e.Value(), &idx); err != nil {
		return "", nil, fmt.Errorf("decode newest push of %s: %w", ref, err)
	}
	return idx.Commit, idx.Builds, nil
}

// LastCommit is the commit of the newest push to a ref Slipway has seen,
// "" when none.
func (s *Store) LastCommit(ctx context.Context, repoID, ref string) (string, error) {
	e, err := s.refs.Get(ctx, refKey(repoID, ref))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read newest push of %s: %w", ref, err)
	}
	var idx refIndex
	if err := json.Unmarshal(e.Value(), &idx); err != nil {
		return "", fmt.Errorf("decode newest push of %s: %w", ref, err)
	}
	return idx.Commit, nil
}

// Cancel records that a build is to stop: a queued one ends cancelled
// now, a running one is asked to stop and its worker ends it. It answers
// the build as stored after, and whether it was still active; a missing
// build is ErrNotFound.
func (s *Store) Cancel(ctx context.Context, id, reason, by string) (model.Build, bool, error) {
	active := false
	b, err := s.UpdateBuild(ctx, id, func(b *model.Build) error {
		active = !model.Terminal(b.Status)
		if !active {
			return nil
		}
		b.Reason, b.SupersededBy = reason, by
		if b.Status == model.StatusQueued {
			now := nowUTC()
			b.Status, b.FinishedAt = model.StatusCancelled, &now
			return nil
		}
		b.CancelRequested = true
		return nil
	})
	return b, active, err
}

// TagOwner is the build whose image a tag points at.
type TagOwner struct {
	Seq     int64  `json:"seq"`
	BuildID string `json:"build_id"`
	Digest  string `json:"digest"`
}

func tagKey(image, tag string) string {
	return "tag." + hex.EncodeToString([]byte(image+":"+tag))
}

// ClaimTag points tag at digest unless a build of a newer push owns it, so
// a slow old build never moves a tag backwards. put writes a digest under
// the tag in the registry. The claim is recorded before the write; if a
// newer build claimed the tag meanwhile, its digest is written again, so
// the registry ends at the newest push whatever the interleaving.
func (s *Store) ClaimTag(ctx context.Context, image, tag string, b model.Build, digest string, put func(digest string) error) (bool, error) {
	key := tagKey(image, tag)
	mine := TagOwner{Seq: b.Seq, BuildID: b.ID, Digest: digest}
	newer := false
	err := casKV(ctx, s.refs, key, func(cur *TagOwner) bool {
		if newer = cur.Seq > b.Seq; newer {
			return false
		}
		*cur = mine
		return true
	})
	if err != nil || newer {
		return false, err
	}
	if err := put(digest); err != nil {
		return false, err
	}
	owner, err := s.tagOwner(ctx, key)
	if err != nil {
		return true, err
	}
	if owner != mine {
		return false, put(owner.Digest)
	}
	return true, nil
}

func (s *Store) tagOwner(ctx context.Context, key string) (TagOwner, error) {
	var o TagOwner
	e, err := s.refs.Get(ctx, key)
	if err != nil {
		return o, fmt.Errorf("read tag owner: %w", err)
	}
	return o, json.Unmarshal(e.Value(), &o)
}

var errLostRace = errors.New("lost compare-and-set race")

// putCAS writes v at revision rev (0: create); errLostRace means someone
// wrote first.
func putCAS(ctx context.Context, kv jetstream.KeyValue, key string, v any, rev uint64) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = kv.Create(ctx, key, raw)
	} else {
		_, err = kv.Update(ctx, key, raw, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return errLostRace
	}
	return err
}

// casKV applies change to the JSON value at key under compare-and-set,
// starting from the zero value when the key is missing. change returns
// false to leave the value as it is.
func casKV[T any](ctx context.Context, kv jetstream.KeyValue, key string, change func(*T) bool) error {
	for {
		var v T
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("read %s: %w", key, err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
		}
		if !change(&v) {
			return nil
		}
		if err := putCAS(ctx, kv, key, v, rev); !errors.Is(err, errLostRace) {
			return err
		}
	}
}
