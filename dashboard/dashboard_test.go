package dashboard

import (
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/forge/hosts"
)

// serveMux mounts the handler as cmd/slipway does.
func serveMux() *httptest.Server {
	mux := http.NewServeMux()
	h := Handler()
	mux.Handle("GET /{$}", h)
	mux.Handle("GET /ui/", h)
	return httptest.NewServer(mux)
}

func get(t *testing.T, srv *httptest.Server, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

func TestPageIsServedWithAStrictPolicy(t *testing.T) {
	srv := serveMux()
	defer srv.Close()
	res, body := get(t, srv, "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /: HTTP %d", res.StatusCode)
	}
	want := map[string]string{
		"Content-Type": "text/html; charset=utf-8",
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
			"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-cache",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	for _, s := range []string{
		`<script type="module" src="/ui/app.js"></script>`,
		`<link rel="stylesheet" href="/ui/style.css">`,
		`<main id="main" tabindex="-1">`,
		`<html lang="en">`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("index.html lacks %s", s)
		}
	}
	// The policy allows no inline script or style: the page has none.
	if n, srcs := strings.Count(body, "<script"), strings.Count(body, "<script type=\"module\" src="); n != srcs {
		t.Errorf("index.html has %d <script> elements, %d of them loading a file: inline scripts are refused by the policy", n, srcs)
	}
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(body, bad) {
			t.Errorf("index.html contains %q, which the policy refuses", bad)
		}
	}
}

func TestAssetsHaveTheirTypes(t *testing.T) {
	srv := serveMux()
	defer srv.Close()
	for path, typ := range map[string]string{
		"/ui/app.js":      "text/javascript; charset=utf-8",
		"/ui/style.css":   "text/css; charset=utf-8",
		"/ui/favicon.png": "image/png",
	} {
		res, body := get(t, srv, path)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != typ {
			t.Errorf("GET %s: HTTP %d %q, want 200 %q", path, res.StatusCode, res.Header.Get("Content-Type"), typ)
		}
		if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: security headers missing: %v", path, res.Header)
		}
		if len(body) == 0 {
			t.Errorf("GET %s: empty", path)
		}
		etag := res.Header.Get("ETag")
		if again, _ := get(t, srv, path, "If-None-Match", etag); etag == "" || again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %q: HTTP %d, want 304", path, etag, again.StatusCode)
		}
	}
	for _, path := range []string{"/ui/index.html", "/ui/nope.js", "/ui/", "/ui/../go.mod", "/index.html", "/api"} {
		if res, _ := get(t, srv, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: HTTP %d, want 404", path, res.StatusCode)
		}
	}
}

// The dashboard works offline and leaks nothing to third parties: no asset
// names an outside address, a font or an import.
func TestNoAssetReachesOut(t *testing.T) {
	texts := 0
	err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".png") {
			return err
		}
		texts++
		raw, err := fs.ReadFile(static, path)
		if err != nil {
			return err
		}
		body := strings.ToLower(string(raw))
		for _, bad := range []string{"http://", "https://", "@import", "@font-face", "url(", "//cdn", "eventsource", "localstorage", "innerhtml = data", "eval("} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if texts != 3 {
		t.Errorf("checked %d text assets, want 3 (index.html, app.js, style.css)", texts)
	}
}

// The page offers the hosts the API accepts.
func TestConnectOffersEveryHost(t *testing.T) {
	raw, err := fs.ReadFile(static, "static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)const HOSTS = \[(.*?)\];`).FindSubmatch(raw)
	if block == nil {
		t.Fatal("app.js has no HOSTS list")
	}
	var offered []string
	for _, m := range regexp.MustCompile(`\['([a-z-]+)', '`).FindAllSubmatch(block[1], -1) {
		offered = append(offered, string(m[1]))
	}
	want := hosts.Names()
	if !slices.Equal(offered, want) {
		t.Errorf("the connect form offers %v, the hosts table has %v", offered, want)
	}
	if !slices.Equal(want, []string{"github", "bitbucket", "bitbucket-server", "gitlab", "gitea"}) {
		t.Errorf("hosts table changed: %v; update HOSTS in app.js and this list", want)
	}
}

// Every text colour of the style sheet on the backgrounds it is used on has
// a contrast of at least 4.5:1 (WCAG AA for body text).
func TestTextContrast(t *testing.T) {
	raw, err := fs.ReadFile(static, "static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(--[a-z-]+):\s*(#[0-9a-fA-F]{6});`).FindAllStringSubmatch(string(raw), -1) {
		vars[m[1]] = m[2]
	}
	pairs := [][2]string{
		{"--fg", "--bg"}, {"--fg", "--surface"}, {"--muted", "--surface"}, {"--muted", "--bg"},
		{"--accent", "--surface"}, {"--accent", "--bg"}, {"--on-accent", "--accent"},
		{"--top-fg", "--top-bg"}, {"--top-muted", "--top-bg"}, {"--log-fg", "--log-bg"},
		{"--ok-fg", "--ok-bg"}, {"--fail-fg", "--fail-bg"}, {"--run-fg", "--run-bg"},
		{"--wait-fg", "--wait-bg"}, {"--idle-fg", "--idle-bg"}, {"--fg", "--idle-bg"},
		{"--fail-fg", "--surface"}, {"--danger", "--surface"}, {"--danger", "--fail-bg"},
		{"--fg", "--run-bg"}, {"--muted", "--idle-bg"}, {"--fail-fg", "--bg"}, {"--ok-fg", "--surface"}, {"--run-fg", "--surface"},
	}
	for _, p := range pairs {
		fg, bg := vars[p[0]], vars[p[1]]
		if fg == "" || bg == "" {
			t.Errorf("style.css lacks %s or %s", p[0], p[1])
			continue
		}
		if c := contrast(t, fg, bg); c < 4.5 {
			t.Errorf("%s %s on %s %s: contrast %.2f, want at least 4.5", p[0], fg, p[1], bg, c)
		}
	}
}

// contrast is the WCAG 2 contrast ratio of two #rrggbb colours.
func contrast(t *testing.T, a, b string) float64 {
	la, lb := luminance(t, a), luminance(t, b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(t *testing.T, hex string) float64 {
	var l float64
	for i, w := range []float64{0.2126, 0.7152, 0.0722} {
		v, err := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		if err != nil {
			t.Fatalf("colour %s: %v", hex, err)
		}
		c := float64(v) / 255
		if c <= 0.03928 {
			c /= 12.92
		} else {
			c = math.Pow((c+0.055)/1.055, 2.4)
		}
		l += w * c
	}
	return l
}
