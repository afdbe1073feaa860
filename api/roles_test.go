package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/model"
)

// The callers of the role matrix, in the order each route is tried.
const (
	noToken = "no token"
	revoked = "revoked"
	expired = "expired"
	other   = "other org"
	reader  = "read"
	writer  = "write"
	admin   = "admin"
	site    = "bootstrap"
)

var callers = []string{noToken, revoked, expired, other, reader, writer, admin, site}

// matrix is the people of the role matrix: organization acme with a
// reader (alice), a writer (bob) and an admin (carol); organization other
// with its admin (dave).
type matrix struct {
	h      *harness
	tokens map[string]string
	clock  atomic.Int64 // seconds after base
}

func newMatrix(t *testing.T, change ...func(*api.Server)) *matrix {
	m := newMatrixOn(t, change...)
	m.h.access.Now = func() time.Time { return base.Add(time.Duration(m.clock.Load()) * time.Second) }
	m.tokens[expired] = m.issue("acme", "carol", "admin", "1h")
	m.clock.Store(2 * 3600) // the 1h token has expired
	return m
}

func (m *matrix) post(path, token, body string, want int) []byte {
	m.h.t.Helper()
	code, _, raw := m.h.do("POST", path, token, body)
	if code != want {
		m.h.t.Fatalf("POST %s: HTTP %d %s, want %d", path, code, raw, want)
	}
	return raw
}

func (m *matrix) put(path, token, body string) {
	m.h.t.Helper()
	if code, _, raw := m.h.do("PUT", path, token, body); code != http.StatusOK {
		m.h.t.Fatalf("PUT %s: HTTP %d %s", path, code, raw)
	}
}

// issue makes a token as the bootstrap admin and returns its text.
func (m *matrix) issue(org, account, role, expiresIn string) string {
	m.h.t.Helper()
	body, _ := json.Marshal(access.TokenRequest{Name: account + " " + role, Org: org, Account: account, Role: access.Role(role), ExpiresIn: expiresIn})
	raw := m.post("/api/v1/tokens", testToken, string(body), http.StatusCreated)
	var got struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		m.h.t.Fatal(err)
	}
	return got.Token
}

// codes lists the answer for each caller that is not 401; the unusable
// tokens always get 401.
type codes map[string]int

