package regauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/golang-jwt/jwt/v4"
)

// TokenTTL is how long a registry token lives: a client asks again for
// each new scope anyway, and a revoked API token stops working this soon.
const TokenTTL = 5 * time.Minute

// Server is the registry's token service (GET /v2/token, and the OAuth2
// password form POST /v2/token that newer clients try first). It signs a
// token for any caller: what the token grants depends on who asks.
type Server struct {
	Signer *Signer
	Access Access
	// Service is the registry's service name (its auth "service" setting,
	// the JWT audience); Issuer is its "issuer" setting.
	Service string
	Issuer  string
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Pass mints a build's credentials: user and secret that this server takes
// as Basic auth for pull and push on repository ("acme/app") of org, and
// whatever Access grants the account Account{Name: "build", Org: org,
// Role: "read", Push: repository} elsewhere, until ttl has passed. Nothing
// is stored: the secret carries org, repository and expiry under an HMAC.
func (s *Server) Pass(org, repository string, ttl time.Duration) (user, secret string) {
	return PassUser, s.Signer.mintPass(passBody{Org: org, Repo: repository, Exp: s.now().Add(ttl).Unix()})
}

// DeletePass is a Pass that may also delete in repository, for removing a
// closed pull request's tags; it is minted only for that, short-lived,
// and still reaches no other repository.
func (s *Server) DeletePass(org, repository string, ttl time.Duration) (user, secret string) {
	return PassUser, s.Signer.mintPass(passBody{Org: org, Repo: repository, Exp: s.now().Add(ttl).Unix(), Del: true})
}

// ReadPass is a pass that only pulls from repository: the API reads the
// images it describes with one, short-lived, so that showing an image
// never needs the right to push it.
func (s *Server) ReadPass(org, repository string, ttl time.Duration) (user, secret string) {
	return PassUser, s.Signer.mintPass(passBody{Org: org, Repo: repository, Exp: s.now().Add(ttl).Unix(), Read: true})
}

// BrowsePass mints the API's own credentials for its registry browser
// (GET /api/v1/images): the catalog, and pull on every repository, until
// ttl has passed; never push or delete. The API decides what each of its
// callers may see; the pass never leaves the process that minted it.
func (s *Server) BrowsePass(ttl time.Duration) (user, secret string) {
	return PassUser, s.Signer.mintPass(passBody{Exp: s.now().Add(ttl).Unix(), Browse: true})
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// maxForm bounds the POST form: scopes and credentials are small.
const maxForm = 64 << 10

// request is a token request, from the query (GET) or the form (POST).
type request struct {
	service string
	scopes  []string
	user    string
	secret  string
	hasAuth bool
	account string
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req request
	switch r.Method {
	case http.MethodGet:
		req = queryRequest(r)
	case http.MethodPost:
		var ok bool
		if req, ok = formRequest(w, r); !ok {
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "use GET or POST")
		return
	}
	if req.service != "" && req.service != s.Service {
		writeError(w, http.StatusBadRequest, "DENIED", "unknown service")
		return
	}
	s.answer(w, r, req)
}

// answer signs in the request's sender and answers its token.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, req request) {
	who, err := s.login(r.Context(), req)
	if err != nil {
		if !errors.Is(err, ErrDenied) && !errors.Is(err, errPass) {
			s.logger().Error("registry token: login", "user", req.user, "err", err)
			writeError(w, http.StatusInternalServerError, "UNKNOWN", "cannot check the credentials now")
			return
		}
		// The user name only: never the secret.
		s.logger().Warn("registry token: credentials refused", "user", req.user, "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Basic realm="slipway registry"`)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication failed")
		return
	}
	access, err := s.grant(r.Context(), who, req.scopes)
	if err != nil {
		s.logger().Error("registry token: access", "user", who.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "cannot decide access now")
		return
	}
	if req.hasAuth && len(access) > 0 && grantsNothing(access) {
		// Logged in, but may do none of it: 403, so that the client
		// says "denied" instead of asking for a login again.
		s.logger().Info("registry token: nothing allowed", "user", who.Name, "org", who.Org, "asked", req.scopes)
		writeError(w, http.StatusForbidden, "DENIED", "requested access to the resource is denied")
		return
	}
	now := s.now()
	tok, err := s.sign(who, access, now)
	if err != nil {
		s.logger().Error("registry token: sign", "err", err)
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "cannot sign a token")
		return
	}
	s.logger().Debug("registry token issued", "user", who.Name, "org", who.Org, "access", describe(access))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token": tok, "access_token": tok, "expires_in": int(TokenTTL / time.Second),
		"issued_at": now.UTC().Format(time.RFC3339),
	})
}

func queryRequest(r *http.Request) request {
	q := r.URL.Query()
	req := request{service: q.Get("service"), account: q.Get("account")}
	for _, sc := range q["scope"] {
		// Some clients put several scopes in one parameter.
		req.scopes = append(req.scopes, strings.Fields(sc)...)
	}
	req.user, req.secret, req.hasAuth = r.BasicAuth()
	if !req.hasAuth && r.Header.Get("Authorization") != "" {
		// Credentials of another kind: refuse rather than answer anonymously.
		req.hasAuth = true
	}
	return req
}

