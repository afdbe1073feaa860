package bitbucket_test

import (
	"net/http"
	"testing"

	"github.com/slipway-build/slipway/forge/bitbucket"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

// FuzzWebhook feeds Bitbucket's adapter arbitrary events and bodies under
// Cloud's or Data Center's headers: Peek and Parse never panic and agree
// (on the dialect too), parsed pushes are well formed, and a signed body
// verifies while a flipped byte does not.
func FuzzWebhook(f *testing.F) {
	for _, seed := range []struct {
		event  string
		server bool
		file   string
	}{
		{"repo:push", false, "cloud-push-branch.json"}, {"repo:push", false, "cloud-push-tag.json"},
		{"repo:push", false, "cloud-push-delete.json"}, {"repo:refs_changed", true, "server-refs-changed.json"},
		{"repo:refs_changed", true, "server-tag-add.json"}, {"repo:refs_changed", true, "server-delete.json"},
		{"diagnostics:ping", true, "server-ping.json"},
		{"pullrequest:created", false, "cloud-pr-created.json"}, {"pullrequest:updated", false, "cloud-pr-fork-updated.json"},
		{"pullrequest:fulfilled", false, "cloud-pr-fulfilled.json"}, {"pullrequest:rejected", false, "cloud-pr-fork-rejected.json"},
		{"pullrequest:approved", false, "cloud-pr-approved.json"}, {"pr:opened", true, "server-pr-opened.json"},
		{"pr:from_ref_updated", true, "server-pr-fork-from-ref-updated.json"}, {"pr:merged", true, "server-pr-merged.json"},
		{"pr:declined", true, "server-pr-fork-declined.json"}, {"pr:modified", true, "server-pr-modified.json"},
	} {
		f.Add(seed.event, seed.server, fixture(f, seed.file), uint(5))
	}
	f.Fuzz(func(t *testing.T, event string, server bool, body []byte, flip uint) {
		h := cloudHeaders(event, "d-1")
		if server {
			h = serverHeaders(event, "d-1")
		}
		p := bitbucket.Webhook{}
		webhooktest.CheckParse(t, p, h, body)
		sign := func(body []byte, secret string) http.Header {
			s := h.Clone()
			s.Set("X-Hub-Signature", "sha256="+webhook.SignHMAC(body, secret))
			return s
		}
		webhooktest.CheckVerify(t, p, body, "fuzz-secret", sign, func(h http.Header, b []byte) (http.Header, []byte) {
			return h, webhooktest.Flip(b, flip)
		})
	})
}
