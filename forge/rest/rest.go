// Package rest is the small JSON-over-HTTP client the GitLab, Gitea and
// Bitbucket forges share: auth headers, same-host redirects only, errors
// that name the call and never carry a secret.
package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slipway-build/slipway/forge"
)

// defaultHTTP sends requests when forge.Conn.HTTP is nil.
var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// maxBody bounds how much of a response is read.
const maxBody = 4 << 20

// api is one host API as a Conn describes it.
type Client struct {
	host    string   // provider name, the first word of every error
	base    *url.URL // API root without a trailing slash
	hc      *http.Client
	auth    func(http.Header)
	secrets []string // never shown in an error
}

// New checks root (the Conn's APIURL, or the public host's) and returns a
// client for it.
func New(host, op, root string, hc *http.Client, auth func(http.Header), secrets ...string) (*Client, error) {
	if root == "" {
		return nil, fmt.Errorf("%s: %s: Conn.APIURL is empty", host, op)
	}
	u, err := url.Parse(strings.TrimRight(root, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s: %s: Conn.APIURL %q is not an http(s) URL without query", host, op, redact(root))
	}
	u.User = nil
	if hc == nil {
		hc = defaultHTTP
	}
	return &Client{host: host, base: u, hc: sameHostOnly(hc), auth: auth, secrets: secrets}, nil
}

// redact hides the password of a URL that carries one.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

// sameHostOnly returns a copy of hc that refuses redirects to another host
// or from https to http, so the credentials headers never follow a redirect
// off the API host (Go drops Authorization there, but not PRIVATE-TOKEN).
func sameHostOnly(hc *http.Client) *http.Client {
	c := *hc
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if req.URL.Host != first.Host || (first.Scheme == "https" && req.URL.Scheme != "https") {
			return fmt.Errorf("refused a redirect from %s://%s to %s://%s", first.Scheme, first.Host, req.URL.Scheme, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// Error is a host's answer outside 2xx.
type Error struct {
	host, op, method, path string
	Status                 int
	Message                string // excerpt of the host's message
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s: %s %s: HTTP %d", e.host, e.op, e.method, e.path, e.Status)
	if t := http.StatusText(e.Status); t != "" {
		s += " " + t
	}
	if e.unauthorized() {
		s += ": " + forge.ErrUnauthorized.Error()
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *Error) unauthorized() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// Unwrap makes errors.Is(err, forge.ErrUnauthorized) true for 401 and 403.
func (e *Error) Unwrap() error {
	if e.unauthorized() {
		return forge.ErrUnauthorized
	}
	return nil
}

// call sends method to path (already escaped, below the API root) with in
// as the JSON body, and decodes a 2xx answer into out. op names the Forge
// method in errors.
// Timeout is how long one call may take.
func (a *Client) Timeout() time.Duration { return a.hc.Timeout }

// Hide adds a value that must never appear in an error, such as a webhook
// secret the next call sends.
func (a *Client) Hide(secret string) { a.secrets = append(a.secrets, secret) }

// Call sends in as JSON to root+path and decodes the answer into out.
func (a *Client) Call(ctx context.Context, op, method, path string, in, out any) error {
	u := *a.base
	u.RawPath = a.base.EscapedPath() + path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return fmt.Errorf("%s: %s: bad path %s: %w", a.host, op, path, err)
	}
	u.Path = p
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: %s: encode request: %w", a.host, op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("%s: %s: %s %s: %w", a.host, op, method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "slipway")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	a.auth(req.Header)
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %s: %s %s: %s", a.host, op, method, path, a.scrub(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return &Error{host: a.host, op: op, method: method, path: path, Status: resp.StatusCode, Message: a.scrub(excerpt(b))}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		return fmt.Errorf("%s: %s: %s %s: HTTP %d: decode answer: %w", a.host, op, method, path, resp.StatusCode, err)
	}
	return nil
}

// scrub removes the credentials from s.
func (a *Client) scrub(s string) string {
	for _, secret := range a.secrets {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// excerpt is the host's error message from an error body, on one line and at
// most 200 characters.
func excerpt(body []byte) string {
	var v any
	msg := ""
	if json.Unmarshal(body, &v) == nil {
		msg = messageOf(v)
	} else {
		msg = stripTags(string(body))
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:199]) + "…"
	}
	return msg
}

// messageOf finds the message in the error shapes the hosts use:
// {"message": …} (GitLab, Gitea), {"error": {"message": …}} (Bitbucket
// Cloud), {"errors": [{"message": …}]} (Bitbucket Data Center),
// {"error": …, "error_description": …} (OAuth).
func messageOf(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case []any:
		var parts []string
		for _, x := range t {
			if s := messageOf(x); s != "" {
				parts = append(parts, s)
			}
			if len(parts) == 3 {
				break
			}
		}
		return strings.Join(parts, "; ")
	case map[string]any:
		for _, k := range []string{"message", "error", "errors", "error_description", "detail"} {
			if x, ok := t[k]; ok {
				if s := messageOf(x); s != "" {
					return s
				}
			}
		}
		if len(t) == 0 {
			return ""
		}
		b, _ := json.Marshal(t) // e.g. GitLab's {"message": {"url": ["is blocked"]}}
		return string(b)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// stripTags turns an HTML error page into its text, roughly.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
			b.WriteRune(' ')
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// FlexID reads an id the host sends as a number or a string.
type FlexID string

func (f *FlexID) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*f = FlexID(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("id is neither a number nor a string: %s", b)
	}
	*f = FlexID(s)
	return nil
}

// OwnerAndName splits "owner/name" into its two escaped path segments.
func OwnerAndName(host, op, fullName string) (string, string, error) {
	owner, name, ok := strings.Cut(strings.Trim(fullName, "/"), "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%s: %s: Conn.FullName %q is not owner/name", host, op, fullName)
	}
	return url.PathEscape(owner), url.PathEscape(name), nil
}
