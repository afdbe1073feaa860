package access_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/natsd/natsdtest"
	"github.com/slipway-build/slipway/regauth"
	"github.com/slipway-build/slipway/seal"
)

func notFound(err error) bool { return errors.Is(err, access.ErrNotFound) }

func keyring(t *testing.T, keys ...byte) *seal.Keyring {
	t.Helper()
	var raw [][]byte
	for _, k := range keys {
		raw = append(raw, bytes.Repeat([]byte{k}, 32))
	}
	kr, err := seal.New(raw...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// Processes starting at once on one NATS (a worker, the registry role, the
// API) end up with one signing key: a pass one mints, another accepts.
func TestSharedSigningKeyOneForAll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, nc := natsdtest.Start(t)
	keys := keyring(t, 7)
	ids := make([]string, 4)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := access.Open(ctx, nc, 1)
			if err != nil {
				t.Error(err)
				return
			}
			s, certPath, err := regauth.LoadShared(ctx, d, keys, t.TempDir(), notFound)
			if err != nil {
				t.Error(err)
				return
			}
			if cert, err := os.ReadFile(certPath); err != nil || !bytes.HasPrefix(cert, []byte("-----BEGIN CERTIFICATE-----")) {
				t.Errorf("certificate %s: %v", certPath, err)
			}
			ids[i] = s.KeyID()
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if id == "" || id != ids[0] {
			t.Errorf("process %d has key %q, process 0 %q: want one key", i, id, ids[0])
		}
	}
	d, _ := access.Open(ctx, nc, 1)
	sealed, err := d.SigningKey(ctx)
	if err != nil || !strings.HasPrefix(sealed, "sealed:v1:") || strings.Contains(sealed, "PRIVATE KEY") {
		t.Errorf("stored key %.30q, %v: want it sealed", sealed, err)
	}
	_, _, err = regauth.LoadShared(ctx, d, keyring(t, 8), t.TempDir(), notFound)
	if err == nil || !strings.Contains(err.Error(), "is SLIPWAY_SECRET_KEY the same on every process?") {
		t.Errorf("another sealing key: %v, want the hint about SLIPWAY_SECRET_KEY", err)
	}
}

// The key file of an older `slipway serve` becomes the shared key, so the
// tokens it signed stay valid, and the file goes.
func TestSharedSigningKeyAdoptsTheKeyFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, nc := natsdtest.Start(t)
	d, err := access.Open(ctx, nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	keys := keyring(t, 1)
	pemKey, err := regauth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	old, _ := regauth.ParseKey(pemKey)
	sealed, err := keys.Seal(string(pemKey), "registry/token-key")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, regauth.KeyFile), []byte(sealed), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _, err := regauth.LoadShared(ctx, d, keys, dir, notFound)
	if err != nil || s.KeyID() != old.KeyID() {
		t.Fatalf("LoadShared = %v, key %q; want the file's key %q", err, s.KeyID(), old.KeyID())
	}
	if _, err := os.Stat(filepath.Join(dir, regauth.KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the older key file is still there: %v", err)
	}

	// A rotation reseals it: afterwards the new sealing key alone opens it.
	if err := regauth.ResealShared(ctx, d, keyring(t, 2, 1), notFound); err != nil {
		t.Fatal(err)
	}
	again, _, err := regauth.LoadShared(ctx, d, keyring(t, 2), t.TempDir(), notFound)
	if err != nil || again.KeyID() != old.KeyID() {
		t.Errorf("after the rotation: %v, key %q; want %q", err, again.KeyID(), old.KeyID())
	}
}
