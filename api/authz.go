package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/model"
)

// Tokens authenticate requests and keep API tokens (package access).
type Tokens interface {
	Authenticate(ctx context.Context, token string) (access.Principal, error)
	IssueToken(ctx context.Context, by access.Principal, req access.TokenRequest) (access.Token, string, error)
	GetToken(ctx context.Context, id string) (access.Token, error)
	ListTokens(ctx context.Context, org string) ([]access.Token, error)
	RevokeToken(ctx context.Context, id string) (access.Token, error)
}

// Orgs keep organizations and their teams (package access).
type Orgs interface {
	CreateOrg(ctx context.Context, name string, owners []string) (access.Org, error)
	GetOrg(ctx context.Context, name string) (access.Org, error)
	ListOrgs(ctx context.Context) ([]access.Org, error)
	UpdateOrg(ctx context.Context, name string, change func(*access.Org) error) (access.Org, error)
}

type principalKey struct{}

// caller is who sent r; auth put it there.
func caller(r *http.Request) access.Principal {
	p, _ := r.Context().Value(principalKey{}).(access.Principal)
	return p
}

// auth answers 401 unless the request carries a live token, and hands the
// token's principal to next.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || got == "" {
			unauthorized(w, "missing API token: send 'Authorization: Bearer <token>'")
			return
		}
		p, err := s.Tokens.Authenticate(r.Context(), got)
		if errors.Is(err, access.ErrUnauthenticated) {
			unauthorized(w, "unknown, revoked or expired API token")
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
	writeError(w, http.StatusUnauthorized, msg)
}

// allow checks the caller's role in org: 404 when it has none there (so
// that another organization's records are not even shown to exist), 403
// when it has less than need.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, org string, need access.Role) bool {
	have := caller(r).RoleIn(org)
	switch {
	case have.Includes(need):
		return true
	case have == access.None:
		writeError(w, http.StatusNotFound, "not found")
	default:
		writeError(w, http.StatusForbidden, "forbidden: this needs the "+string(need)+" role in "+org+", your token has "+string(have))
	}
	return false
}

// sees reports whether the caller may read org's records.
func sees(r *http.Request, org string) bool { return caller(r).RoleIn(org).Includes(access.Read) }

// repo is the repository {id} when the caller has need in its organization.
func (s *Server) repo(w http.ResponseWriter, r *http.Request, need access.Role) (model.Repo, bool) {
	repo, err := s.Repos.GetRepo(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return model.Repo{}, false
	}
	return repo, s.allow(w, r, repo.Organization(), need)
}

// build is the build {id} when the caller has need in its organization.
func (s *Server) build(w http.ResponseWriter, r *http.Request, need access.Role) (model.Build, bool) {
	b, err := s.Builds.GetBuild(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return model.Build{}, false
	}
	org, err := s.buildOrg(r.Context(), b)
	if err != nil {
		s.fail(w, r, err)
		return model.Build{}, false
	}
	return b, s.allow(w, r, org, need)
}

// buildOrg is the organization of b: recorded on the build, or, for builds
// made before organizations, its repository's. A build whose repository is
// gone and that names none is the bootstrap admin's alone.
func (s *Server) buildOrg(ctx context.Context, b model.Build) (string, error) {
	if b.Org != "" {
		return b.Org, nil
	}
	repo, err := s.Repos.GetRepo(ctx, b.RepoID)
	if s.NotFound != nil && s.NotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return repo.Organization(), nil
}
