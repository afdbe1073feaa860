package api

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/rules"
)

// Providers are the Git hosts whose webhooks Slipway reads.
var Providers = []string{"github", "bitbucket", "bitbucket-server", "gitlab", "gitea"}

func (s *Server) createRepo(w http.ResponseWriter, r *http.Request) {
	var repo model.Repo
	if err := decode(r, &repo); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := validateRepo(repo); err != nil {
		s.fail(w, r, err)
		return
	}
	repo.ID = model.NewID()
	repo.CreatedAt = s.now().UTC()
	if err := s.Store.CreateRepo(r.Context(), repo); err != nil {
		s.createFailed(w, r, err)
		return
	}
	s.logger().Info("repository registered", "repo", repo.ID, "provider", repo.Provider, "full_name", repo.FullName)
	writeJSON(w, http.StatusCreated, repo.Public())
}

func (s *Server) listRepos(w http.ResponseWriter, r *http.Request) {
	repos, err := s.Store.ListRepos(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]model.Repo, len(repos))
	for i, repo := range repos {
		out[i] = repo.Public()
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request) {
	repo, err := s.Store.GetRepo(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, repo.Public())
}

func (s *Server) createFailed(w http.ResponseWriter, r *http.Request, err error) {
	if strings.Contains(err.Error(), "already registered") {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	s.fail(w, r, err)
}

// deleteRepo removes a repository and the webhook Slipway created for it;
// ?keep_hook=true removes it here even when the host cannot be reached.
func (s *Server) deleteRepo(w http.ResponseWriter, r *http.Request) {
	repo, err := s.Store.GetRepo(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.URL.Query().Get("keep_hook") != "true" {
		if err := s.disconnect(r.Context(), repo); err != nil {
			writeError(w, http.StatusBadGateway, err.Error()+" (retry, or DELETE with ?keep_hook=true)")
			return
		}
	}
	if err := s.Store.DeleteRepo(r.Context(), repo.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var (
	// scpURL is git's short SSH form, git@host:owner/repo.git.
	scpURL     = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/].*$`)
	fullNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
	// imageRE is registry host (optional port) and a lowercase path, per the
	// distribution reference grammar, without tag or digest.
	imageRE = regexp.MustCompile(`^[a-zA-Z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)+$`)
)

func validateRepo(r model.Repo) error {
	known := false
	for _, p := range Providers {
		known = known || r.Provider == p
	}
	if !known {
		return badf("provider: want one of %s, got %q", strings.Join(Providers, ", "), r.Provider)
	}
	if !fullNameRE.MatchString(r.FullName) {
		return badf("full_name: want owner/name, got %q", r.FullName)
	}
	if r.CloneURL != "" && !scpURL.MatchString(r.CloneURL) {
		if u, err := url.Parse(r.CloneURL); err != nil || u.Host == "" || !oneOf(u.Scheme, "http", "https", "ssh", "git") {
			return badf("clone_url: want an http(s), ssh or git URL, got %q", r.CloneURL)
		}
	}
	if r.SSHKey != "" && strings.TrimSpace(r.KnownHosts) == "" {
		return badf("known_hosts: required with ssh_key, so the host key is checked")
	}
	if r.APIURL != "" {
		if u, err := url.Parse(r.APIURL); err != nil || u.Host == "" || !oneOf(u.Scheme, "http", "https") {
			return badf("api_url: want an http(s) URL, got %q", r.APIURL)
		}
	}
	if r.WebhookSecret == "" {
		return badf("webhook_secret: required, the Git host signs webhooks with it")
	}
	if !imageRE.MatchString(r.Image) {
		return badf("image: want registry/name such as 127.0.0.1:5000/acme/demo (lowercase, no tag), got %q", r.Image)
	}
	if len(r.Rules) == 0 {
		return badf("rules: at least one rule is needed")
	}
	for i, rule := range r.Rules {
		if err := rules.Validate(i, rule); err != nil {
			return badRequest{err.Error()}
		}
	}
	if r.BuildTimeout != "" {
		if d, err := time.ParseDuration(r.BuildTimeout); err != nil || d <= 0 {
			return badf("build_timeout: want a duration such as 45m, got %q", r.BuildTimeout)
		}
	}
	if r.MaxConcurrentBuilds < 0 {
		return badf("max_concurrent_builds: must not be negative")
	}
	if r.DefaultBranch != "" && strings.ContainsAny(r.DefaultBranch, " ~^:?*[\\") {
		return badf("default_branch: %q is not a branch name", r.DefaultBranch)
	}
	for i, h := range r.Hooks {
		if err := validateHook(h); err != nil {
			return badf("hooks[%d].%v", i, err)
		}
	}
	return nil
}

func validateHook(h model.Hook) error {
	u, err := url.Parse(h.URL)
	if err != nil || u.Host == "" || !oneOf(u.Scheme, "http", "https") {
		return fmt.Errorf("url: want an http(s) URL, got %q", h.URL)
	}
	if _, err := deploy.Sign(h.Secret, "msg_check", s0, nil); err != nil {
		return fmt.Errorf("secret: want whsec_<base64>: %v", err)
	}
	return nil
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}