// formRequest reads the OAuth2 form (docker/distribution's "oauth" spec):
// only grant_type=password; no refresh tokens are handed out.
func formRequest(w http.ResponseWriter, r *http.Request) (request, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request")
		return request{}, false
	}
	f := r.PostForm
	if f.Get("grant_type") != "password" {
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return request{}, false
	}
	req := request{service: f.Get("service"), scopes: strings.Fields(f.Get("scope")),
		user: f.Get("username"), secret: f.Get("password"), hasAuth: true}
	return req, true
}

// login returns who sent the request: a build pass, an Access login, or
// anonymous when no credentials came.
func (s *Server) login(ctx context.Context, req request) (Account, error) {
	if !req.hasAuth {
		return Account{}, nil
	}
	if req.user == "" || req.secret == "" || (req.account != "" && req.account != req.user) {
		return Account{}, ErrDenied
	}
	if req.user == PassUser {
		return s.Signer.checkPass(req.secret, s.now())
	}
	who, err := s.Access.Login(ctx, req.user, req.secret)
	if err != nil {
		return Account{}, fmt.Errorf("login %s: %w", req.user, err)
	}
	return who, nil
}

// grantsNothing reports whether no scope got any action.
func grantsNothing(access []*token.ResourceActions) bool {
	for _, ra := range access {
		if len(ra.Actions) > 0 {
			return false
		}
	}
	return true
}

// repoName is distribution's repository path grammar.
var repoName = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

// catalogScope is the scope of the registry's catalog (/v2/_catalog).
const catalogScope = "registry:catalog:*"

// grant returns, per repository scope asked for, the actions asked for
// that who may do; the catalog goes to the browse pass alone, other scope
// types get nothing.
func (s *Server) grant(ctx context.Context, who Account, scopes []string) ([]*token.ResourceActions, error) {
	access := []*token.ResourceActions{}
	for _, sc := range scopes {
		if sc == catalogScope && who.Browse {
			access = append(access, &token.ResourceActions{Type: "registry", Name: "catalog", Actions: []string{"*"}})
			continue
		}
		typ, rest, _ := strings.Cut(sc, ":")
		i := strings.LastIndexByte(rest, ':')
		if typ != "repository" || i < 0 || !repoName.MatchString(rest[:i]) || len(rest[:i]) > 255 {
			continue
		}
		repo := rest[:i]
		allowed, err := s.actions(ctx, who, repo)
		if err != nil {
			return nil, err
		}
		ra := &token.ResourceActions{Type: typ, Name: repo, Actions: []string{}}
		for _, a := range strings.Split(rest[i+1:], ",") {
			if slices.Contains(allowed, a) && !slices.Contains(ra.Actions, a) {
				ra.Actions = append(ra.Actions, a)
			}
		}
		access = append(access, ra)
	}
	return access, nil
}

// actions are what who may do on repo. A build's pass pushes to its own
// repository only, whatever Access says of others; the browse pass pulls
// every repository.
func (s *Server) actions(ctx context.Context, who Account, repo string) ([]string, error) {
	if who.Pull != "" {
		if who.Pull == repo {
			return []string{Pull}, nil
		}
		return nil, nil
	}
	if who.Browse {
		return []string{Pull}, nil
	}
	if who.Push != "" && who.Push == repo {
		if who.Delete {
			return []string{Pull, Push, Delete}, nil
		}
		return []string{Pull, Push}, nil
	}
	allowed, err := s.Access.Actions(ctx, who, repo)
	if err != nil {
		return nil, fmt.Errorf("actions of %q on %s: %w", who.Name, repo, err)
	}
	if who.Push != "" {
		allowed = slices.DeleteFunc(slices.Clone(allowed), func(a string) bool { return a != Pull })
	}
	return allowed, nil
}

// sign makes the JWT distribution's token access controller accepts:
// ES256, with kid the JWK thumbprint of the key its rootcertbundle holds.
func (s *Server) sign(who Account, access []*token.ResourceActions, now time.Time) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": s.Issuer, "sub": who.Name, "aud": s.Service,
		"exp": now.Add(TokenTTL).Unix(), "nbf": now.Add(-10 * time.Second).Unix(), "iat": now.Unix(),
		"jti": hex.EncodeToString(jti), "access": access,
	})
	tok.Header["kid"] = s.Signer.kid
	signed, err := tok.SignedString(s.Signer.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// describe is the access claim as text for the log.
func describe(access []*token.ResourceActions) string {
	parts := make([]string, 0, len(access))
	for _, a := range access {
		parts = append(parts, a.Name+":"+strings.Join(a.Actions, ","))
	}
	return strings.Join(parts, " ")
}

// writeError answers in the registry API's error format, which docker and
// go-containerregistry print.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// writeOAuthError answers in RFC 6749's error format.
func writeOAuthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}
