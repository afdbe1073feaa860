// Package redact hides credentials in text that leaves Slipway: build logs,
// a build's error, server logs and the commit status posted to a Git host.
// A token in a URL's user part or in a query parameter is the usual leak:
// a Git error or an HTTP client error quotes the URL it failed on.
package redact

import (
	"regexp"
	"strings"
)

// Mask replaces a secret query value.
const Mask = "REDACTED"

// secretParams are query parameter names whose values are credentials, in
// lower case: OAuth and GitLab tokens, API keys, pre-signed URL signatures
// (S3's X-Amz-Signature, Azure's sig) and OAuth authorization codes.
var secretParams = map[string]bool{
	"token": true, "access_token": true, "private_token": true, "key": true,
	"secret": true, "password": true, "passwd": true, "sig": true,
	"signature": true, "x-amz-signature": true, "client_secret": true,
	"code": true, "auth": true, "apikey": true, "api_key": true,
}

// URL returns raw without its user part (user name too: a token is often
// given as the user) and with the values of secret-looking query
// parameters replaced by Mask. Everything else is left as written, so the
// result still points a reader at the same place. raw need not parse, and
// a URL inside it (a redirect parameter) is redacted too.
func URL(raw string) string {
	if !strings.Contains(raw, "://") {
		return raw
	}
	return redactURLs(raw)
}

// redactURLs drops the user part after every "://" and masks secret query
// values, in one pass of each expression: no input costs more than linear
// time, which matters for a log line of MaxLine bytes.
func redactURLs(s string) string {
	s = userinfoRE.ReplaceAllString(s, "://")
	return queryRE.ReplaceAllStringFunc(s, func(m string) string {
		name, _, _ := strings.Cut(m[1:], "=")
		if !SecretParam(name) {
			return m
		}
		return m[:1] + name + "=" + Mask
	})
}

// SecretParam reports whether a query parameter named name carries a
// credential. Case does not matter, and a name written percent-encoded in
// part (t%6Fken) counts as the name it decodes to.
func SecretParam(name string) bool {
	return secretParams[strings.ToLower(unescape(name))]
}

// unescape decodes %XX sequences and leaves broken ones as they are, so a
// name that does not decode still gets compared.
func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// stop is what ends a URL in free text: white space, a quote or an angle
// bracket (Go's %q, git's '...' and <...> all end one).
const stop = "\\s\"'`<>"

var (
	// userinfoRE is the authority of a URL up to its last "@": everything
	// between "://" and the host.
	userinfoRE = regexp.MustCompile("://[^" + stop + "/?#]*@")
	// queryRE is one name=value of a query.
	queryRE = regexp.MustCompile("[?&][^" + stop + "&#=?]+=[^" + stop + "&#]*")
	// userPassRE is user:password@host without a scheme, as in scp-style
	// Git remotes and some tools' error messages. A user name alone (git@)
	// is no secret and is kept.
	userPassRE = regexp.MustCompile("(^|[" + stop + "(=,;])[^" + stop + "(=,;@/:]+:[^" + stop + "@/]+@")
)

// Text redacts every URL in s with URL, and drops the user:password@ of
// scheme-less user:password@host forms. It is for error messages and log
// lines, whose URLs are not marked out.
func Text(s string) string {
	if !strings.Contains(s, "://") && !strings.Contains(s, "@") {
		return s // the common case costs no regexp
	}
	if strings.Contains(s, "://") {
		s = redactURLs(s)
	}
	if strings.Contains(s, "@") {
		s = userPassRE.ReplaceAllString(s, "${1}")
	}
	return s
}
