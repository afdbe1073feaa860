package github

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
)

// recorded is one request the local GitHub API server received.
type recorded struct {
	Method string
	Path   string // as received, including any /api/v3 prefix
	Header http.Header
	Body   []byte
}

// fakeGitHub is a local httptest server implementing the GitHub REST
// endpoints Slipway uses, as documented on docs.github.com:
//
//	POST   /repos/{owner}/{repo}/statuses/{sha}            201
//	GET    /repos/{owner}/{repo}                           200
//	POST   /repos/{owner}/{repo}/hooks                     201
//	DELETE /repos/{owner}/{repo}/hooks/{hook_id}           204
//	POST   /app/installations/{installation_id}/access_tokens 201 (app JWT)
//
// It records every request. Repository endpoints want
// "Authorization: Bearer <token>" with a known token, else 401.
type fakeGitHub struct {
	t      *testing.T
	srv    *httptest.Server
	prefix string

	appID  int64
	appPub *rsa.PublicKey

	mu     sync.Mutex
	reqs   []recorded
	tokens map[string]bool // accepted bearer tokens
	// fail, when set, answers every repository endpoint.
	fail *cannedAnswer
	// tokenTTL gives the lifetime of the n-th (1-based) issued
	// installation token; nil means one hour.
	tokenTTL   func(n int) time.Duration
	exchanges  map[int64]int // installation id → token exchanges
	issued     int
	jwtRejects []string
	// exchangeDelay, when set, blocks token exchanges until it is closed.
	exchangeDelay chan struct{}
}

type cannedAnswer struct {
	status int
	header map[string]string
	body   string
}

// newFakeGitHub starts the local server; prefix is "" (github.com layout)
// or "/api/v3" (GitHub Enterprise Server layout).
func newFakeGitHub(t *testing.T, prefix string) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{t: t, prefix: prefix, tokens: map[string]bool{}, exchanges: map[int64]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /repos/{owner}/{repo}/statuses/{sha}", f.repoAuth(f.createStatus))
	mux.HandleFunc("GET /repos/{owner}/{repo}", f.repoAuth(f.getRepo))
	mux.HandleFunc("POST /repos/{owner}/{repo}/hooks", f.repoAuth(f.createHook))
	mux.HandleFunc("DELETE /repos/{owner}/{repo}/hooks/{id}", f.repoAuth(f.deleteHook))
	mux.HandleFunc("POST /app/installations/{id}/access_tokens", f.accessToken)
	var h http.Handler = mux
	if prefix != "" {
		h = http.StripPrefix(prefix, mux)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		f.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		f.mu.Lock()
		if f.exchangeDelay != nil {
			select {
			case <-f.exchangeDelay:
			default:
				close(f.exchangeDelay)
			}
		}
		f.mu.Unlock()
		f.srv.Close()
	})
	return f
}

// apiURL is the API root a Conn or App should use for this server.
func (f *fakeGitHub) apiURL() string { return f.srv.URL + f.prefix }

func (f *fakeGitHub) allowToken(tok string) {
	f.mu.Lock()
	f.tokens[tok] = true
	f.mu.Unlock()
}

func (f *fakeGitHub) setFail(a *cannedAnswer) {
	f.mu.Lock()
	f.fail = a
	f.mu.Unlock()
}

func (f *fakeGitHub) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeGitHub) only(t *testing.T) recorded {
	t.Helper()
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("the local GitHub API server received %d requests, want 1: %+v", len(reqs), reqs)
	}
	return reqs[0]
}

func (f *fakeGitHub) exchangeCount(installationID int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exchanges[installationID]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeGitHub) repoAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		fail := f.fail
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		known := ok && f.tokens[tok]
		f.mu.Unlock()
		if fail != nil {
			for k, v := range fail.header {
				w.Header().Set(k, v)
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(fail.status)
			_, _ = io.WriteString(w, fail.body)
			return
		}
		if !known {
			writeJSON(w, http.StatusUnauthorized, map[string]string{
				"message":           "Bad credentials",
				"documentation_url": "https://docs.github.com/rest",
			})
			return
		}
		next(w, r)
	}
}

