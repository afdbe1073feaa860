package api

import (
	"net/http"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/model"
)

// repoPatch changes a repository's rules, deploy hooks or visibility;
// fields left out stay as they are.
type repoPatch struct {
	Rules *[]model.Rule `json:"rules"`
	Hooks *[]model.Hook `json:"hooks"`
	// Public needs the admin role; rules and hooks need write.
	Public *bool `json:"public"`
}

func (s *Server) patchRepo(w http.ResponseWriter, r *http.Request) {
	var req repoPatch
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	need := access.Write
	if req.Public != nil {
		need = access.Admin
	}
	repo, ok := s.repo(w, r, need)
	if !ok {
		return
	}
	req.apply(&repo)
	if err := s.validateRepo(repo); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkTargets(r.Context(), repo); err != nil {
		s.fail(w, r, err)
		return
	}
	repo, err := s.Repos.UpdateRepo(r.Context(), repo.ID, func(stored *model.Repo) error {
		req.apply(stored)
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.logger().Info("repository changed", "repo", repo.ID, "rules", req.Rules != nil, "hooks", req.Hooks != nil,
		"public", repo.PublicImage, "by", caller(r).Account)
	writeJSON(w, http.StatusOK, repo.Public())
}

func (p repoPatch) apply(repo *model.Repo) {
	if p.Rules != nil {
		repo.Rules = *p.Rules
	}
	if p.Hooks != nil {
		repo.Hooks = *p.Hooks
	}
	if p.Public != nil {
		repo.PublicImage = *p.Public
	}
}
