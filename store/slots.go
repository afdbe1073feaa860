package store

import (
	"context"
	"fmt"
	"slices"

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
	admitted := false
	err := casKV(ctx, s.refs, slotsKey(repoID), func(holders *[]string) bool {
		live := []string{buildID}
		for _, id := range *holders {
			if id == buildID {
				continue
			}
			if b, err := s.GetBuild(ctx, id); err == nil && !model.Terminal(b.Status) {
				live = append(live, id)
			}
		}
		if admitted = len(live) <= limit; admitted {
			*holders = live
		}
		return admitted
	})
	if err != nil {
		return false, fmt.Errorf("take build slot of %s: %w", repoID, err)
	}
	return admitted, nil
}

// ReleaseSlot gives a build's slot back.
func (s *Store) ReleaseSlot(ctx context.Context, repoID, buildID string) error {
	return casKV(ctx, s.refs, slotsKey(repoID), func(holders *[]string) bool {
		left := slices.DeleteFunc(slices.Clone(*holders), func(id string) bool { return id == buildID })
		if len(left) == len(*holders) {
			return false
		}
		*holders = left
		return true
	})
}