func TestRoleMatrix(t *testing.T) {
	// The test repositories' images are on this registry: the registry
	// browser knows them (without reading any registry: no Registry).
	m := newMatrix(t, func(s *api.Server) { s.RegistryHost = "registry.example:5000" })
	h := m.h
	repo := h.createRepo(validRepo("acme/demo"))
	doomed := h.createRepo(validRepo("acme/doomed"))
	b := h.trigger(repo.ID, "refs/heads/main", "")
	private := h.createRepo(validRepo("acme/private")) // its image stays private
	finished := h.trigger(private.ID, "", commitC)     // its followed log ends at once
	h.markFinished(finished.ID, model.StatusSucceeded)
	spare := m.issue("acme", "alice", "read", "")
	spareID, _, _ := access.Split(spare)

	// Each route lists what every caller gets, in the order of callers:
	// a route that changes something is answered differently once the
	// change is made (a second cancel is 409).
	routes := []struct {
		method, path, body string
		want               codes
	}{
		{"GET", "/api/v1/whoami", "", codes{other: 200, reader: 200, writer: 200, admin: 200, site: 200}},
		{"GET", "/api/v1/builders", "", codes{other: 200, reader: 200, writer: 200, admin: 200, site: 200}},
		{"GET", "/api/v1/repos", "", codes{other: 200, reader: 200, writer: 200, admin: 200, site: 200}},
		{"POST", "/api/v1/repos", repoJSON("acme/fresh"), codes{other: 404, reader: 403, writer: 403, admin: 201, site: 409}},
		{"POST", "/api/v1/repos/connect", `{"provider":"fakehost","full_name":"acme/connected","image":"registry.example:5000/acme/connected","token":"host-token","rules":[{"source_type":"branch","source":"main","tags":["latest"]}]}`,
			// Past the role check, the test host refuses to make webhooks: 502.
			codes{other: 404, reader: 403, writer: 403, admin: 502, site: 502}},
		{"GET", "/api/v1/repos/" + repo.ID, "", codes{other: 404, reader: 200, writer: 200, admin: 200, site: 200}},
		{"PATCH", "/api/v1/repos/" + repo.ID, `{"rules":[{"source_type":"branch","source":"main","tags":["latest"]}]}`,
			codes{other: 404, reader: 403, writer: 200, admin: 200, site: 200}},
		{"PATCH", "/api/v1/repos/" + repo.ID, `{"public":true}`, codes{other: 404, reader: 403, writer: 403, admin: 200, site: 200}},
		{"GET", "/api/v1/builds", "", codes{other: 200, reader: 200, writer: 200, admin: 200, site: 200}},
		{"GET", "/api/v1/builds/" + b.ID, "", codes{other: 404, reader: 200, writer: 200, admin: 200, site: 200}},
		{"GET", "/api/v1/builds/" + b.ID + "/log", "", codes{other: 404, reader: 200, writer: 200, admin: 200, site: 200}},
		// Past the role check, the queued build has pushed no image: 409.
		{"GET", "/api/v1/builds/" + b.ID + "/image", "", codes{other: 404, reader: 409, writer: 409, admin: 409, site: 409}},
		{"POST", "/api/v1/builds/" + b.ID + "/cancel", "", codes{other: 404, reader: 403, writer: 202, admin: 409, site: 409}},
		{"POST", "/api/v1/builds/" + b.ID + "/rebuild", "", codes{other: 404, reader: 403, writer: 202, admin: 202, site: 202}},
		{"POST", "/api/v1/builds/" + b.ID + "/deliveries/0/redeliver", "", codes{other: 404, reader: 403, writer: 400, admin: 400, site: 400}},
		{"POST", "/api/v1/repos/" + repo.ID + "/builds", `{"ref":"refs/heads/main"}`,
			codes{other: 404, reader: 403, writer: 202, admin: 202, site: 202}},
		{"GET", "/api/v1/orgs", "", codes{other: 200, reader: 200, writer: 200, admin: 200, site: 200}},
		{"POST", "/api/v1/orgs", `{"name":"newco","owners":["erin"]}`, codes{other: 403, reader: 403, writer: 403, admin: 403, site: 201}},
		{"GET", "/api/v1/orgs/acme", "", codes{other: 404, reader: 200, writer: 200, admin: 200, site: 200}},
		{"PATCH", "/api/v1/orgs/acme", `{"public_images":["acme/base"]}`, codes{other: 404, reader: 403, writer: 403, admin: 200, site: 200}},
		{"PUT", "/api/v1/orgs/acme/teams/extra", `{"role":"read","members":["frank"]}`, codes{other: 404, reader: 403, writer: 403, admin: 200, site: 200}},
		{"DELETE", "/api/v1/orgs/acme/teams/extra", "", codes{other: 404, reader: 403, writer: 403, admin: 204, site: 404}},
		{"PUT", "/api/v1/orgs/acme/registries/ghcr.io", `{"username":"acme-bot","password":"registry-password-0123"}`,
			codes{other: 404, reader: 403, writer: 403, admin: 200, site: 200}},
		{"DELETE", "/api/v1/orgs/acme/registries/ghcr.io", "", codes{other: 404, reader: 403, writer: 403, admin: 204, site: 404}},
		{"POST", "/api/v1/tokens", `{"name":"mine","organization":"acme","account":"alice","role":"read"}`,
			codes{other: 404, reader: 201, writer: 403, admin: 201, site: 201}},
		{"GET", "/api/v1/tokens", "", codes{other: 200, reader: 200, writer: 200, admin: 200, site: 200}},
		{"DELETE", "/api/v1/tokens/" + spareID, "", codes{other: 404, reader: 204, writer: 403, admin: 204, site: 204}},
		{"POST", "/api/v1/admin/secrets/rotate", "", codes{other: 403, reader: 403, writer: 403, admin: 403, site: 501}},
		{"POST", "/api/v1/repos/" + repo.ID + "/badge-key", "", codes{other: 404, reader: 403, writer: 201, admin: 201, site: 201}},
		{"DELETE", "/api/v1/repos/" + repo.ID + "/badge-key", "", codes{other: 404, reader: 403, writer: 204, admin: 204, site: 204}},
		// A private repository's badge (acme/doomed) is 404 to whoever may
		// not read it, the unusable tokens included: a badge never asks
		// for a login. A public one's (acme/demo, since the PATCH above)
		// is everyone's.
		{"GET", "/badge/acme/doomed.svg", "", codes{noToken: 404, revoked: 404, expired: 404, other: 404, reader: 200, writer: 200, admin: 200, site: 200}},
		{"GET", "/badge/acme/doomed/latest.svg", "", codes{noToken: 404, revoked: 404, expired: 404, other: 404, reader: 200, writer: 200, admin: 200, site: 200}},
		{"GET", "/badge/acme/demo.svg", "", codes{noToken: 200, revoked: 200, expired: 200, other: 200, reader: 200, writer: 200, admin: 200, site: 200}},
		{"DELETE", "/api/v1/repos/" + doomed.ID + "?keep_hook=true", "", codes{other: 404, reader: 403, writer: 403, admin: 204, site: 404}},
		{"GET", "/api/v1/builds/" + finished.ID + "/log?follow=1", "", codes{other: 404, reader: 200, writer: 200, admin: 200, site: 200}},
		{"GET", "/api/v1/images", "", codes{other: 200, reader: 200, writer: 200, admin: 200, site: 200}},
		{"GET", "/api/v1/images/acme/private/tags", "", codes{other: 404, reader: 200, writer: 200, admin: 200, site: 200}},
	}
	for _, rt := range routes {
		for _, who := range callers {
			want, ok := rt.want[who]
			if !ok {
				want = http.StatusUnauthorized
			}
			code, _, raw := h.do(rt.method, rt.path, m.tokens[who], rt.body)
			if code != want {
				t.Errorf("%s %s as %s: HTTP %d %s, want %d", rt.method, rt.path, who, code, raw, want)
			}
		}
	}
}

