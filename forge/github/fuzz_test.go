package github_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/slipway-build/slipway/forge/github"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

// FuzzWebhook feeds GitHub's adapter arbitrary events and bodies, JSON or
// form-encoded: Peek and Parse never panic and agree, parsed pushes are
// well formed, and a signed body verifies while a flipped byte does not.
func FuzzWebhook(f *testing.F) {
	for _, seed := range []struct{ event, file string }{
		{"push", "push-branch.json"}, {"push", "push-tag.json"}, {"push", "push-delete.json"},
		{"ping", "ping.json"}, {"issues", "issues.json"},
		{"pull_request", "pull-request-opened.json"}, {"pull_request", "pull-request-fork-synchronize.json"},
		{"pull_request", "pull-request-closed-merged.json"}, {"pull_request", "pull-request-closed.json"},
		{"pull_request", "pull-request-labeled.json"},
	} {
		f.Add(seed.event, false, fixture(f, seed.file), uint(7))
	}
	f.Add("push", true, []byte("payload="+url.QueryEscape(`{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"full_name":"a/b"}}`)), uint(0))
	f.Fuzz(func(t *testing.T, event string, form bool, body []byte, flip uint) {
		h := headers(event, "d-1", "application/json")
		if form {
			h.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		p := github.Webhook{}
		webhooktest.CheckParse(t, p, h, body)
		sign := func(body []byte, secret string) http.Header {
			s := h.Clone()
			s.Set("X-Hub-Signature-256", "sha256="+webhook.SignHMAC(body, secret))
			return s
		}
		webhooktest.CheckVerify(t, p, body, "fuzz-secret", sign, func(h http.Header, b []byte) (http.Header, []byte) {
			return h, webhooktest.Flip(b, flip)
		})
	})
}
