package api

import "net/http"

// Builders reports the BuildKit daemons the builds run on (cmd/slipway's
// view of builder.Pool); the API imports no BuildKit code.
type Builders interface {
	BuilderStates() []BuilderState
}

// BuilderState is one daemon in GET /api/v1/builders.
type BuilderState struct {
	Addr    string `json:"addr"`
	Healthy bool   `json:"healthy"`
	Running int    `json:"running"`
	// LastError is why the daemon was last marked down.
	LastError string `json:"last_error,omitempty"`
	// LastBuiltRepos counts the repositories whose last build ran here:
	// their next builds prefer this daemon.
	LastBuiltRepos int `json:"last_built_repos"`
}

// listBuilders serves GET /api/v1/builders to any authenticated caller:
// addresses and load say nothing of any organization's records.
func (s *Server) listBuilders(w http.ResponseWriter, _ *http.Request) {
	out := []BuilderState{}
	if s.Builders != nil {
		out = append(out, s.Builders.BuilderStates()...)
	}
	writeJSON(w, http.StatusOK, out)
}
