package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/rules"
)

// s0 is a fixed time for checking that a hook secret can sign.
var s0 = time.Unix(0, 0)

func (s *Server) listBuilds(w http.ResponseWriter, r *http.Request) {
	builds, err := s.Store.ListBuilds(r.Context(), r.URL.Query().Get("repo"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if builds == nil {
		builds = []model.Build{}
	}
	writeJSON(w, http.StatusOK, builds)
}

func (s *Server) getBuild(w http.ResponseWriter, r *http.Request) {
	b, err := s.Store.GetBuild(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) getLog(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Store.GetBuild(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	log, err := s.Store.ReadLog(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(log)
}

type triggerRequest struct {
	Ref string `json:"ref"`
}

// triggerBuild builds the current tip of a ref, as if it had just been
// pushed.
func (s *Server) triggerBuild(w http.ResponseWriter, r *http.Request) {
	repo, err := s.Store.GetRepo(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req triggerRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if !strings.HasPrefix(req.Ref, "refs/heads/") && !strings.HasPrefix(req.Ref, "refs/tags/") {
		s.fail(w, r, badf("ref: want refs/heads/<branch> or refs/tags/<tag>, got %q", req.Ref))
		return
	}
	matches := rules.Find(repo, req.Ref)
	if len(matches) == 0 {
		writeError(w, http.StatusUnprocessableEntity, "no rule of this repository builds "+req.Ref)
		return
	}
	if repo.CloneURL == "" {
		writeError(w, http.StatusUnprocessableEntity, "repository has no clone_url yet; push once or set clone_url")
		return
	}
	commit, err := s.Resolve(r.Context(), repo.CloneURL, req.Ref)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	var first model.Build
	for i, m := range matches {
		b := model.Build{
			ID: model.NewID(), RepoID: repo.ID, Ref: req.Ref, Commit: commit, Status: model.StatusQueued,
			Image: repo.Image, Tags: m.Tags, Rule: m.Rule, CloneURL: repo.CloneURL, Trigger: "manual",
			CreatedAt: s.now().UTC(),
		}
		if _, err := s.Store.SubmitBuild(r.Context(), b); err != nil {
			s.fail(w, r, err)
			return
		}
		if i == 0 {
			first = b
		}
	}
	writeJSON(w, http.StatusAccepted, first)
}
