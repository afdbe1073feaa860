package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/store"
)

// adopt brings repositories an older Slipway registered under the rules
// of organizations: each claims its image, and each owner of a full name
// becomes an organization (without admins: the bootstrap admin names
// them). It is idempotent, so every process may run it at start.
func adopt(ctx context.Context, st *store.Store, dir *access.Directory, logger *slog.Logger) error {
	repos, err := st.ListRepos(ctx)
	if err != nil {
		return err
	}
	n, err := st.ClaimImages(ctx, repos)
	if err != nil {
		return fmt.Errorf("claim the images of existing repositories: %w", err)
	}
	// Every process runs this at start: only missing organizations are
	// written, so a restart reads and writes nothing per repository.
	known, err := orgNames(ctx, dir)
	if err != nil {
		return err
	}
	made := 0
	for _, r := range repos {
		org := r.Organization()
		if known[org] {
			continue
		}
		if access.ValidOrg(org) != nil {
			logger.Warn("a repository's owner is no organization name; only the bootstrap admin sees it", "repo", r.ID, "full_name", r.FullName)
			continue
		}
		known[org] = true
		if _, err := dir.CreateOrg(ctx, org, nil); err == nil {
			made++
		} else if !errors.Is(err, access.ErrExists) {
			return fmt.Errorf("organization of %s: %w", r.FullName, err)
		}
	}
	if n > 0 || made > 0 {
		logger.Info("existing repositories adopted into organizations", "images_claimed", n, "organizations_made", made)
	}
	return nil
}

func orgNames(ctx context.Context, dir *access.Directory) (map[string]bool, error) {
	orgs, err := dir.ListOrgs(ctx)
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool, len(orgs))
	for _, o := range orgs {
		known[o.Name] = true
	}
	return known, nil
}
