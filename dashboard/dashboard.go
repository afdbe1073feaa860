// Package dashboard is Slipway's web dashboard: one page, its script, its
// style sheet and its icon, embedded in the binary so that the dashboard
// works offline and always matches the API it is served with. The page is
// a client of the API alone (it holds no server-side state): it signs in
// with an API token kept in the tab's sessionStorage and sends it as
// `Authorization: Bearer` on every call.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// static holds the dashboard's files. A go:embed variable has to live at
// package level; nothing writes to it.
//
//go:embed static
var static embed.FS

// CSP lets the page load and connect to its own origin only: no inline
// script or style, no CDN, no external font, no framing by other sites.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentType is the Content-Type of a file served, written out rather
// than taken from the system's MIME table, which differs between machines.
func contentType(name string) (string, bool) {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8", true
	case ".js":
		return "text/javascript; charset=utf-8", true
	case ".css":
		return "text/css; charset=utf-8", true
	case ".png":
		return "image/png", true
	}
	return "", false
}

// asset is one file, ready to serve.
type asset struct {
	body []byte
	typ  string
	etag string
}

// Handler serves the page at / and its files under /ui/. Mount it for
// "GET /{$}" and "GET /ui/"; any other path answers 404.
func Handler() http.Handler {
	assets, err := load(static)
	if err != nil {
		// The files are compiled in: this is a broken build, not a
		// runtime condition.
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/" {
			var ok bool
			if name, ok = strings.CutPrefix(r.URL.Path, "/ui/"); !ok || name == "index.html" {
				http.NotFound(w, r)
				return
			}
		}
		a, ok := assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		serve(w, r, a)
	})
}

// serve answers one file with the page's security headers; ServeContent
// answers If-None-Match with 304 from the ETag.
func serve(w http.ResponseWriter, r *http.Request, a asset) {
	h := w.Header()
	h.Set("Content-Type", a.typ)
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// Revalidated on every load (the names carry no version), cheaply
	// thanks to the ETag.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// load reads every embedded file once, with its type and ETag.
func load(files embed.FS) (map[string]asset, error) {
	root, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(root, ".")
	if err != nil {
		return nil, err
	}
	assets := make(map[string]asset, len(entries))
	for _, e := range entries {
		typ, ok := contentType(e.Name())
		if !ok {
			return nil, fmt.Errorf("dashboard: no content type for %s", e.Name())
		}
		body, err := fs.ReadFile(root, e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		assets[e.Name()] = asset{body: body, typ: typ, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return assets, nil
}
