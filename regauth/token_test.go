package regauth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// tokenResponse is the token server's answer with its JWT's claims.
type tokenResponse struct {
	status    int
	expiresIn int
	access    string // "name:actions name:actions"
	sameToken bool   // token and access_token agree
	kid       string
}

func ask(t *testing.T, srv *Server, req *http.Request) tokenResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	out := tokenResponse{status: rec.Code}
	if rec.Code != http.StatusOK {
		return out
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339, body.IssuedAt); err != nil {
		t.Errorf("issued_at %q: %v", body.IssuedAt, err)
	}
	out.expiresIn, out.sameToken = body.ExpiresIn, body.Token == body.AccessToken
	parts := strings.Split(body.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", body.Token)
	}
	var header struct{ Alg, Kid string }
	var claims struct {
		Access []struct {
			Type, Name string
			Actions    []string
		}
		Aud, Iss string
		Exp, Iat int64
	}
	decode(t, parts[0], &header)
	decode(t, parts[1], &claims)
	if header.Alg != "ES256" || claims.Aud != testService || claims.Iss != testIssuer || claims.Exp-claims.Iat != 300 {
		t.Errorf("header %+v, claims %+v", header, claims)
	}
	out.kid = header.Kid
	var acc []string
	for _, a := range claims.Access {
		acc = append(acc, a.Name+":"+strings.Join(a.Actions, ","))
	}
	out.access = strings.Join(acc, " ")
	return out
}

func decode(t *testing.T, part string, v any) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

func get(query, user, pass string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v2/token?"+query, nil)
	if user != "" {
		r.SetBasicAuth(user, pass)
	}
	return r
}

func TestTokenClaims(t *testing.T) {
	srv := &Server{Signer: mustSigner(t), Access: testAccess, Service: testService, Issuer: testIssuer}
	const svc = "service=" + testService + "&"
	form := url.Values{"grant_type": {"password"}, "username": {"ada"}, "password": {"tok-ada"},
		"service": {testService}, "scope": {"repository:acme/app:pull,push repository:other/app:pull"}}
	post := httptest.NewRequest(http.MethodPost, "/v2/token", strings.NewReader(form.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	badPost := httptest.NewRequest(http.MethodPost, "/v2/token", strings.NewReader(strings.Replace(form.Encode(), "tok-ada", "nope", 1)))
	badPost.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	refresh := httptest.NewRequest(http.MethodPost, "/v2/token", strings.NewReader("grant_type=refresh_token&refresh_token=x"))
	refresh.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	for _, tc := range []struct {
		name   string
		req    *http.Request
		status int
		access string
	}{
		{"read asks pull,push,delete: gets pull", get(svc+"scope=repository:acme/app:pull,push,delete", "rita", "tok-rita"), 200, "acme/app:pull"},
		{"admin gets only what it asks", get(svc+"scope=repository:acme/app:pull", "ada", "tok-ada"), 200, "acme/app:pull"},
		{"two scopes", get(svc+"scope=repository:acme/app:push,pull,delete&scope=repository:other/x:pull", "ada", "tok-ada"), 200, "acme/app:push,pull,delete other/x:"},
		{"anonymous on public and private", get(svc+"scope=repository:acme/public:pull,push&scope=repository:acme/app:pull", "", ""), 200, "acme/public:pull acme/app:"},
		{"login without scope", get(svc+"account=rita", "rita", "tok-rita"), 200, ""},
		{"login without scope, wrong token", get(svc+"account=rita", "rita", "tok-ada"), 401, ""},
		{"account differs from the user", get(svc+"account=ada", "rita", "tok-rita"), 401, ""},
		{"bearer instead of basic", func() *http.Request {
			r := get(svc, "", "")
			r.Header.Set("Authorization", "Bearer abc")
			return r
		}(), 401, ""},
		{"catalog is never granted", get(svc+"scope=registry:catalog:*", "ada", "tok-ada"), 200, ""},
		{"invalid repository name", get(svc+"scope=repository:Acme/App:pull", "ada", "tok-ada"), 200, ""},
		{"another service", get("service=elsewhere&scope=repository:acme/app:pull", "ada", "tok-ada"), 400, ""},
		{"OAuth2 password form", post, 200, "acme/app:pull,push other/app:"},
		{"OAuth2 password form, wrong password", badPost, 401, ""},
		{"OAuth2 refresh grant", refresh, 400, ""},
		{"PUT", httptest.NewRequest(http.MethodPut, "/v2/token", nil), 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ask(t, srv, tc.req)
			if got.status != tc.status {
				t.Fatalf("status %d, want %d", got.status, tc.status)
			}
			if got.status != 200 {
				return
			}
			if got.access != tc.access {
				t.Errorf("access %q, want %q", got.access, tc.access)
			}
			if got.expiresIn != 300 || !got.sameToken || got.kid != srv.Signer.KeyID() {
				t.Errorf("expires_in %d, token == access_token %v, kid %q", got.expiresIn, got.sameToken, got.kid)
			}
		})
	}
}
