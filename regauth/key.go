package regauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"

	"math/big"
	"os"
	"path/filepath"

	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
)

// The files in the data dir: the certificate the registry trusts, and the
// key file older Slipways kept (LoadShared moves it into the shared store).
const (
	KeyFile  = "registry-token.key"
	CertFile = "registry-token.crt"
)

// certLife is how long the self-signed certificate is valid. The registry
// trusts the key by its ID (kid), taken from the certificate; the
// certificate is made again from the key at every start.
const certLife = 10 * 365 * 24 * time.Hour

// Signer holds the token signing key (ECDSA P-256, ES256), its key ID as
// the registry computes it, and the self-signed certificate the registry is
// told to trust (rootcertbundle).
type Signer struct {
	key  *ecdsa.PrivateKey
	kid  string
	cert []byte // PEM
	pass []byte // the build passes' HMAC key, derived from key
}

// NewKey returns a fresh signing key as PEM (PKCS#8). ParseKey reads it.
// The bytes are what a sealed store would keep.
func NewKey() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("regauth: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("regauth: encode signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey makes a Signer of a PEM key from NewKey.
func ParseKey(raw []byte) (*Signer, error) {
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("regauth: signing key: not a PEM \"PRIVATE KEY\" block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("regauth: signing key: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("regauth: signing key: want an ECDSA P-256 key")
	}
	return newSigner(key)
}

func newSigner(key *ecdsa.PrivateKey) (*Signer, error) {
	cert, err := selfSigned(key)
	if err != nil {
		return nil, err
	}
	d, err := key.Bytes()
	if err != nil {
		return nil, fmt.Errorf("regauth: signing key: %w", err)
	}
	// A key of its own for the passes, so that an HMAC never uses the
	// signing key's bytes directly.
	pass, err := hkdf.Key(sha256.New, d, nil, "slipway registry build pass v1", 32)
	if err != nil {
		return nil, fmt.Errorf("regauth: derive pass key: %w", err)
	}
	return &Signer{key: key, kid: token.GetJWKThumbprint(&key.PublicKey), cert: cert, pass: pass}, nil
}

// selfSigned returns a PEM certificate of key's public key, signed by key.
func selfSigned(key *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("regauth: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "slipway registry token signer"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLife),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("regauth: self-signed certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// Certificate is the PEM certificate for the registry's rootcertbundle.
func (s *Signer) Certificate() []byte { return s.cert }

// KeyID is the JWT "kid" header of the tokens: the JWK thumbprint of the
// public key, which is how distribution looks up a rootcertbundle key when
// a token carries no certificate chain (x5c).
func (s *Signer) KeyID() string { return s.kid }

// Keys seal the signing key (package seal's Keyring): the key can mint any
// token, so it is a secret at rest like the others.
type Keys interface {
	Seal(plain, context string) (string, error)
	Open(sealed, context string) (string, error)
}

// keyContext binds the sealed key to its purpose.
const keyContext = "registry/token-key"

// sealedPrefix starts a sealed text (package seal's format).
const sealedPrefix = "sealed:"

// WriteCert writes the certificate to dir/registry-token.crt and returns
// its path, for the registry's rootcertbundle.
func (s *Signer) WriteCert(dir string) (string, error) {
	certPath := filepath.Join(dir, CertFile)
	if err := os.WriteFile(certPath, s.cert, 0o600); err != nil {
		return "", fmt.Errorf("regauth: write certificate: %w", err)
	}
	return certPath, nil
}
