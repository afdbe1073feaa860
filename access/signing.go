package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// signingKeyEntry holds the registry token signing key, sealed. It lives
// here rather than in one process's data dir so that every Slipway process
// on the NATS signs and checks the same registry tokens and build passes:
// a worker mints a pass that the registry role accepts.
const signingKeyEntry = "registry.signing-key"

// SigningKey returns the sealed signing key, or ErrNotFound.
func (d *Directory) SigningKey(ctx context.Context) (string, error) {
	e, err := d.kv.Get(ctx, signingKeyEntry)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("registry signing key: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("registry signing key: %w", err)
	}
	return string(e.Value()), nil
}

// CreateSigningKey stores sealed unless a key is there already, and
// returns the one stored: when processes start at once, the first wins and
// all use its key.
func (d *Directory) CreateSigningKey(ctx context.Context, sealed string) (string, error) {
	_, err := d.kv.Create(ctx, signingKeyEntry, []byte(sealed))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return d.SigningKey(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("store registry signing key: %w", err)
	}
	return sealed, nil
}

// PutSigningKey replaces the sealed signing key: the same key sealed again
// under a new sealing key.
func (d *Directory) PutSigningKey(ctx context.Context, sealed string) error {
	if _, err := d.kv.Put(ctx, signingKeyEntry, []byte(sealed)); err != nil {
		return fmt.Errorf("store registry signing key: %w", err)
	}
	return nil
}
