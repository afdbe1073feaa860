package main

import (
	"context"
	"crypto/subtle"
	"strings"

	"github.com/slipway-build/slipway/regauth"
)

// bootstrapAccess is a TEMPORARY regauth.Access until package access
// (organizations and API tokens) replaces it: the bootstrap API token
// (SLIPWAY_API_TOKEN or the data dir's api-token) logs in, under any user
// name, as the site admin; every other login is denied. Build passes are
// checked by regauth itself and come here only for repositories other than
// their own.
type bootstrapAccess struct {
	token string
}

func (a bootstrapAccess) Login(_ context.Context, user, secret string) (regauth.Account, error) {
	if a.token == "" || user == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(a.token)) != 1 {
		return regauth.Account{}, regauth.ErrDenied
	}
	return regauth.Account{Name: user, Site: true, Role: "admin"}, nil
}

func (a bootstrapAccess) Actions(_ context.Context, who regauth.Account, repository string) ([]string, error) {
	switch {
	case who.Site:
		return []string{regauth.Pull, regauth.Push, regauth.Delete}, nil
	// TEMPORARY: repositories under library/ are public (anonymous pull),
	// so that builds can pull base images kept there. The real rule is an
	// organization's own list of public repositories.
	case strings.HasPrefix(repository, "library/"):
		return []string{regauth.Pull}, nil
	}
	return nil, nil
}
