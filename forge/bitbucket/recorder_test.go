package bitbucket

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/forge/rest"
)

// The tests of this package run against local httptest servers that
// implement the documented Bitbucket Cloud 2.0 and Bitbucket Data Center
// REST endpoints Slipway uses, and record every request. No real Bitbucket
// is contacted.

const (
	sha         = "e83c5163316f89bfbde7d9ab23ca2e25604af290"
	appPassword = "jdoe:ATBBsecretAppPassword42"
	bearer      = "ATCTT3xFfGN0-access-token-value"
)

func basicOf(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

type request struct {
	Method string
	URI    string // escaped path and query, as sent
	Header http.Header
	Body   map[string]any
}

// recorder records each request, then answers with fail (if set) or next.
type recorder struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	requests []request
	failWith int
	failBody string
	// auth lists the Authorization headers the host accepts.
	auth []string
	// unauthorized is the host's answer to any other header.
	unauthorized string
	next         func(w http.ResponseWriter, r *http.Request, body map[string]any)
}

func newRecorder(t *testing.T, next func(w http.ResponseWriter, r *http.Request, body map[string]any)) *recorder {
	rec := &recorder{t: t, next: next}
	rec.srv = httptest.NewServer(http.HandlerFunc(rec.serve))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			rec.t.Errorf("%s %s: body is not JSON: %q", r.Method, r.RequestURI, raw)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			rec.t.Errorf("%s %s: Content-Type %q", r.Method, r.RequestURI, ct)
		}
	}
	rec.mu.Lock()
	rec.requests = append(rec.requests, request{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: body})
	fail, failBody := rec.failWith, rec.failBody
	rec.mu.Unlock()
	if fail != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(fail)
		_, _ = io.WriteString(w, failBody)
		return
	}
	ok := false
	for _, a := range rec.auth {
		ok = ok || r.Header.Get("Authorization") == a
	}
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, rec.unauthorized)
		return
	}
	rec.next(w, r, body)
}

func (rec *recorder) fail(code int, body string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.failWith, rec.failBody = code, body
}

func (rec *recorder) recorded() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.requests...)
}

func (rec *recorder) last() request {
	reqs := rec.recorded()
	if len(reqs) == 0 {
		rec.t.Fatal("no request reached the server")
	}
	return reqs[len(reqs)-1]
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestShortKeyIsDeterministicAndBounded(t *testing.T) {
	long := "slipway/" + strings.Repeat("feature-branch-name-", 4)
	other := long + "x"
	tests := []struct {
		key   string
		limit int
		same  bool
	}{
		{"slipway", 40, true},
		{"slipway/latest", 40, true},
		{strings.Repeat("k", 40), 40, true},
		{strings.Repeat("k", 41), 40, false},
		{long, 40, false},
		{strings.Repeat("ä", 50), 40, false},
		{long, 255, true},
	}
	for _, tt := range tests {
		got := shortKey(tt.key, tt.limit)
		if n := len([]rune(got)); n > tt.limit {
			t.Errorf("shortKey(%q) has %d characters", tt.key, n)
		}
		if (got == tt.key) != tt.same {
			t.Errorf("shortKey(%q, %d) = %q", tt.key, tt.limit, got)
		}
		if got != shortKey(tt.key, tt.limit) {
			t.Errorf("shortKey(%q) is not deterministic", tt.key)
		}
	}
	a, b := shortKey(long, 40), shortKey(other, 40)
	if a == b || !strings.HasPrefix(a, long[:27]) || len(a) != 40 {
		t.Errorf("shortKey: %q and %q", a, b)
	}
}

func TestNilHTTPClientHasThirtySecondTimeout(t *testing.T) {
	for name, open := range map[string]func(string, forge.Conn) (*rest.Client, string, error){"cloud": openCloud, "server": openServer} {
		a, _, err := open("Repo", forge.Conn{APIURL: "https://bitbucket.example.com", FullName: "PRJ/demo"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if a.Timeout() != 30*time.Second {
			t.Errorf("%s: timeout %v", name, a.Timeout())
		}
	}
}
