package webhooktest

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/slipway-build/slipway/webhook"
)

var commitRE = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// CheckParse is the property every adapter's fuzz target checks: Peek and
// Parse never panic; a parsed event is well formed (known kind, full refs,
// 40-hex commits); and when both succeed, Peek names the same repository,
// provider and kind as Parse, since the secret Peek's repository names is
// the one the signature is checked with.
func CheckParse(t *testing.T, p webhook.Provider, h http.Header, body []byte) {
	t.Helper()
	peek, peekErr := p.Peek(h, body)
	ev, err := p.Parse(h, body)
	if err != nil {
		return
	}
	switch ev.Kind {
	case webhook.KindPush, webhook.KindPing, webhook.KindOther, webhook.KindPullRequest:
	default:
		t.Fatalf("Parse: kind %q", ev.Kind)
	}
	if (ev.Kind == webhook.KindPullRequest) != (ev.PullRequest != nil) {
		t.Fatalf("Parse: a %s event with pull request %+v", ev.Kind, ev.PullRequest)
	}
	if ev.PullRequest != nil {
		if err := webhook.CheckPullRequest(ev.PullRequest); err != nil {
			t.Fatalf("Parse: %v", err)
		}
	}
	if ev.Kind != webhook.KindPush && len(ev.Pushes) > 0 {
		t.Fatalf("Parse: a %s event with pushes %+v", ev.Kind, ev.Pushes)
	}
	for i, push := range ev.Pushes {
		if len(push.Ref) <= len("refs/") || push.Ref[:5] != "refs/" {
			t.Fatalf("Parse: push %d ref %q", i, push.Ref)
		}
		if !commitRE.MatchString(push.After) || (push.Before != "" && !commitRE.MatchString(push.Before)) {
			t.Fatalf("Parse: push %d before %q after %q", i, push.Before, push.After)
		}
	}
	if peekErr != nil {
		t.Fatalf("Parse succeeded but Peek failed: %v", peekErr)
	}
	if peek.Repo != ev.Repo || peek.Provider != ev.Provider || peek.Kind != ev.Kind || peek.DeliveryID != ev.DeliveryID {
		t.Fatalf("Peek read %q/%q/%q/%q, Parse %q/%q/%q/%q", peek.Provider, peek.Repo, peek.Kind, peek.DeliveryID,
			ev.Provider, ev.Repo, ev.Kind, ev.DeliveryID)
	}
}

// CheckVerify checks that a request signed by sign passes Verify with the
// secret, and fails with one byte of the signed material flipped by flip
// (the body for an HMAC, the token for a host that sends its secret).
func CheckVerify(t *testing.T, p webhook.Provider, body []byte, secret string, sign func(body []byte, secret string) http.Header, flip func(h http.Header, body []byte) (http.Header, []byte)) {
	t.Helper()
	h := sign(body, secret)
	if err := p.Verify(h, body, secret); err != nil {
		t.Fatalf("Verify of a signed request: %v", err)
	}
	fh, fb := flip(h.Clone(), append([]byte(nil), body...))
	if err := p.Verify(fh, fb, secret); err == nil {
		t.Fatalf("Verify passed a request with a flipped byte")
	}
}

// Flip returns b with the byte at i (modulo its length) inverted; an empty b
// becomes one byte.
func Flip(b []byte, i uint) []byte {
	if len(b) == 0 {
		return []byte{0}
	}
	b[int(i%uint(len(b)))] ^= 0xff
	return b
}
