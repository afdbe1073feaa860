package gitlab_test

import (
	"net/http"
	"testing"

	"github.com/slipway-build/slipway/forge/gitlab"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

// FuzzWebhook feeds GitLab's adapter arbitrary events and bodies: Peek and
// Parse never panic and agree, parsed pushes are well formed, and the
// secret token verifies while a token with a flipped byte does not.
func FuzzWebhook(f *testing.F) {
	for _, seed := range []struct{ event, file string }{
		{"Push Hook", "push.json"}, {"Tag Push Hook", "tag-push.json"}, {"Push Hook", "push-delete.json"}, {"Note Hook", "note.json"},
		{"Merge Request Hook", "merge-request-open.json"}, {"Merge Request Hook", "merge-request-fork-update.json"},
		{"Merge Request Hook", "merge-request-update-title.json"}, {"Merge Request Hook", "merge-request-merge.json"},
		{"Merge Request Hook", "merge-request-fork-close.json"},
	} {
		f.Add(seed.event, fixture(f, seed.file), "token-1", uint(3))
	}
	f.Fuzz(func(t *testing.T, event string, body []byte, secret string, flip uint) {
		p := gitlab.Webhook{}
		h := headers(event, "uuid-1", "")
		webhooktest.CheckParse(t, p, h, body)
		if secret == "" {
			return // no token: Verify refuses every request, checked in TestVerify
		}
		sign := func(_ []byte, secret string) http.Header {
			s := h.Clone()
			s.Set("X-Gitlab-Token", secret)
			return s
		}
		webhooktest.CheckVerify(t, p, body, secret, sign, func(h http.Header, b []byte) (http.Header, []byte) {
			h.Set("X-Gitlab-Token", string(webhooktest.Flip([]byte(h.Get("X-Gitlab-Token")), flip)))
			return h, b
		})
	})
}
