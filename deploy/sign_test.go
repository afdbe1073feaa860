package deploy

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The published Standard Webhooks vector, from TestWebhookSign in
// github.com/standard-webhooks/standard-webhooks libraries/go/webhook_test.go
// (the svix libraries test the same values). Matching it is what proves
// receivers using those libraries accept our signatures.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesSpecVector(t *testing.T) {
	got, err := Sign(vectorSecret, vectorMsgID, time.Unix(vectorTimestamp, 0), []byte(vectorBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSignature {
		t.Fatalf("Sign = %s, want %s", got, vectorSignature)
	}
}

func TestVerifyAcceptsSpecVector(t *testing.T) {
	h := http.Header{}
	h.Set(HeaderID, vectorMsgID)
	h.Set(HeaderTimestamp, strconv.Itoa(vectorTimestamp))
	h.Set(HeaderSignature, vectorSignature)
	now := time.Unix(vectorTimestamp, 0).Add(time.Minute)
	if err := Verify(vectorSecret, h, []byte(vectorBody), 5*time.Minute, now); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestSignRejectsBadInput(t *testing.T) {
	tests := []struct {
		name, secret, msgID string
		want                error
	}{
		{"no prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", vectorMsgID, ErrBadSecret},
		{"bad base64", "whsec_not*base64!", vectorMsgID, ErrBadSecret},
		{"empty key", "whsec_", vectorMsgID, ErrBadSecret},
		{"empty secret", "", vectorMsgID, ErrBadSecret},
		{"empty message id", vectorSecret, "", ErrBadMessageID},
		{"dot in message id", vectorSecret, "msg.1614265330", ErrBadMessageID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig, err := Sign(tt.secret, tt.msgID, time.Unix(vectorTimestamp, 0), []byte(vectorBody))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Sign = %q, %v; want error %v", sig, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "sign webhook: ") {
				t.Errorf("error %q lacks context", err)
			}
		})
	}
}

func TestGenerateSecret(t *testing.T) {
	a, b := GenerateSecret(), GenerateSecret()
	if a == b {
		t.Fatalf("two secrets are equal: %s", a)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, SecretPrefix))
	if !strings.HasPrefix(a, SecretPrefix) || err != nil || len(key) != 24 {
		t.Fatalf("secret %q: want whsec_ + base64 of 24 bytes (decoded %d bytes, err %v)", a, len(key), err)
	}
	body := []byte(`{}`)
	now := time.Now()
	sig, err := Sign(a, "msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(a, signedHeader("msg_1", now, sig), body, time.Minute, now); err != nil {
		t.Fatalf("generated secret does not round-trip: %v", err)
	}
}

func signedHeader(msgID string, ts time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return h
}

func TestVerify(t *testing.T) {
	secret := GenerateSecret()
	body := []byte(`{"type":"image.pushed"}`)
	sent := time.Unix(1700000000, 0)
	sig, err := Sign(secret, "msg_1", sent, body)
	if err != nil {
		t.Fatal(err)
	}
	otherSig, err := Sign(GenerateSecret(), "msg_1", sent, body)
	if err != nil {
		t.Fatal(err)
	}
	const tolerance = 5 * time.Minute

	tests := []struct {
		name   string
		secret string
		edit   func(h http.Header)
		body   string
		now    time.Time
		want   error // nil: must pass
	}{
		{name: "valid", now: sent},
		{name: "valid at edge of tolerance", now: sent.Add(tolerance)},
		{name: "rotated key, second signature matches",
			edit: func(h http.Header) { h.Set(HeaderSignature, otherSig+" "+sig) }},
		{name: "asymmetric and junk entries skipped",
			edit: func(h http.Header) { h.Set(HeaderSignature, "v1a,AAAA garbage v1,%%% "+sig) }},
		{name: "tampered body", body: `{"type":"image.pushed","x":1}`, want: ErrNoMatch},
		{name: "wrong secret", secret: GenerateSecret(), want: ErrNoMatch},
		{name: "signature for other message id",
			edit: func(h http.Header) { h.Set(HeaderID, "msg_2") }, want: ErrNoMatch},
		{name: "timestamp changed after signing",
			edit: func(h http.Header) { h.Set(HeaderTimestamp, strconv.FormatInt(sent.Unix()+1, 10)) }, want: ErrNoMatch},
		{name: "only other signatures",
			edit: func(h http.Header) { h.Set(HeaderSignature, otherSig) }, want: ErrNoMatch},
		{name: "v2 label on valid mac",
			edit: func(h http.Header) { h.Set(HeaderSignature, "v2"+strings.TrimPrefix(sig, "v1")) }, want: ErrNoMatch},
		{name: "too old", now: sent.Add(tolerance + time.Second), want: ErrTooOld},
		{name: "too new", now: sent.Add(-tolerance - time.Second), want: ErrTooNew},
		{name: "missing id", edit: func(h http.Header) { h.Del(HeaderID) }, want: ErrMissingHeader},
		{name: "missing timestamp", edit: func(h http.Header) { h.Del(HeaderTimestamp) }, want: ErrMissingHeader},
		{name: "missing signature", edit: func(h http.Header) { h.Del(HeaderSignature) }, want: ErrMissingHeader},
		{name: "timestamp not a number",
			edit: func(h http.Header) { h.Set(HeaderTimestamp, "2023-11-14T22:13:20Z") }, want: ErrBadTimestamp},
		{name: "receiver secret malformed", secret: "not-a-secret", want: ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := signedHeader("msg_1", sent, sig)
			if tt.edit != nil {
				tt.edit(h)
			}
			s, b, now := secret, string(body), sent
			if tt.secret != "" {
				s = tt.secret
			}
			if tt.body != "" {
				b = tt.body
			}
			if !tt.now.IsZero() {
				now = tt.now
			}
			err := Verify(s, h, []byte(b), tolerance, now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyErrorsNameTheProblem(t *testing.T) {
	h := signedHeader("msg_1", time.Unix(1700000000, 0), "v1,AAAA")
	h.Del(HeaderTimestamp)
	err := Verify(GenerateSecret(), h, nil, time.Minute, time.Unix(1700000000, 0))
	if err == nil || err.Error() != "verify webhook: missing header webhook-timestamp" {
		t.Fatalf("error = %v, want it to name the missing header", err)
	}
}
