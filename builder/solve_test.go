package builder

import (
	"os"
	"path/filepath"
	"testing"
)

// NoNetwork becomes the dockerfile frontend's default network for every
// RUN; without it the frontend's own default (BuildKit's network) stays.
func TestSolveOptNetwork(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, none := range []bool{false, true} {
		opt, err := solveOpt(Request{ContextDir: dir, Dockerfile: df, Image: "reg/acme/demo", NoNetwork: none}, nil)
		if err != nil {
			t.Fatal(err)
		}
		mode, set := opt.FrontendAttrs["force-network-mode"]
		if set != none || (none && mode != "none") {
			t.Errorf("NoNetwork=%v: force-network-mode = %q (set %v)", none, mode, set)
		}
	}
}