func repoJSON(fullName string) string {
	raw, _ := json.Marshal(validRepo(fullName))
	return string(raw)
}

// TestOtherOrganizationSeesNothing: the lists answer another
// organization's caller none of acme's records.
func TestOtherOrganizationSeesNothing(t *testing.T) {
	m := newMatrix(t)
	h := m.h
	repo := h.createRepo(validRepo("acme/demo"))
	h.trigger(repo.ID, "refs/heads/main", "")
	for _, path := range []string{"/api/v1/repos", "/api/v1/builds", "/api/v1/orgs", "/api/v1/tokens"} {
		code, _, raw := h.do("GET", path, m.tokens[other], "")
		var list []map[string]any
		if err := json.Unmarshal(raw, &list); err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: HTTP %d %s", path, code, raw)
		}
		for _, item := range list {
			if item["organization"] == "acme" || item["name"] == "acme" {
				t.Errorf("GET %s as other shows %v", path, item)
			}
		}
	}
	code, _, raw := h.do("GET", "/api/v1/repos", m.tokens[reader], "")
	var repos []model.Repo
	if err := json.Unmarshal(raw, &repos); err != nil || code != http.StatusOK || len(repos) != 1 || repos[0].FullName != "acme/demo" {
		t.Errorf("GET /api/v1/repos as acme's reader: HTTP %d %s, want acme/demo", code, raw)
	}
}

// TestRegistrationClaims: an omitted webhook secret is generated and shown
// once; an image belongs to one repository; images on the embedded
// registry live under their organization's namespace.
func TestRegistrationClaims(t *testing.T) {
	h := newHarness(t, func(s *api.Server) { s.RegistryHost = "registry.example:5000" })
	in := validRepo("acme/demo")
	in.WebhookSecret = ""
	code, raw := h.call("POST", "/api/v1/repos", in)
	var got api.Registered
	if err := json.Unmarshal(raw, &got); err != nil || code != http.StatusCreated {
		t.Fatalf("POST without webhook_secret: HTTP %d %s", code, raw)
	}
	if len(got.WebhookSecret) != 64 {
		t.Errorf("generated webhook_secret = %q, want 64 hex characters", got.WebhookSecret)
	}
	code, _, raw = h.do("GET", "/api/v1/repos/"+got.ID, testToken, "")
	if code != http.StatusOK || bytes.Contains(raw, []byte(got.WebhookSecret)) {
		t.Errorf("GET shows the generated secret again: HTTP %d %s", code, raw)
	}

	twin := validRepo("acme/twin")
	twin.Image = in.Image
	code, raw = h.call("POST", "/api/v1/repos", twin)
	if code != http.StatusConflict || errorOf(t, raw) != "image registry.example:5000/acme/demo is already claimed by another repository" {
		t.Errorf("second claim of an image: HTTP %d %s, want 409", code, raw)
	}

	outside := validRepo("acme/outside")
	outside.Image = "registry.example:5000/globex/outside"
	code, raw = h.call("POST", "/api/v1/repos", outside)
	want := `image: acme/outside belongs to organization acme, so its image on this registry is registry.example:5000/acme/<name>, got "registry.example:5000/globex/outside"`
	if code != http.StatusBadRequest || errorOf(t, raw) != want {
		t.Errorf("image outside the namespace: HTTP %d %s", code, raw)
	}

	elsewhere := validRepo("acme/elsewhere")
	elsewhere.Image = "ghcr.io/globex/elsewhere"
	if code, raw := h.call("POST", "/api/v1/repos", elsewhere); code != http.StatusCreated {
		t.Errorf("an image on another registry: HTTP %d %s, want 201", code, raw)
	}
}

// TestLastAdminStays: a change that leaves an organization without an
// admin is refused; one made on first use, without admins, takes teams.
func TestLastAdminStays(t *testing.T) {
	m := newMatrix(t)
	code, _, raw := m.h.do("PUT", "/api/v1/orgs/acme/teams/owners", m.tokens[admin], `{"role":"read","members":["carol"]}`)
	want := "teams: the organization would have no admin left; keep at least one admin team with a member"
	if code != http.StatusBadRequest || errorOf(t, raw) != want {
		t.Errorf("demote the last admin: HTTP %d %s", code, raw)
	}
	if code, _, raw := m.h.do("DELETE", "/api/v1/orgs/acme/teams/owners", testToken, ""); code != http.StatusBadRequest {
		t.Errorf("delete the last admin team: HTTP %d %s", code, raw)
	}
	m.h.createRepo(validRepo("globex/app")) // makes organization globex, no admin yet
	if code, _, raw := m.h.do("PUT", "/api/v1/orgs/globex/teams/devs", testToken, `{"role":"write","members":["gina"]}`); code != http.StatusOK {
		t.Errorf("a team in an organization made on first use: HTTP %d %s", code, raw)
	}
}