func (f *fakeGitHub) createStatus(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"})
		return
	}
	switch in["state"] {
	case "pending", "success", "failure", "error":
	default:
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
			"errors": []map[string]string{{"resource": "Status", "field": "state", "code": "custom", "message": "state is not included in the list"}}})
		return
	}
	if d, ok := in["description"].(string); ok && len([]rune(d)) > 140 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
			"errors": []map[string]string{{"resource": "Status", "field": "description", "code": "custom", "message": "description is too long (maximum is 140 characters)"}}})
		return
	}
	out := map[string]any{"id": 1, "url": "https://api.github.com/repos/x/y/statuses/" + r.PathValue("sha")}
	for k, v := range in {
		out[k] = v
	}
	writeJSON(w, http.StatusCreated, out)
}

func (f *fakeGitHub) getRepo(w http.ResponseWriter, r *http.Request) {
	owner, repo := r.PathValue("owner"), r.PathValue("repo")
	writeJSON(w, http.StatusOK, map[string]any{
		"id":             1296269,
		"name":           repo,
		"full_name":      owner + "/" + repo,
		"private":        true,
		"default_branch": "trunk",
		"clone_url":      "https://github.com/" + owner + "/" + repo + ".git",
		"ssh_url":        "git@github.com:" + owner + "/" + repo + ".git",
		"html_url":       "https://github.com/" + owner + "/" + repo,
	})
}

const fakeHookID = 12345678901 // above 2^32: the id must stay int64

func (f *fakeGitHub) createHook(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
		Events []string          `json:"events"`
		Active bool              `json:"active"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Config["url"] == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
		return
	}
	cfg := map[string]string{"url": in.Config["url"], "content_type": in.Config["content_type"], "insecure_ssl": in.Config["insecure_ssl"]}
	if in.Config["secret"] != "" {
		cfg["secret"] = "********" // GitHub never echoes the secret
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"type": "Repository", "id": int64(fakeHookID), "name": "web", "active": in.Active,
		"events": in.Events, "config": cfg,
		"url": "https://api.github.com/repos/" + r.PathValue("owner") + "/" + r.PathValue("repo") + "/hooks/" + strconv.Itoa(fakeHookID),
	})
}

func (f *fakeGitHub) deleteHook(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != strconv.Itoa(fakeHookID) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// accessToken verifies the app JWT (RS256, iss = app id, signed with the
// app's key, current iat/exp at most 10 minutes apart) and issues a token.
func (f *fakeGitHub) accessToken(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	delay := f.exchangeDelay
	f.mu.Unlock()
	if delay != nil {
		<-delay
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	if reason := f.checkAppJWT(r.Header.Get("Authorization")); reason != "" {
		f.mu.Lock()
		f.jwtRejects = append(f.jwtRejects, reason)
		f.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]string{
			"message":           "A JSON web token could not be decoded",
			"documentation_url": "https://docs.github.com/rest",
		})
		return
	}
	f.mu.Lock()
	f.exchanges[id]++
	f.issued++
	n := f.issued
	ttl := time.Hour
	if f.tokenTTL != nil {
		ttl = f.tokenTTL(n)
	}
	tok := fmt.Sprintf("ghs_fake_installation_%d_%d", id, n)
	f.tokens[tok] = true
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":                tok,
		"expires_at":           time.Now().Add(ttl).UTC().Format(time.RFC3339),
		"permissions":          map[string]string{"statuses": "write", "metadata": "read"},
		"repository_selection": "all",
	})
}

func (f *fakeGitHub) checkAppJWT(authz string) string {
	raw, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok {
		return "no Bearer authorization: " + authz
	}
	if f.appPub == nil {
		return "the server knows no app key"
	}
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
		if tok.Method.Alg() != "RS256" {
			return nil, fmt.Errorf("alg %s, want RS256", tok.Method.Alg())
		}
		return f.appPub, nil
	}, jwt.WithValidMethods([]string{"RS256"}))
	if err != nil {
		return "jwt: " + err.Error()
	}
	if claims.Issuer != strconv.FormatInt(f.appID, 10) {
		return fmt.Sprintf("iss %q, want %d", claims.Issuer, f.appID)
	}
	if claims.IssuedAt == nil || claims.ExpiresAt == nil {
		return "iat or exp missing"
	}
	now := time.Now()
	if claims.IssuedAt.After(now.Add(time.Minute)) {
		return "iat in the future"
	}
	if !claims.ExpiresAt.After(now) || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > 10*time.Minute {
		return "exp expired or more than 10 minutes after iat"
	}
	return ""
}

// newRSAKey makes a 2048-bit key and its PKCS #1 PEM, as GitHub hands out.
func newRSAKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}
