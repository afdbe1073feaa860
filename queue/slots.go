package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
)

func slotsKey(repoID string) string { return "slots." + repoID }

// AcquireSlot admits a build of a repository when fewer than limit of its
// builds run, across every worker process. Entries of builds that have
// finished are dropped, so a worker that died never holds a slot for good.
func (s *Store) AcquireSlot(ctx context.Context, repoID, buildID string, limit int) (bool, error) {
	if limit <= 0 {
		return true, nil
	}
	key := slotsKey(repoID)
	for {
		holders, rev, err := s.slots(ctx, key)
		if err != nil {
			return false, err
		}
		live := []string{buildID}
		for _, id := range holders {
			if id == buildID {
				continue
			}
			if b, err := s.GetBuild(ctx, id); err == nil && !model.Terminal(b.Status) {
				live = append(live, id)
			}
		}
		if len(live) > limit {
			return false, nil
		}
		if err := s.putCAS(ctx, s.refs, key, live, rev); !errors.Is(err, errLostRace) {
			if err != nil {
				return false, fmt.Errorf("take build slot of %s: %w", repoID, err)
			}
			return true, nil
		}
	}
}

// ReleaseSlot gives a build's slot back.
func (s *Store) ReleaseSlot(ctx context.Context, repoID, buildID string) error {
	key := slotsKey(repoID)
	for {
		holders, rev, err := s.slots(ctx, key)
		if err != nil || rev == 0 {
			return err
		}
		var left []string
		for _, id := range holders {
			if id != buildID {
				left = append(left, id)
			}
		}
		if len(left) == len(holders) {
			return nil
		}
		if err := s.putCAS(ctx, s.refs, key, left, rev); !errors.Is(err, errLostRace) {
			return err
		}
	}
}

func (s *Store) slots(ctx context.Context, key string) ([]string, uint64, error) {
	e, err := s.refs.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read build slots: %w", err)
	}
	var ids []string
	if err := json.Unmarshal(e.Value(), &ids); err != nil {
		return nil, 0, fmt.Errorf("decode build slots: %w", err)
	}
	return ids, e.Revision(), nil
}
