package api

import (
	"net/http"

	"github.com/slipway-build/slipway/access"
)

// Issued answers a new token: the record and, this once, its text.
type Issued struct {
	access.Token
	Secret string `json:"token"`
}

// createToken issues a token. Without an organization or account it is
// the caller's own, in the caller's organization.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req access.TokenRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	p := caller(r)
	if req.Org == "" {
		req.Org = p.Org
	}
	if req.Account == "" && !p.Site {
		req.Account = p.Account
	}
	if access.ValidOrg(req.Org) != nil || !s.allow(w, r, req.Org, access.Read) {
		if access.ValidOrg(req.Org) != nil {
			s.fail(w, r, badf("organization: name the organization the token is for"))
		}
		return
	}
	t, text, err := s.Tokens.IssueToken(r.Context(), p, req)
	if access.IsForbidden(err) {
		writeError(w, http.StatusForbidden, "forbidden: an organization's admin issues tokens for its members; others only for themselves, up to their own role")
		return
	}
	if err != nil {
		s.orgFailed(w, r, err)
		return
	}
	s.logger().Info("token issued", "token", t.ID, "org", t.Org, "account", t.Account, "token_role", t.Role, "by", p.Account)
	writeJSON(w, http.StatusCreated, Issued{Token: t.Public(), Secret: text})
}

// listTokens answers an organization's tokens to its admins, and the
// caller's own tokens to anyone else.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	p := caller(r)
	org := r.URL.Query().Get("organization")
	if org == "" && !p.Site {
		org = p.Org
	}
	if org != "" && !s.allow(w, r, org, access.Read) {
		return
	}
	tokens, err := s.Tokens.ListTokens(r.Context(), org)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []access.Token{}
	for _, t := range tokens {
		if p.RoleIn(t.Org).Includes(access.Admin) || t.Account == p.Account && t.Org == p.Org {
			out = append(out, t.Public())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// revokeToken revokes one of the caller's own tokens, or, for an admin,
// any token of the organization.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	t, err := s.Tokens.GetToken(r.Context(), r.PathValue("id"))
	if err != nil {
		s.orgFailed(w, r, err)
		return
	}
	p := caller(r)
	own := t.Account == p.Account && t.Org == p.Org
	if !own && !s.allow(w, r, t.Org, access.Admin) {
		return
	}
	if _, err := s.Tokens.RevokeToken(r.Context(), t.ID); err != nil {
		s.orgFailed(w, r, err)
		return
	}
	s.logger().Info("token revoked", "token", t.ID, "org", t.Org, "account", t.Account, "by", p.Account)
	w.WriteHeader(http.StatusNoContent)
}
