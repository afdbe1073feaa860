package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/slipway-build/slipway/api"
)

// whoami tells a caller who it is and where this server's registry is:
// the dashboard shows the role and proposes <registry>/<org>/<name> as a
// new repository's image.
func TestWhoamiNamesRoleAndRegistry(t *testing.T) {
	h := newHarness(t, func(s *api.Server) { s.RegistryHost = "127.0.0.1:5000" })
	code, _, raw := h.do("GET", "/api/v1/whoami", testToken, "")
	if code != http.StatusOK {
		t.Fatalf("whoami: HTTP %d %s", code, raw)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("whoami answered %s", raw)
	}
	want := map[string]any{"account": "admin", "role": "admin", "site_admin": true, "registry": "127.0.0.1:5000"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("whoami %s = %v, want %v (answer %s)", k, got[k], v, raw)
		}
	}
}
