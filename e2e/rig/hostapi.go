package rig

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// HostAPI is a local stand-in for a Git host's REST API (GitHub, Bitbucket,
// GitLab, Gitea): the real ones are unreachable from here. It records every
// request, answers commit statuses and hook creation as the hosts document,
// and serves Repo for repository reads.
type HostAPI struct {
	URL string
	// Repo is the JSON answered to GET of the repository.
	Repo map[string]any
	// AppToken is the installation token answered to a GitHub App's
	// token exchange.
	AppToken string
	// FailStatuses answers the first n commit statuses with 502, as a host
	// having a bad minute does.
	FailStatuses int
	mu           sync.Mutex
	reqs         []HostRequest
}

// HostRequest is one recorded call.
type HostRequest struct {
	Method string
	Path   string // escaped path, as sent
	Header http.Header
	Body   map[string]any
}

// StartHostAPI serves until the test ends.
func StartHostAPI(t testing.TB) *HostAPI {
	h := &HostAPI{Repo: map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

func (h *HostAPI) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	h.mu.Lock()
	h.reqs = append(h.reqs, HostRequest{Method: r.Method, Path: r.URL.EscapedPath(), Header: r.Header.Clone(), Body: body})
	repo := h.Repo
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/app/installations/") && strings.HasSuffix(r.URL.Path, "/access_tokens"):
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"token": h.AppToken, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	case r.Method == "GET":
		_ = json.NewEncoder(w).Encode(repo)
	case r.Method == "DELETE":
		w.WriteHeader(http.StatusNoContent)
	case strings.HasSuffix(r.URL.Path, "/hooks") || strings.HasSuffix(r.URL.Path, "/webhooks"):
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": 4242, "uuid": "{b6f2f1a0-hook}", "url": body["url"], "active": true})
	case h.failStatus():
		http.Error(w, `{"message":"upstream is having a bad minute"}`, http.StatusBadGateway)
	default:
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(body)
	}
}

func (h *HostAPI) failStatus() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.FailStatuses > 0 {
		h.FailStatuses--
		return true
	}
	return false
}

// Requests returns what was received so far.
func (h *HostAPI) Requests() []HostRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]HostRequest(nil), h.reqs...)
}

// States lists the "state" of every commit-status request for commit, in
// the order they arrived (failed ones included).
func (h *HostAPI) States(commit string) []string {
	var out []string
	for _, r := range h.Requests() {
		if r.Method == "POST" && strings.Contains(r.Path, commit) {
			if s, ok := r.Body["state"].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
