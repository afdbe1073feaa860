package regauth

import (
	"context"
	"crypto/subtle"
	"slices"
	"strings"
)

// staticAccess is a test double of Slipway's own access rules (package
// access): a table of API tokens and an organization's public
// repositories. read pulls in its org, write pushes too, admin deletes
// too; Site does everything; anyone pulls a public repository.
type staticAccess struct {
	tokens map[string]Account // secret → account
	public []string
}

func (a staticAccess) Login(_ context.Context, user, secret string) (Account, error) {
	for tok, who := range a.tokens {
		if who.Name == user && subtle.ConstantTimeCompare([]byte(tok), []byte(secret)) == 1 {
			return who, nil
		}
	}
	return Account{}, ErrDenied
}

var roleActions = map[string][]string{
	"read":  {Pull},
	"write": {Pull, Push},
	"admin": {Pull, Push, Delete},
}

func (a staticAccess) Actions(_ context.Context, who Account, repository string) ([]string, error) {
	switch {
	case who.Site:
		return []string{Pull, Push, Delete}, nil
	case who.Org != "" && strings.HasPrefix(repository, who.Org+"/"):
		return roleActions[who.Role], nil
	case slices.Contains(a.public, repository):
		return []string{Pull}, nil
	}
	return nil, nil
}
