package regauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PassUser is the user name of every build pass; a login with another
// name goes to Access.Login.
const PassUser = "slipway-build"

// passPrefix starts a pass's secret, to tell it at a glance (in a leaked
// log, in a secret scanner) from an API token.
const passPrefix = "slpb1."

// passBody is what a pass carries; its MAC covers these exact bytes.
type passBody struct {
	Org  string `json:"o"`
	Repo string `json:"r"`
	Exp  int64  `json:"e"` // Unix seconds
	// Del lets the pass delete in its repository too; omitted otherwise,
	// so a build's pass is the same bytes it always was.
	Del bool `json:"d,omitempty"`
	// Read makes the pass pull from its repository and do nothing else:
	// the API reading an image it shows. Omitted otherwise.
	Read bool `json:"ro,omitempty"`
	// Browse makes the API's browse pass: the catalog and pull on every
	// repository, no Repo to push to.
	Browse bool `json:"b,omitempty"`
}

// mintPass returns the secret of a pass carrying body.
func (s *Signer) mintPass(body passBody) string {
	raw, _ := json.Marshal(body) // a struct of strings, an int and bools cannot fail
	enc := base64.RawURLEncoding
	return passPrefix + enc.EncodeToString(raw) + "." + enc.EncodeToString(s.passMAC(raw))
}

func (s *Signer) passMAC(body []byte) []byte {
	m := hmac.New(sha256.New, s.pass)
	m.Write(body)
	return m.Sum(nil)
}

// errPass is any pass that is not valid now: forged, altered, expired.
var errPass = errors.New("invalid or expired build pass")

// checkPass returns the account of a pass's secret if it is valid at now.
func (s *Signer) checkPass(secret string, now time.Time) (Account, error) {
	rest, ok := strings.CutPrefix(secret, passPrefix)
	b64, mac64, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return Account{}, errPass
	}
	enc := base64.RawURLEncoding
	body, err := enc.DecodeString(b64)
	mac, err2 := enc.DecodeString(mac64)
	// hmac.Equal compares in constant time: the MAC is the secret part.
	if err != nil || err2 != nil || !hmac.Equal(mac, s.passMAC(body)) {
		return Account{}, errPass
	}
	var p passBody
	if err := json.Unmarshal(body, &p); err != nil {
		return Account{}, fmt.Errorf("%w: %w", errPass, err)
	}
	if (p.Repo == "") == !p.Browse || !now.Before(time.Unix(p.Exp, 0)) {
		return Account{}, errPass // a pass pushes to one repository, or browses
	}
	if p.Browse {
		return Account{Name: "browser", Role: "read", Browse: true}, nil
	}
	if p.Read {
		return Account{Name: "reader", Org: p.Org, Pull: p.Repo}, nil
	}
	return Account{Name: "build", Org: p.Org, Role: "read", Push: p.Repo, Delete: p.Del}, nil
}
