// Package deploy delivers Slipway's deploy webhooks: it builds the payload,
// signs it the Standard Webhooks way (https://www.standardwebhooks.com) so
// receivers can use any off-the-shelf verifier, sends single attempts and
// says when to retry.
package deploy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names from the Standard Webhooks spec.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a Standard Webhooks symmetric secret.
const SecretPrefix = "whsec_"

// Error is a signing or verification failure. It is a string type so the
// sentinels below can be constants, matched with errors.Is.
type Error string

func (e Error) Error() string { return string(e) }

// Failures that callers (and receivers answering 4xx) tell apart.
const (
	ErrBadSecret     Error = "bad webhook secret" // #nosec G101 -- an error message, not a secret
	ErrBadMessageID  Error = "bad message id"
	ErrMissingHeader Error = "missing header"
	ErrBadTimestamp  Error = "bad timestamp"
	ErrTooOld        Error = "message timestamp too old"
	ErrTooNew        Error = "message timestamp too new"
	ErrNoMatch       Error = "no matching signature"
)

// GenerateSecret returns a new whsec_ secret with 24 random bytes, the
// spec's minimum key size.
func GenerateSecret() string {
	key := make([]byte, 24)
	// crypto/rand.Read never returns an error; it crashes the program instead.
	rand.Read(key)
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// Sign returns the webhook-signature header value for one message.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", fmt.Errorf("sign webhook: %w", err)
	}
	// The id is joined to the timestamp with '.', so a '.' in it would let
	// one signed message pass for another.
	if msgID == "" || strings.Contains(msgID, ".") {
		return "", fmt.Errorf("sign webhook: %w %q: must be non-empty and contain no '.'", ErrBadMessageID, msgID)
	}
	mac := signature(key, msgID, strconv.FormatInt(ts.Unix(), 10), body)
	return "v1," + base64.StdEncoding.EncodeToString(mac), nil
}

// Verify checks a received webhook as a receiver would: the headers must be
// present, the timestamp within tolerance of now (to stop replays), and one
// of the v1 signatures must match the body.
func Verify(secret string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return fmt.Errorf("verify webhook: %w", err)
	}
	for _, name := range []string{HeaderID, HeaderTimestamp, HeaderSignature} {
		if h.Get(name) == "" {
			return fmt.Errorf("verify webhook: %w %s", ErrMissingHeader, name)
		}
	}
	msgID, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if err := checkTimestamp(tsText, tolerance, now); err != nil {
		return fmt.Errorf("verify webhook: %w", err)
	}
	want := signature(key, msgID, tsText, body)
	for _, entry := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue // other schemes (v1a) or junk: another entry may still match
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("verify webhook: %w", ErrNoMatch)
}

func checkTimestamp(text string, tolerance time.Duration, now time.Time) error {
	secs, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return fmt.Errorf("%w %q: want unix seconds", ErrBadTimestamp, text)
	}
	age := now.Sub(time.Unix(secs, 0))
	switch {
	case age > tolerance:
		return fmt.Errorf("%w: sent %s ago, tolerance %s", ErrTooOld, age.Truncate(time.Second), tolerance)
	case age < -tolerance:
		return fmt.Errorf("%w: sent %s in the future, tolerance %s", ErrTooNew, (-age).Truncate(time.Second), tolerance)
	}
	return nil
}

func decodeSecret(secret string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: missing %q prefix", ErrBadSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSecret, err)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrBadSecret)
	}
	return key, nil
}

func signature(key []byte, msgID, ts string, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + ts + "."))
	mac.Write(body)
	return mac.Sum(nil)
}
