package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
)

type connectRequest struct {
	Provider       string       `json:"provider"`
	FullName       string       `json:"full_name"`
	Org            string       `json:"organization,omitempty"`
	Token          string       `json:"token"`
	InstallationID int64        `json:"installation_id"`
	APIURL         string       `json:"api_url"`
	Image          string       `json:"image"`
	Rules          []model.Rule `json:"rules"`
	Hooks          []model.Hook `json:"hooks"`
	// BuildNow builds the watched branch tips at once; otherwise only
	// pushes from now on build.
	BuildNow bool `json:"build_now,omitempty"`
}

// DefaultRules build the default branch as latest and version tags as
// their version.
func DefaultRules(defaultBranch string) []model.Rule {
	return []model.Rule{
		{SourceType: "branch", Source: defaultBranch, Tags: []string{"latest"}},
		{SourceType: "tag", Source: `/^v?[0-9]+\.[0-9]+\.[0-9]+$/`, Tags: []string{"{version}"}},
	}
}

// connectRepo reads the repository on its host, creates the push webhook
// there with a fresh secret, and registers the repository. If registering
// fails the webhook is removed again.
func (s *Server) connectRepo(w http.ResponseWriter, r *http.Request) {
	var req connectRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	host, err := s.host(req.Provider)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := host.API
	repo := model.Repo{Provider: req.Provider, FullName: req.FullName, Image: req.Image, APIURL: req.APIURL,
		Token: req.Token, InstallationID: req.InstallationID, Hooks: req.Hooks, Org: req.Org}
	if !s.claimOrg(w, r, &repo) {
		return
	}
	if err := s.checkAPIURL(r.Context(), repo.APIURL); err != nil {
		s.fail(w, r, err)
		return
	}
	conn, err := s.conn(r.Context(), repo)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	info, err := f.Repo(r.Context(), conn)
	if err != nil {
		writeError(w, hostCode(err), "read repository on "+req.Provider+": "+err.Error())
		return
	}
	repo.CloneURL, repo.DefaultBranch, repo.WebhookSecret = info.CloneURL, info.DefaultBranch, newSecret()
	repo.Rules = req.Rules
	if len(repo.Rules) == 0 {
		repo.Rules = DefaultRules(info.DefaultBranch)
	}
	if err := s.validateRepo(repo); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkTargets(r.Context(), repo); err != nil {
		s.fail(w, r, err)
		return
	}
	hook, err := f.CreateHook(r.Context(), conn, s.PublicURL+host.HookPath, repo.WebhookSecret)
	if err != nil {
		writeError(w, hostCode(err), "create webhook on "+req.Provider+": "+err.Error())
		return
	}
	repo.HookID = hook.ID
	repo.ID, repo.CreatedAt = model.NewID(), s.now().UTC()
	s.logger().Info("webhook created on the host", "provider", repo.Provider, "full_name", repo.FullName,
		"hook", hook.ID, "private", info.Private)
	s.register(w, r, repo, req.BuildNow, "", func() {
		if derr := f.DeleteHook(context.WithoutCancel(r.Context()), conn, hook.ID); derr != nil {
			s.logger().Error("remove webhook after failed registration", "repo", repo.FullName, "hook", hook.ID, "err", derr)
		}
	})
}

// disconnect removes the webhook Slipway created, if any.
func (s *Server) disconnect(ctx context.Context, repo model.Repo) error {
	if repo.HookID == "" {
		return nil
	}
	host, err := s.host(repo.Provider)
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", repo.HookID, err)
	}
	conn, err := s.conn(ctx, repo)
	if err != nil {
		return err
	}
	if err := host.API.DeleteHook(ctx, conn, repo.HookID); err != nil {
		return fmt.Errorf("delete webhook %s on %s: %w", repo.HookID, repo.Provider, err)
	}
	return nil
}

// conn is how to reach a repository's host API.
func (s *Server) conn(ctx context.Context, repo model.Repo) (forge.Conn, error) {
	token := repo.Token
	if repo.InstallationID != 0 {
		if s.AppToken == nil {
			return forge.Conn{}, badf("installation_id: no GitHub App is configured (SLIPWAY_GITHUB_APP_ID)")
		}
		t, err := s.AppToken(ctx, repo.InstallationID, repo.FullName)
		if err != nil {
			return forge.Conn{}, fmt.Errorf("github app installation %d: %w", repo.InstallationID, err)
		}
		token = t
	}
	if token == "" {
		return forge.Conn{}, badf("token: needed to reach the %s API (or installation_id with a GitHub App)", repo.Provider)
	}
	return forge.Conn{APIURL: repo.APIURL, FullName: repo.FullName, Token: token, HTTP: s.HTTP}, nil
}

// hostCode answers a refused token with 401-like 422, anything else 502.
func hostCode(err error) int {
	if errors.Is(err, forge.ErrUnauthorized) {
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadGateway
}

func newSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}
