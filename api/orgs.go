package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/slipway-build/slipway/access"
)

// whoami answers the caller's account, organization and role, and the
// embedded registry's host (images there are <registry>/<org>/<name>;
// the dashboard proposes that name when connecting), "" for none.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	p := caller(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"account": p.Account, "organization": p.Org, "role": p.Role, "site_admin": p.Site, "token_id": p.TokenID,
		"registry": s.RegistryHost,
	})
}

type orgRequest struct {
	Name string `json:"name"`
	// Owners are the accounts of the owners team (admins).
	Owners []string `json:"owners"`
}

// createOrg is for the bootstrap admin: organizations are the top of the
// hierarchy.
func (s *Server) createOrg(w http.ResponseWriter, r *http.Request) {
	if !caller(r).Site {
		writeError(w, http.StatusForbidden, "forbidden: only the bootstrap admin creates organizations")
		return
	}
	var req orgRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	o, err := s.Orgs.CreateOrg(r.Context(), req.Name, req.Owners)
	if err != nil {
		s.orgFailed(w, r, err)
		return
	}
	s.logger().Info("organization created", "org", o.Name, "owners", req.Owners)
	writeJSON(w, http.StatusCreated, publicOrg(o))
}

func (s *Server) listOrgs(w http.ResponseWriter, r *http.Request) {
	orgs, err := s.Orgs.ListOrgs(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []access.Org{}
	for _, o := range orgs {
		if sees(r, o.Name) {
			out = append(out, publicOrg(o))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request) {
	o, ok := s.org(w, r, access.Read)
	if ok {
		writeJSON(w, http.StatusOK, publicOrg(o))
	}
}

// org is the organization {org} when the caller has need there.
func (s *Server) org(w http.ResponseWriter, r *http.Request, need access.Role) (access.Org, bool) {
	name := r.PathValue("org")
	if access.ValidOrg(name) != nil || !s.allow(w, r, name, need) {
		if access.ValidOrg(name) != nil {
			writeError(w, http.StatusNotFound, "not found")
		}
		return access.Org{}, false
	}
	o, err := s.Orgs.GetOrg(r.Context(), name)
	if err != nil {
		s.orgFailed(w, r, err)
		return access.Org{}, false
	}
	return o, true
}

type orgPatch struct {
	PublicImages *[]string `json:"public_images"`
}

// patchOrg changes which of the organization's images anyone may pull.
func (s *Server) patchOrg(w http.ResponseWriter, r *http.Request) {
	o, ok := s.org(w, r, access.Admin)
	if !ok {
		return
	}
	var req orgPatch
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.PublicImages != nil {
		for _, img := range *req.PublicImages {
			if !strings.HasPrefix(img, o.Name+"/") || !imagePathRE.MatchString(img) {
				s.fail(w, r, badf("public_images: want repositories of %s's namespace such as %s/base, got %q", o.Name, o.Name, img))
				return
			}
		}
	}
	o, err := s.Orgs.UpdateOrg(r.Context(), o.Name, func(o *access.Org) error {
		if req.PublicImages != nil {
			o.PublicImages = slices.Compact(slices.Sorted(slices.Values(*req.PublicImages)))
		}
		return nil
	})
	if err != nil {
		s.orgFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, publicOrg(o))
}

// imagePathRE is an image repository path without registry host.
var imagePathRE = regexp.MustCompile(`^[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)+$`)

// putTeam creates or replaces a team: its role and members.
func (s *Server) putTeam(w http.ResponseWriter, r *http.Request) {
	o, ok := s.org(w, r, access.Admin)
	if !ok {
		return
	}
	var t access.Team
	if err := decode(r, &t); err != nil {
		s.fail(w, r, err)
		return
	}
	name := r.PathValue("team")
	if err := access.ValidTeam(o.Name, name, t); err != nil {
		s.fail(w, r, badf("%v", err))
		return
	}
	o, err := s.Orgs.UpdateOrg(r.Context(), o.Name, func(o *access.Org) error {
		had := hasAdmin(*o)
		if o.Teams == nil {
			o.Teams = map[string]access.Team{}
		}
		o.Teams[name] = t
		return keepsAnAdmin(had, *o)
	})
	if err != nil {
		s.orgFailed(w, r, err)
		return
	}
	s.logger().Info("team changed", "org", o.Name, "team", name, "team_role", t.Role, "members", t.Members, "by", caller(r).Account)
	writeJSON(w, http.StatusOK, publicOrg(o))
}

func (s *Server) deleteTeam(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("team")
	s.changeOrg(w, r, func(o *access.Org) error {
		if _, ok := o.Teams[name]; !ok {
			return access.ErrNotFound
		}
		had := hasAdmin(*o)
		delete(o.Teams, name)
		return keepsAnAdmin(had, *o)
	})
}

// changeOrg applies an admin's change to the organization {org} and
// answers 204.
func (s *Server) changeOrg(w http.ResponseWriter, r *http.Request, change func(*access.Org) error) {
	o, ok := s.org(w, r, access.Admin)
	if !ok {
		return
	}
	if _, err := s.Orgs.UpdateOrg(r.Context(), o.Name, change); err != nil {
		s.orgFailed(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// keepsAnAdmin refuses a change that would leave an organization that had
// an admin with none: only the bootstrap admin could then manage it. An
// organization made on first use starts without one.
func keepsAnAdmin(had bool, o access.Org) error {
	if !had || hasAdmin(o) {
		return nil
	}
	return badf("teams: the organization would have no admin left; keep at least one admin team with a member")
}

func hasAdmin(o access.Org) bool {
	for _, t := range o.Teams {
		if t.Role == access.Admin && len(t.Members) > 0 {
			return true
		}
	}
	return false
}

// registryHostRE is a registry host with an optional port.
var registryHostRE = regexp.MustCompile(`^[a-zA-Z0-9.-]+(:[0-9]{1,5})?$`)

// putRegistry stores the organization's login for a registry its images
// name; the password is sealed and never answered.
func (s *Server) putRegistry(w http.ResponseWriter, r *http.Request) {
	o, ok := s.org(w, r, access.Admin)
	if !ok {
		return
	}
	host := r.PathValue("host")
	if !registryHostRE.MatchString(host) {
		s.fail(w, r, badf("host: want a registry host such as ghcr.io or registry.example.com:5000, got %q", host))
		return
	}
	if s.Sealer == nil {
		writeError(w, http.StatusServiceUnavailable, "this server has no secret key to seal registry passwords with")
		return
	}
	var login access.RegistryLogin
	if err := decode(r, &login); err != nil {
		s.fail(w, r, err)
		return
	}
	if login.Username == "" || login.Password == "" {
		s.fail(w, r, badf("username and password: both are needed"))
		return
	}
	o, err := s.Orgs.UpdateOrg(r.Context(), o.Name, func(o *access.Org) error { return o.SetRegistry(host, login, s.Sealer) })
	if err != nil {
		s.orgFailed(w, r, err)
		return
	}
	s.logger().Info("registry login stored", "org", o.Name, "registry", host, "by", caller(r).Account)
	writeJSON(w, http.StatusOK, publicOrg(o))
}

func (s *Server) deleteRegistry(w http.ResponseWriter, r *http.Request) {
	host := r.PathValue("host")
	s.changeOrg(w, r, func(o *access.Org) error {
		if _, ok := o.Registries[host]; !ok {
			return access.ErrNotFound
		}
		delete(o.Registries, host)
		return nil
	})
}

// publicOrg is o without its registry passwords.
func publicOrg(o access.Org) access.Org {
	regs := make(map[string]access.RegistryLogin, len(o.Registries))
	for host, l := range o.Registries {
		regs[host] = access.RegistryLogin{Username: l.Username}
	}
	o.Registries = regs
	if o.Teams == nil {
		o.Teams = map[string]access.Team{}
	}
	return o
}

func (s *Server) orgFailed(w http.ResponseWriter, r *http.Request, err error) {
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, bad.Error())
	case errors.Is(err, access.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case errors.Is(err, access.ErrExists):
		writeError(w, http.StatusConflict, err.Error())
	case access.IsInvalid(err):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.fail(w, r, fmt.Errorf("organizations: %w", err))
	}
}
