package seal_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/seal"
)

// Two fixed keys and what they are called; the sealed vectors below were
// made with AES-256-GCM under them with a nonce of twelve 0x07 bytes.
var (
	keyA   = bytes.Repeat([]byte{0x11}, 32)
	keyB   = bytes.Repeat([]byte{0x22}, 32)
	keyA64 = "ERERERERERERERERERERERERERERERERERERERERERE="
	keyB64 = "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI="
	// "ghp_example" sealed for "repo/r1/token".
	vectorA = "sealed:v1:02d449a3:BwcHBwcHBwcHBwcHt1J855bBNkzKzb0OIh9XEAk7qE8CpbEZB__t"
	vectorB = "sealed:v1:9f72ea0c:BwcHBwcHBwcHBwcHTNRALrmjqfUywhY_PkR4niS_H8yAyK2OJdXR"
)

func keyring(t *testing.T, keys ...[]byte) *seal.Keyring {
	t.Helper()
	kr, err := seal.New(keys...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return kr
}

func TestKeyID(t *testing.T) {
	for _, tc := range []struct {
		key  []byte
		want string
	}{{keyA, "02d449a3"}, {keyB, "9f72ea0c"}} {
		if got := seal.KeyID(tc.key); got != tc.want {
			t.Errorf("KeyID = %q, want %q", got, tc.want)
		}
	}
	kr := keyring(t, keyB, keyA, keyB)
	if got := strings.Join(kr.IDs(), ","); got != "9f72ea0c,02d449a3" {
		t.Errorf("IDs = %q, want the primary first and no repeat: 9f72ea0c,02d449a3", got)
	}
}

func TestOpenKnownVectors(t *testing.T) {
	kr := keyring(t, keyB, keyA)
	for _, sealed := range []string{vectorA, vectorB} {
		got, err := kr.Open(sealed, "repo/r1/token")
		if err != nil || got != "ghp_example" {
			t.Errorf("Open(%s) = %q, %v; want ghp_example", sealed[:18], got, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	kr := keyring(t, keyA)
	for _, plain := range []string{"s3cr3t", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n", "ü ∑ \x00"} {
		sealed, err := kr.Seal(plain, "repo/r1/ssh_key")
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if !strings.HasPrefix(sealed, "sealed:v1:02d449a3:") || !seal.IsSealed(sealed) || strings.Contains(sealed, plain) {
			t.Errorf("Seal = %q, want sealed:v1:02d449a3:<base64url> without the plaintext", sealed)
		}
		if got := seal.SealedWith(sealed); got != "02d449a3" {
			t.Errorf("SealedWith = %q, want 02d449a3", got)
		}
		got, err := kr.Open(sealed, "repo/r1/ssh_key")
		if err != nil || got != plain {
			t.Errorf("Open = %q, %v; want %q", got, err, plain)
		}
		again, _ := kr.Seal(plain, "repo/r1/ssh_key")
		if again == sealed {
			t.Error("two seals of one value are equal: the nonce is not random")
		}
	}
}

func TestEmptyAndPlaintext(t *testing.T) {
	kr := keyring(t, keyA)
	if got, err := kr.Seal("", "repo/r1/token"); got != "" || err != nil {
		t.Errorf(`Seal("") = %q, %v; want "", nil`, got, err)
	}
	// A value an older Slipway stored in the clear reads as it is.
	if got, err := kr.Open("ghp_legacy", "repo/r1/token"); got != "ghp_legacy" || err != nil {
		t.Errorf("Open(plaintext) = %q, %v; want ghp_legacy, nil", got, err)
	}
	if seal.IsSealed("ghp_legacy") || seal.SealedWith("ghp_legacy") != "" {
		t.Error("plaintext reported as sealed")
	}
}

func TestOpenRefuses(t *testing.T) {
	kr := keyring(t, keyA)
	// One base64 character of the ciphertext changed: "...CpbEZB__t" to
	// "...CpbEZC__t".
	flip := strings.Replace(vectorA, "EZB__t", "EZC__t", 1)
	for _, tc := range []struct {
		name, sealed, context, want string
	}{
		{"tampered", flip, "repo/r1/token", "open repo/r1/token: value sealed under key 02d449a3 was altered or belongs to another field"},
		{"other field", vectorA, "repo/r1/webhook_secret", "open repo/r1/webhook_secret: value sealed under key 02d449a3 was altered or belongs to another field"},
		{"other record", vectorA, "repo/r2/token", "open repo/r2/token: value sealed under key 02d449a3 was altered or belongs to another field"},
		{"unknown key", vectorB, "repo/r1/token", "open repo/r1/token: key 9f72ea0c: sealed under a key this keyring does not hold (keyring holds 02d449a3)"},
		{"truncated", "sealed:v1:02d449a3:BwcH", "repo/r1/token", "open repo/r1/token: sealed value under key 02d449a3 is truncated"},
		{"not base64", "sealed:v1:02d449a3:***", "repo/r1/token", "open repo/r1/token: sealed value under key 02d449a3 is not base64url"},
		{"other version", "sealed:v9:02d449a3:BwcH", "repo/r1/token", "open repo/r1/token: not a sealed:v1 value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kr.Open(tc.sealed, tc.context)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Open = %q, %v; want error %q", got, err, tc.want)
			}
			if strings.Contains(err.Error(), "ghp_example") {
				t.Error("the error shows the secret")
			}
		})
	}
	if _, err := kr.Open(vectorB, "repo/r1/token"); !errors.Is(err, seal.ErrUnknownKey) {
		t.Errorf("unknown key: %v, want ErrUnknownKey", err)
	}
}

func TestRotationKeyring(t *testing.T) {
	old := keyring(t, keyA)
	sealedOld, err := old.Seal("hook-secret", "repo/r1/hooks/0/secret")
	if err != nil {
		t.Fatal(err)
	}
	rotated := keyring(t, keyB, keyA)
	if got, err := rotated.Open(sealedOld, "repo/r1/hooks/0/secret"); got != "hook-secret" || err != nil {
		t.Errorf("new keyring opens the old value = %q, %v; want hook-secret", got, err)
	}
	sealedNew, err := rotated.Seal("hook-secret", "repo/r1/hooks/0/secret")
	if err != nil {
		t.Fatal(err)
	}
	if got := seal.SealedWith(sealedNew); got != "9f72ea0c" || rotated.PrimaryID() != "9f72ea0c" {
		t.Errorf("sealed under %q (primary %q), want the new key 9f72ea0c", got, rotated.PrimaryID())
	}
	if _, err := old.Open(sealedNew, "repo/r1/hooks/0/secret"); !errors.Is(err, seal.ErrUnknownKey) {
		t.Errorf("old keyring opens the new value: %v", err)
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	for _, tc := range []struct {
		keys [][]byte
		want string
	}{
		{nil, "a keyring needs at least one key"},
		{[][]byte{keyA, make([]byte, 16)}, "key 2: want 32 bytes, got 16"},
	} {
		if _, err := seal.New(tc.keys...); err == nil || err.Error() != tc.want {
			t.Errorf("New = %v, want %q", err, tc.want)
		}
	}
}

func TestLoadFromEnv(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		env, wantIDs, wantErr string
	}{
		{keyB64, "9f72ea0c", ""},
		{keyB64 + ", " + keyB64, "9f72ea0c", ""},
		{keyB64 + "," + keyA64, "9f72ea0c,02d449a3", ""},
		{strings.TrimRight(keyA64, "="), "02d449a3", ""},
		{"c2hvcnQ=", "", "SLIPWAY_SECRET_KEY: key 1: want 32 bytes of base64, got 5"},
		{keyA64 + ",not base64!", "", "SLIPWAY_SECRET_KEY: key 2: not base64"},
	} {
		kr, err := seal.Load(tc.env, dir)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("Load(%q) = %v, want %q", tc.env, err, tc.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(kr.IDs(), ",") != tc.wantIDs {
			t.Errorf("Load(%q) = %v, %v; want ids %s", tc.env, kr, err, tc.wantIDs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, seal.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was written although SLIPWAY_SECRET_KEY is set: %v", err)
	}
}

func TestLoadCreatesKeyFile(t *testing.T) {
	dir := t.TempDir()
	kr, err := seal.Load("", dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	path := filepath.Join(dir, "secret.key")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", info.Mode().Perm())
	}
	again, err := seal.Load("", dir)
	if err != nil || again.PrimaryID() != kr.PrimaryID() || len(again.IDs()) != 1 {
		t.Errorf("second Load = %v, %v; want the same single key %s", again, err, kr.PrimaryID())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only the key file", len(entries))
	}
}

func TestKeyFileSeveralKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.key")
	body := "# rotated 2026-12-04\n" + keyB64 + "\n\n" + keyA64 + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := seal.Load("", dir)
	if err != nil || strings.Join(kr.IDs(), ",") != "9f72ea0c,02d449a3" {
		t.Fatalf("Load = %v, %v; want ids 9f72ea0c,02d449a3", kr, err)
	}
	if got, err := kr.Open(vectorA, "repo/r1/token"); got != "ghp_example" || err != nil {
		t.Errorf("Open under the second key = %q, %v", got, err)
	}
	// WriteFile keeps the order and the mode.
	if err := seal.WriteFile(path, keyring(t, keyA)); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if lines := strings.Split(strings.TrimSpace(string(raw)), "\n"); lines[len(lines)-1] != keyA64 || len(lines) != 2 {
		t.Errorf("rewritten file = %q, want a comment and %s", raw, keyA64)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("rewritten mode = %04o, want 0600", info.Mode().Perm())
	}
}

func TestKeyFileRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode
		body string
		want string
	}{
		{"group readable", 0o640, keyA64 + "\n", "key file DIR/secret.key has mode 0640, open to other users; fix it with: chmod 600 DIR/secret.key"},
		{"world readable", 0o604, keyA64 + "\n", "key file DIR/secret.key has mode 0604, open to other users; fix it with: chmod 600 DIR/secret.key"},
		{"empty", 0o600, "# nothing\n", "key file DIR/secret.key holds no key; remove it to have a new one made, or put one base64 key a line"},
		{"short key", 0o600, keyA64 + "\nc2hvcnQ=\n", "key file DIR/secret.key: key 2: want 32 bytes of base64, got 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "secret.key")
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := seal.Load("", dir)
			want := strings.ReplaceAll(tc.want, "DIR", dir)
			if err == nil || err.Error() != want {
				t.Fatalf("Load = %v, want %q", err, want)
			}
		})
	}
}
