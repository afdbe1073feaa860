package access

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"time"
)

// Token is an API token as stored: never the secret, only its hash.
type Token struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Account string `json:"account"`
	Org     string `json:"organization"`
	Role    Role   `json:"role"`
	// Hash is the SHA-256 of the secret part: the secret is 256 random
	// bits, so a fast hash is as good as a slow one here.
	Hash      string     `json:"hash,omitempty"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Public is t without its hash, for API answers.
func (t Token) Public() Token {
	t.Hash = ""
	return t
}

// Live reports whether t may be used at now.
func (t Token) Live(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// tokenPrefix marks Slipway tokens, so that secret scanners can find them.
const tokenPrefix = "slp_"

// tokenRE is slp_<id>_<secret>: the id finds the record, the secret is
// compared with its hash.
var tokenRE = regexp.MustCompile(`^slp_([0-9a-f]{20})_([A-Za-z0-9_-]{43})$`)

// NewSecret makes a token's text for id: slp_<id>_<256 random bits>.
func NewSecret(id string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Split returns a token text's id and secret, ok false when it is not a
// Slipway token at all.
func Split(text string) (id, secret string, ok bool) {
	m := tokenRE.FindStringSubmatch(text)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// HashSecret is what a token record keeps of its secret.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Matches compares secret with t's hash in constant time.
func (t Token) Matches(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(t.Hash)) == 1
}

// Principal is who a request comes from, with the role its token has.
type Principal struct {
	Account string
	TokenID string
	// Org and Role: the organization the token is scoped to and its
	// role there, already lowered to what the account's teams allow.
	Org  string
	Role Role
	// Site is the bootstrap admin: admin in every organization.
	Site bool
}

// RoleIn is p's role in org: None outside its organization.
func (p Principal) RoleIn(org string) Role {
	if p.Site {
		return Admin
	}
	if p.Org != org {
		return None
	}
	return p.Role
}

// Resolve is the principal of token t, given the organization it is scoped
// to: the token's role, lowered to its account's strongest team role there,
// so that leaving a team takes the token's power with it.
func Resolve(t Token, o Org) Principal {
	return Principal{Account: t.Account, TokenID: t.ID, Org: t.Org, Role: lesser(t.Role, o.RoleOf(t.Account))}
}

// TokenRequest is a token to issue.
type TokenRequest struct {
	Name    string `json:"name"`
	Org     string `json:"organization"`
	Account string `json:"account"`
	Role    Role   `json:"role"`
	// ExpiresIn is a Go duration such as 720h; empty never expires.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// MayIssue checks that p may issue req, where the account's team role in
// the organization is held. The bootstrap admin issues any token; an
// organization's admin issues tokens for its members up to their role;
// anyone issues tokens for themself up to their own token's role.
func MayIssue(p Principal, req TokenRequest, held Role) error {
	if !req.Role.Includes(Read) {
		return invalid("role: want read, write or admin, got %q", req.Role)
	}
	mine := p.Account == req.Account && p.RoleIn(req.Org).Includes(req.Role)
	if !p.Site && !p.RoleIn(req.Org).Includes(Admin) && !mine {
		return errForbidden
	}
	if !held.Includes(req.Role) {
		return invalid("role: %s holds %q in %s through its teams, less than %q; add it to a team first", req.Account, held, req.Org, req.Role)
	}
	return nil
}

// errForbidden is a request the principal's role does not allow.
var errForbidden = errors.New("forbidden: your token's role does not allow this")

// IsForbidden reports whether err is a refusal for too little role.
func IsForbidden(err error) bool { return errors.Is(err, errForbidden) }

// CheckName checks a token's name: what its holder calls it.
func CheckName(name string) error {
	if strings.TrimSpace(name) == "" || len(name) > 100 {
		return invalid("name: give the token a name of up to 100 characters, such as \"ci deploy\"")
	}
	return nil
}
