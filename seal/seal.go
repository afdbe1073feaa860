// Package seal encrypts the secrets Slipway keeps at rest (repository
// tokens, SSH keys, webhook and hook secrets) with AES-256-GCM, so that the
// NATS files under the data dir hold no secret in the clear.
//
// A sealed value is text: "sealed:v1:<key id>:<base64url(nonce||ciphertext)>".
// The key id names the key that sealed it, so a keyring holding the new key
// and the old ones opens every value while rotation re-seals them. Each value
// is bound to a context string (its record and field, such as
// "repo/<id>/token") as GCM's associated data: a sealed value copied into
// another field or record does not open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Prefix starts every sealed value; a value without it is plaintext
// written by a Slipway older than sealing.
const Prefix = "sealed:"

const (
	version  = "v1"
	keySize  = 32 // AES-256
	idLength = 8  // hex characters of the key's SHA-256
)

// ErrUnknownKey is returned by Open for a value sealed under a key the
// keyring does not hold.
var ErrUnknownKey = errors.New("sealed under a key this keyring does not hold")

// Keyring holds the keys that open sealed values; the first one seals. It
// is immutable, so it may be shared by any number of goroutines; rotation
// makes a new Keyring.
type Keyring struct {
	keys []key
}

type key struct {
	id   string
	raw  []byte
	aead cipher.AEAD
}

// New makes a keyring of 32-byte keys, the first one primary. The same key
// given twice is kept once.
func New(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("a keyring needs at least one key")
	}
	kr := &Keyring{}
	seen := map[string]bool{}
	for i, raw := range keys {
		k, err := newKey(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if !seen[k.id] {
			seen[k.id] = true
			kr.keys = append(kr.keys, k)
		}
	}
	return kr, nil
}

func newKey(raw []byte) (key, error) {
	if len(raw) != keySize {
		return key{}, fmt.Errorf("want %d bytes, got %d", keySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, fmt.Errorf("gcm: %w", err)
	}
	return key{id: KeyID(raw), raw: append([]byte(nil), raw...), aead: aead}, nil
}

// Generate returns a new random 32-byte key.
func Generate() ([]byte, error) {
	k := make([]byte, keySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// KeyID names a key without revealing it: the first 8 hex characters of
// its SHA-256.
func KeyID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:idLength]
}

// PrimaryID is the id of the key that seals.
func (kr *Keyring) PrimaryID() string { return kr.keys[0].id }

// IDs are the ids of every key, the primary first.
func (kr *Keyring) IDs() []string {
	ids := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		ids[i] = k.id
	}
	return ids
}

// Keys are the raw keys, the primary first, for writing the key file.
func (kr *Keyring) Keys() [][]byte {
	out := make([][]byte, len(kr.keys))
	for i, k := range kr.keys {
		out[i] = append([]byte(nil), k.raw...)
	}
	return out
}

// Seal encrypts plain under the primary key, bound to context (the
// record and field it belongs to). An empty plain seals to "": no secret.
func (kr *Keyring) Seal(plain, context string) (string, error) {
	if plain == "" {
		return "", nil
	}
	k := kr.keys[0]
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal %s: nonce: %w", context, err)
	}
	box := k.aead.Seal(nonce, nonce, []byte(plain), []byte(context))
	return Prefix + version + ":" + k.id + ":" + base64.RawURLEncoding.EncodeToString(box), nil
}

// Open decrypts a value Seal made with the same context. A value without
// the sealed prefix is plaintext from an older Slipway and is returned as
// it is. Errors name the key id and context, never the value.
func (kr *Keyring) Open(s, context string) (string, error) {
	if !IsSealed(s) {
		return s, nil
	}
	id, box, err := parse(s)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", context, err)
	}
	for _, k := range kr.keys {
		if k.id != id {
			continue
		}
		n := k.aead.NonceSize()
		if len(box) < n+k.aead.Overhead() {
			return "", fmt.Errorf("open %s: sealed value under key %s is truncated", context, id)
		}
		plain, err := k.aead.Open(nil, box[:n], box[n:], []byte(context))
		if err != nil {
			return "", fmt.Errorf("open %s: value sealed under key %s was altered or belongs to another field", context, id)
		}
		return string(plain), nil
	}
	return "", fmt.Errorf("open %s: key %s: %w (keyring holds %s)", context, id, ErrUnknownKey, strings.Join(kr.IDs(), ", "))
}

// IsSealed reports whether s is a sealed value rather than plaintext.
func IsSealed(s string) bool { return strings.HasPrefix(s, Prefix) }

// SealedWith returns the id of the key that sealed s, "" for plaintext or
// a malformed value.
func SealedWith(s string) string {
	if !IsSealed(s) {
		return ""
	}
	id, _, err := parse(s)
	if err != nil {
		return ""
	}
	return id
}

func parse(s string) (id string, box []byte, err error) {
	parts := strings.SplitN(strings.TrimPrefix(s, Prefix), ":", 3)
	if len(parts) != 3 || parts[0] != version {
		return "", nil, fmt.Errorf("not a %s%s value", Prefix, version)
	}
	box, err = base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", nil, fmt.Errorf("sealed value under key %s is not base64url", parts[1])
	}
	return parts[1], box, nil
}

// Ephemeral is a keyring of one new key held only in memory, for tests and
// for values that need not outlive the process.
func Ephemeral() *Keyring {
	k, err := Generate()
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	kr, err := New(k)
	if err != nil {
		panic(err) // a 32-byte key always makes a keyring
	}
	return kr
}
