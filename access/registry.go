package access

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/regauth"
)

// ImageOwners finds the repository that pushes an image (package store).
type ImageOwners interface {
	RepoByImage(ctx context.Context, image string) (model.Repo, error)
}

// Registry is who may do what in the embedded registry (regauth.Access):
// a Slipway token is the password of `docker login`; read pulls the
// organization's images, admin also pushes and deletes; anyone pulls the
// images an organization made public.
type Registry struct {
	Dir    *Directory
	Repos  ImageOwners
	Host   string // the embedded registry's host:port, as images name it
	IsGone func(error) bool
}

// Login checks a user name and a Slipway token. The user name must be the
// token's account (any name for the bootstrap admin), so that a leaked
// token is not enough without knowing whose it is.
func (g Registry) Login(ctx context.Context, user, secret string) (regauth.Account, error) {
	p, err := g.Dir.Authenticate(ctx, secret)
	if errors.Is(err, ErrUnauthenticated) {
		return regauth.Account{}, regauth.ErrDenied
	}
	if err != nil {
		return regauth.Account{}, err
	}
	if p.Site {
		return regauth.Account{Name: user, Site: true, Role: string(Admin)}, nil
	}
	if user != p.Account || p.Role == None {
		return regauth.Account{}, regauth.ErrDenied
	}
	return regauth.Account{Name: p.Account, Org: p.Org, Role: string(p.Role)}, nil
}

// Actions are what who may do on repository (acme/app).
func (g Registry) Actions(ctx context.Context, who regauth.Account, repository string) ([]string, error) {
	if who.Site {
		return []string{regauth.Pull, regauth.Push, regauth.Delete}, nil
	}
	org, _, _ := strings.Cut(repository, "/")
	if who.Org != "" && who.Org == org {
		switch Role(who.Role) {
		case Admin:
			return []string{regauth.Pull, regauth.Push, regauth.Delete}, nil
		case Read, Write:
			return []string{regauth.Pull}, nil
		}
	}
	public, err := g.public(ctx, org, repository)
	if err != nil || !public {
		return nil, err
	}
	return []string{regauth.Pull}, nil
}

// public reports whether anyone may pull repository: the organization
// lists it, or the Slipway repository pushing it is public.
func (g Registry) public(ctx context.Context, org, repository string) (bool, error) {
	o, err := g.Dir.GetOrg(ctx, org)
	switch {
	case err == nil && o.IsPublic(repository):
		return true, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return false, err
	}
	r, err := g.Repos.RepoByImage(ctx, g.Host+"/"+repository)
	if err != nil {
		if g.IsGone != nil && g.IsGone(err) {
			return false, nil
		}
		return false, fmt.Errorf("who pushes %s: %w", repository, err)
	}
	return r.PublicImage, nil
}
