package kubernetes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/config"
)

// TestSecretsOverlay follows README.md's secrets step: an overlay whose
// secretGenerator replaces the placeholder Secret from secrets.env. Every
// role must then read the user's values, under the generated name.
func TestSecretsOverlay(t *testing.T) {
	base, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// kustomize takes bases only by relative path (or URL).
	rel, err := filepath.Rel(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	kustomization := "resources:\n  - " + rel + "\nsecretGenerator:\n  - name: slipway\n    behavior: replace\n    envs: [secrets.env]\n"
	example, err := os.ReadFile("secrets.env.example")
	if err != nil {
		t.Fatal(err)
	}
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	const token = "0123456789abcdef0123456789abcdef0123"
	filled := strings.Replace(string(example), "SLIPWAY_SECRET_KEY=\n", "SLIPWAY_SECRET_KEY="+key+"\n", 1)
	filled = strings.Replace(filled, "SLIPWAY_API_TOKEN=\n", "SLIPWAY_API_TOKEN="+token+"\n", 1)
	if filled == string(example) {
		t.Fatalf("secrets.env.example no longer has empty SLIPWAY_SECRET_KEY= and SLIPWAY_API_TOKEN= lines")
	}
	write(t, filepath.Join(dir, "kustomization.yaml"), kustomization)
	write(t, filepath.Join(dir, "secrets.env"), filled)

	r := render(t, dir)
	for name, role := range map[string]string{"webhook-api": "webhook,api", "worker": "worker", "registry": "registry"} {
		e := env(t, r, slipwayContainer(t, r, name))
		if e["SLIPWAY_SECRET_KEY"] != key {
			t.Errorf("%s (%s) does not get the overlay's SLIPWAY_SECRET_KEY", name, role)
		}
		if _, err := config.Load("", mapEnv(e)); err != nil {
			t.Errorf("%s: Slipway refuses the overlay's environment: %v", name, err)
		}
	}
	if got := env(t, r, slipwayContainer(t, r, "webhook-api"))["SLIPWAY_API_TOKEN"]; got != token {
		t.Errorf("webhook-api gets SLIPWAY_API_TOKEN %q, want the overlay's", got)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
