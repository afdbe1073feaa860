package gitea_test

import (
	"net/http"
	"testing"

	"github.com/slipway-build/slipway/forge/gitea"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

// FuzzWebhook feeds the Gitea and Forgejo adapter arbitrary events and
// bodies under either dialect's headers: Peek and Parse never panic and
// agree, parsed pushes are well formed, and a signed body verifies while a
// flipped byte does not.
func FuzzWebhook(f *testing.F) {
	for _, seed := range []struct{ event, file string }{
		{"push", "push.json"}, {"push", "push-tag.json"}, {"push", "push-delete.json"},
		{"push", "push-forgejo.json"}, {"delete", "delete-branch.json"},
		{"pull_request", "pull-request-opened.json"}, {"pull_request", "pull-request-fork-synchronized.json"},
		{"pull_request", "pull-request-closed-merged.json"}, {"pull_request", "pull-request-closed.json"},
		{"pull_request", "pull-request-label-updated.json"},
	} {
		f.Add(seed.event, false, fixture(f, seed.file), uint(11))
	}
	f.Add("push", true, fixture(f, "push-forgejo.json"), uint(0))
	f.Fuzz(func(t *testing.T, event string, forgejo bool, body []byte, flip uint) {
		h := giteaHeaders(event, "d-1")
		if forgejo {
			h = forgejoHeaders(event, "d-1")
		}
		p := gitea.Webhook{}
		webhooktest.CheckParse(t, p, h, body)
		sign := func(body []byte, secret string) http.Header {
			s := h.Clone()
			s.Set("X-Gitea-Signature", webhook.SignHMAC(body, secret))
			s.Set("X-Forgejo-Signature", webhook.SignHMAC(body, secret))
			return s
		}
		webhooktest.CheckVerify(t, p, body, "fuzz-secret", sign, func(h http.Header, b []byte) (http.Header, []byte) {
			return h, webhooktest.Flip(b, flip)
		})
	})
}
