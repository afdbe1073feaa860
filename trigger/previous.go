package trigger

import (
	"context"
	"errors"
	"fmt"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/rules"
)

// Querier lists a repository's builds, newest first (package store).
type Querier interface {
	QueryBuilds(ctx context.Context, q model.BuildQuery) (model.BuildPage, error)
}

// previousScan bounds how many older builds Previous reads: a repository
// with thousands of builds of other rules since must not make an image
// page, or the end of a build, read them all.
const previousScan = 500

// errScanned stops the scan at previousScan.
var errScanned = errors.New("scanned enough builds")

// Previous is the build an image is compared with: the newest build of
// b's repository made before b, of the same rule (rules.SameRule), that
// succeeded and pushed an image. ok is false when there is none among the
// previousScan builds before b.
func Previous(ctx context.Context, q Querier, b model.Build) (prev model.Build, ok bool, err error) {
	read := 0
	page, err := q.QueryBuilds(ctx, model.BuildQuery{RepoID: b.RepoID, Before: b.ID, Limit: 1, Keep: func(o model.Build) (bool, error) {
		if read++; read > previousScan {
			return false, errScanned
		}
		return o.Pushed() && rules.SameRule(o.Rule, b.Rule), nil
	}})
	switch {
	case errors.Is(err, errScanned):
		return model.Build{}, false, nil
	case err != nil:
		return model.Build{}, false, fmt.Errorf("previous build of %s: %w", b.ID, err)
	case len(page.Builds) == 0:
		return model.Build{}, false, nil
	}
	return page.Builds[0], true, nil
}
