package redact

import (
	"strings"
	"testing"
)

// FuzzText builds a text holding scheme://user:password@host and asserts
// the password never comes out of Text, wherever in the text it stands.
func FuzzText(f *testing.F) {
	f.Add("fatal: unable to access '", "oauth2", "glpat-secret1", "gitlab.example", "/acme/demo.git/': 403")
	f.Add(`Get "`, "x-access-token", "ghs_abcdefgh", "github.com", `": EOF`)
	f.Add("", "u", "p@ss:word", "h:1", "?token=x")
	f.Add("redirect=", "a", "b!$&()*+,;=", "[::1]:80", "")
	f.Fuzz(func(t *testing.T, prefix, user, pass, host, suffix string) {
		if len(pass) < 4 || strings.ContainsAny(pass, "\x00 \t\n\r\v\f\u0085\u00a0\"'`<>/?#") ||
			strings.ContainsAny(user, ":@/?#\"'`<> \t\n\r\v\f\u0085\u00a0") ||
			strings.ContainsAny(host, "@/?#\"'`<> \t\n\r\v\f\u0085\u00a0") {
			t.Skip("not a URL's user part as a client writes it")
		}
		for _, other := range []string{prefix, user, host, suffix} {
			if strings.Contains(other, pass) {
				t.Skip("the password is in the text elsewhere too")
			}
		}
		in := prefix + "https://" + user + ":" + pass + "@" + host + "/x " + suffix
		if out := Text(in); strings.Contains(out, pass) {
			t.Fatalf("Text(%q) = %q keeps the password %q", in, out, pass)
		}
	})
}
