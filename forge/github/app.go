package github

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v88/github"

	"github.com/slipway-build/slipway/forge"
)

// App authenticates as a GitHub App and hands out installation access
// tokens. Each token is narrowed to one repository and to the permissions
// a build needs, and cached per (installation, repository) until a minute
// before its expires_at, so many calls make one exchange. An App is safe for
// concurrent use. Its fields are read once, on first use; make it with
// NewApp to have the key checked up front.
type App struct {
	ID         int64  // the App ID (not the client ID)
	PrivateKey []byte // the PEM file GitHub generated for the app
	// APIURL is the API root as in forge.Conn: empty for api.github.com,
	// https://ghe.example.com/api/v3/ for GitHub Enterprise Server.
	APIURL string
	// HTTP carries the token exchanges (its Transport, and its Timeout as a
	// deadline per exchange) and goes into the Conns that Conn returns. Nil
	// means http.DefaultTransport with a 30 s timeout.
	HTTP *http.Client

	mu       sync.Mutex
	key      *rsa.PrivateKey
	base     string
	installs map[tokenKey]*ghinstallation.Transport
}

// tokenKey names one narrowed token: the same installation's token for
// another repository is a different token.
type tokenKey struct {
	installation int64
	repo         string // owner/name
}

// tokenPermissions are all a build needs from the host: clone (contents)
// and report commit statuses. An installation granted more (say, contents:
// write or administration) still hands out no more than this, so a leaked
// token cannot push or change settings.
func tokenPermissions() *gh.InstallationPermissions {
	read, write := "read", "write"
	return &gh.InstallationPermissions{Contents: &read, Statuses: &write}
}

// NewApp checks the app id, the PEM private key and the API URL, and
// returns an App.
func NewApp(id int64, privateKey []byte, apiURL string, hc *http.Client) (*App, error) {
	a := &App{ID: id, PrivateKey: privateKey, APIURL: apiURL, HTTP: hc}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.initLocked(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *App) initLocked() error {
	if a.key != nil {
		return nil
	}
	if a.ID <= 0 {
		return fmt.Errorf("github app: app id %d is not a positive number", a.ID)
	}
	key, err := parsePrivateKey(a.PrivateKey)
	if err != nil {
		return err
	}
	base, err := baseURL(a.APIURL)
	if err != nil {
		return err
	}
	a.key, a.base = key, base
	a.installs = make(map[tokenKey]*ghinstallation.Transport)
	return nil
}

// parsePrivateKey reads an RSA key from PEM, PKCS #1 ("RSA PRIVATE KEY", as
// GitHub generates it) or PKCS #8 ("PRIVATE KEY").
func parsePrivateKey(b []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("github app: the private key is not PEM: want the .pem file GitHub generated, starting with -----BEGIN RSA PRIVATE KEY----- " +
			"(if it came from an environment variable, check that its line breaks are real newlines, not \\n)")
	}
	if _, encrypted := block.Headers["DEK-Info"]; encrypted {
		return nil, errors.New("github app: the private key PEM is encrypted; give it unencrypted")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("github app: the RSA private key PEM does not parse: %w", err)
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("github app: the PKCS #8 private key PEM does not parse: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("github app: the private key is %T, GitHub Apps sign with RSA", k)
		}
		key = rk
	default:
		return nil, fmt.Errorf("github app: the PEM block is %q, want \"RSA PRIVATE KEY\" or \"PRIVATE KEY\"", block.Type)
	}
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("github app: the RSA private key is invalid: %w", err)
	}
	return key, nil
}

// transport returns the token source for one repository of an
// installation, made on first use. Each gets its own
// ghinstallation.AppsTransport: a Transport writes its AppsTransport's fields
// on every refresh, so sharing one would race.
func (a *App) transport(installationID int64, fullName string) (*ghinstallation.Transport, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.initLocked(); err != nil {
		return nil, err
	}
	key := tokenKey{installationID, fullName}
	if t, ok := a.installs[key]; ok {
		return t, nil
	}
	_, name, _ := strings.Cut(fullName, "/")
	rt := http.DefaultTransport
	if a.HTTP != nil && a.HTTP.Transport != nil {
		rt = a.HTTP.Transport
	}
	atr := ghinstallation.NewAppsTransportFromPrivateKey(rt, a.ID, a.key)
	atr.BaseURL = strings.TrimSuffix(a.base, "/")
	t := ghinstallation.NewFromAppsTransport(atr, installationID)
	// GitHub wants the bare repository name: an installation lives in one
	// account, so the owner is implied.
	t.InstallationTokenOptions = &gh.InstallationTokenOptions{
		Repositories: []string{name},
		Permissions:  tokenPermissions(),
	}
	a.installs[key] = t
	return t, nil
}

// InstallationToken returns an access token of the installation for the
// one repository fullName (owner/name), with contents: read and statuses:
// write only. It comes from the cache while it has more than a minute
// left, else from POST {APIURL}/app/installations/{id}/access_tokens signed
// with the app's JWT. A refusal (401/403) wraps forge.ErrUnauthorized.
func (a *App) InstallationToken(ctx context.Context, installationID int64, fullName string) (string, error) {
	if installationID <= 0 {
		return "", fmt.Errorf("github app: installation id %d is not a positive number", installationID)
	}
	if owner, name, ok := strings.Cut(fullName, "/"); !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("github app: repository %q is not owner/name", fullName)
	}
	t, err := a.transport(installationID, fullName)
	if err != nil {
		return "", err
	}
	// ghinstallation sends the exchange on the bare RoundTripper, so the
	// client's Timeout would not apply: bound it with the context instead.
	timeout := defaultTimeout
	if a.HTTP != nil && a.HTTP.Timeout > 0 {
		timeout = a.HTTP.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tok, err := t.Token(ctx)
	if err != nil {
		return "", exchangeError(installationID, err)
	}
	if tok == "" {
		return "", fmt.Errorf("github app: POST /app/installations/%d/access_tokens: the answer has no token", installationID)
	}
	return tok, nil
}

// Conn returns a forge.Conn for the repository fullName (owner/name) that
// authenticates as the installation.
func (a *App) Conn(ctx context.Context, installationID int64, fullName string) (forge.Conn, error) {
	tok, err := a.InstallationToken(ctx, installationID, fullName)
	if err != nil {
		return forge.Conn{}, err
	}
	return forge.Conn{APIURL: a.APIURL, FullName: fullName, Token: tok, HTTP: a.HTTP}, nil
}

// exchangeError turns a failed token exchange into an *APIError when GitHub
// answered. ghinstallation leaves that answer's body open: it is closed here.
func exchangeError(installationID int64, err error) error {
	endpoint := fmt.Sprintf("/app/installations/%d/access_tokens", installationID)
	var he *ghinstallation.HTTPError
	if !errors.As(err, &he) || he.Response == nil {
		return wrapRedacted("github app: POST "+endpoint, err, "")
	}
	resp := he.Response
	e := &APIError{Method: http.MethodPost, Endpoint: endpoint, StatusCode: resp.StatusCode}
	if resp.Body != nil {
		defer resp.Body.Close()
		var body struct {
			Message          string `json:"message"`
			DocumentationURL string `json:"documentation_url"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body) == nil {
			e.Message = clip(body.Message)
			if strings.Contains(body.DocumentationURL, "rate-limit") {
				e.RateLimited = true
			}
		}
	}
	if (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests) &&
		resp.Header.Get("X-RateLimit-Remaining") == "0" {
		e.RateLimited = true
	}
	return e
}
