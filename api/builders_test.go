package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/slipway-build/slipway/api"
)

type fakeBuilders []api.BuilderState

func (f fakeBuilders) BuilderStates() []api.BuilderState { return f }

func TestListBuilders(t *testing.T) {
	h := newHarness(t, func(s *api.Server) {
		s.Builders = fakeBuilders{
			{Addr: "tcp://10.0.0.3:1234", Healthy: true, Running: 2, LastBuiltRepos: 5},
			{Addr: "tcp://10.0.0.9:1234", LastError: "connection refused"},
		}
	})
	code, _, raw := h.do("GET", "/api/v1/builders", testToken, "")
	var got []api.BuilderState
	if err := json.Unmarshal(raw, &got); err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/v1/builders: HTTP %d %s (%v)", code, raw, err)
	}
	want := []api.BuilderState{
		{Addr: "tcp://10.0.0.3:1234", Healthy: true, Running: 2, LastBuiltRepos: 5},
		{Addr: "tcp://10.0.0.9:1234", LastError: "connection refused"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("builders = %+v, want %+v", got, want)
	}
}
