// Package regauth is the token server of Slipway's embedded registry: it
// answers the Docker registry token-auth scheme at /v2/token, signing short
// JWTs that the registry (distribution's "token" access controller) trusts,
// and mints build passes, the credentials a build pushes its own image with.
//
// Who may do what is not decided here: Access answers it (package access
// implements it with organizations and API tokens).
package regauth

import (
	"context"
	"errors"
)

// Account is who asks the registry for a token.
type Account struct {
	Name string // "" is anonymous
	Org  string // the organization the credentials are scoped to; "" with Site
	Role string // "read", "write" or "admin" in Org
	Site bool   // the bootstrap admin: every action on every repository
	// Push is the one repository (path such as acme/app) a build's pass may push to.
	Push string
	// Delete lets a pass delete in its Push repository as well (a closed
	// pull request's tags).
	Delete bool
	// Pull is the one repository a read pass may pull from, and all it
	// may do.
	Pull string
	// Browse is the API's browse pass: it lists the registry's catalog
	// and pulls every repository, and never pushes or deletes.
	Browse bool
}

// Access answers who a login is and what it may do (package access implements it).
type Access interface {
	// Login checks a user name and secret (a Slipway API token); a wrong one is ErrDenied.
	Login(ctx context.Context, user, secret string) (Account, error)
	// Actions are what who may do on repository ("acme/app"): a subset of pull, push, delete.
	// The zero Account is anonymous (pull on public repositories only).
	Actions(ctx context.Context, who Account, repository string) ([]string, error)
}

// ErrDenied is a login with a wrong user name or secret.
var ErrDenied = errors.New("regauth: access denied")

// The actions of the registry's repository scopes.
const (
	Pull   = "pull"
	Push   = "push"
	Delete = "delete"
)
