// Package webhooktest is what the tests of the webhook adapters (in
// forge/<host>) and of the webhook handler share: the hosts' sample
// payloads, read and edited.
package webhooktest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Fixture reads a host's sample payload, testdata/name in dir: the folder of
// the host's package relative to the test's ("." in the package itself).
func Fixture(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "testdata", name)) // #nosec G304 -- tests name their own fixtures
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

// EditJSON decodes raw, a JSON object, lets edit change it and encodes it
// again.
func EditJSON(t testing.TB, raw []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode JSON to edit: %v", err)
	}
	edit(v)
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode edited JSON: %v", err)
	}
	return out
}
