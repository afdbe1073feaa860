package seal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FileName is the key file in the data dir, used when SLIPWAY_SECRET_KEY
// is not set.
const FileName = "secret.key"

// Load returns the keyring: from envValue (SLIPWAY_SECRET_KEY, base64 keys
// separated by commas, the first one sealing) when it is set, else from the
// key file in dataDir, which is created with one new key on first start.
func Load(envValue, dataDir string) (*Keyring, error) {
	if strings.TrimSpace(envValue) != "" {
		keys, err := ParseKeys(strings.Split(envValue, ","))
		if err != nil {
			return nil, fmt.Errorf("SLIPWAY_SECRET_KEY: %w", err)
		}
		return New(keys...)
	}
	path := filepath.Join(dataDir, FileName)
	kr, err := ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createFile(path)
	}
	return kr, err
}

// ReadFile reads a key file: one base64 key a line, the first primary;
// blank lines and lines starting with # are skipped. A file that group or
// others may read or write is refused.
func ReadFile(path string) (*Keyring, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %04o, open to other users; fix it with: chmod 600 %s", path, perm, path)
	}
	raw, err := os.ReadFile(path) // #nosec G304 -- the key file in the operator's data dir
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	keys, err := ParseKeys(strings.Split(string(raw), "\n"))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key file %s holds no key; remove it to have a new one made, or put one base64 key a line", path)
	}
	return New(keys...)
}

// ParseKeys decodes base64 (standard or URL alphabet, padded or not) keys,
// skipping blank entries and # comments. Errors name the entry's position,
// never its text.
func ParseKeys(entries []string) ([][]byte, error) {
	var keys [][]byte
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		k, err := decodeKey(e)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != keySize {
				return nil, fmt.Errorf("want %d bytes of base64, got %d", keySize, len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("not base64")
}

// EncodeKey is a key as the key file and SLIPWAY_SECRET_KEY write it.
func EncodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func createFile(path string) (*Keyring, error) {
	k, err := Generate()
	if err != nil {
		return nil, err
	}
	kr, err := New(k)
	if err != nil {
		return nil, err
	}
	if err := WriteFile(path, kr); err != nil {
		return nil, err
	}
	return kr, nil
}

// WriteFile replaces the key file at path with kr's keys, primary first,
// mode 0600. It writes a temporary file and renames it, so a reader sees
// the old file or the new one, never half of one.
func WriteFile(path string, kr *Keyring) error {
	var b strings.Builder
	b.WriteString("# Slipway's secret keys: the first seals, all open. Keep this file with backups of the data dir, apart from them.\n")
	for _, k := range kr.Keys() {
		b.WriteString(EncodeKey(k) + "\n")
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+FileName+".*")
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	err = writeSynced(tmp, b.String())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}

// writeSynced writes text to a file CreateTemp made (0600 already; Chmod
// says so for readers) and flushes it to disk before the rename.
func writeSynced(f *os.File, text string) error {
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		return err
	}
	return f.Sync()
}
