package regauth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SharedKey is where every Slipway process on one NATS keeps the signing
// key, sealed (package access implements it).
type SharedKey interface {
	// SigningKey returns the sealed key, or an error for which notFound
	// (LoadShared's argument) is true when there is none yet.
	SigningKey(ctx context.Context) (string, error)
	// CreateSigningKey stores sealed unless a key is there, and returns
	// the one stored.
	CreateSigningKey(ctx context.Context, sealed string) (string, error)
	PutSigningKey(ctx context.Context, sealed string) error
}

// LoadShared returns the signer of the key in store, creating the key on
// first start, and writes its certificate to dir/registry-token.crt, whose
// path it returns for the registry's rootcertbundle.
//
// A key an older Slipway kept in dir/registry-token.key becomes the shared
// key, so that tokens and passes it issued stay valid; the file is then
// removed, since the store is the only copy that is read.
func LoadShared(ctx context.Context, store SharedKey, keys Keys, dir string, notFound func(error) bool) (*Signer, string, error) {
	sealed, err := store.SigningKey(ctx)
	if notFound(err) {
		sealed, err = createShared(ctx, store, keys, dir)
	}
	if err != nil {
		return nil, "", fmt.Errorf("regauth: signing key: %w", err)
	}
	pemKey, err := keys.Open(sealed, keyContext)
	if err != nil {
		return nil, "", fmt.Errorf("regauth: open the shared signing key (is SLIPWAY_SECRET_KEY the same on every process?): %w", err)
	}
	s, err := ParseKey([]byte(pemKey))
	if err != nil {
		return nil, "", err
	}
	if err := removeFileKey(dir); err != nil {
		return nil, "", err
	}
	certPath, err := s.WriteCert(dir)
	if err != nil {
		return nil, "", err
	}
	return s, certPath, nil
}

// createShared stores the data dir's older key, or a new one.
func createShared(ctx context.Context, store SharedKey, keys Keys, dir string) (string, error) {
	pemKey, err := fileKey(dir, keys)
	if err != nil {
		return "", err
	}
	if pemKey == nil {
		if pemKey, err = NewKey(); err != nil {
			return "", err
		}
	}
	sealed, err := keys.Seal(string(pemKey), keyContext)
	if err != nil {
		return "", err
	}
	return store.CreateSigningKey(ctx, sealed)
}

// fileKey is the key of dir/registry-token.key, sealed or in clear, or nil
// when there is no such file.
func fileKey(dir string, keys Keys) ([]byte, error) {
	keyPath := filepath.Join(dir, KeyFile)
	raw, err := os.ReadFile(keyPath) // #nosec G304 -- the key file in the operator's data dir
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	if !strings.HasPrefix(string(raw), sealedPrefix) {
		return raw, nil
	}
	plain, err := keys.Open(strings.TrimSpace(string(raw)), keyContext)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return []byte(plain), nil
}

func removeFileKey(dir string) error {
	err := os.Remove(filepath.Join(dir, KeyFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("regauth: remove the older key file: %w", err)
	}
	return nil
}

// ResealShared seals the shared key again under keys' current key, for a
// rotation of the sealing key.
func ResealShared(ctx context.Context, store SharedKey, keys Keys, notFound func(error) bool) error {
	sealed, err := store.SigningKey(ctx)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("regauth: signing key: %w", err)
	}
	pemKey, err := keys.Open(sealed, keyContext)
	if err != nil {
		return fmt.Errorf("regauth: signing key: %w", err)
	}
	again, err := keys.Seal(pemKey, keyContext)
	if err != nil {
		return err
	}
	return store.PutSigningKey(ctx, again)
}
