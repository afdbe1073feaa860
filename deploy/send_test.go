package deploy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
)

// received is what a test receiver saw.
type received struct {
	header    http.Header
	body      []byte
	verifyErr error
}

// receiver is a deploy endpoint that checks signatures with Verify the way
// a user's service would, answering 401 when they do not hold.
func receiver(t *testing.T, secret string, reply func(w http.ResponseWriter)) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := Verify(secret, r.Header, body, 5*time.Minute, time.Now())
		got <- received{header: r.Header.Clone(), body: body, verifyErr: err}
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		reply(w)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestSendDelivers(t *testing.T) {
	secret := GenerateSecret()
	srv, got := receiver(t, secret, func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) })
	body, err := NewPayload(model.Build{ID: "b1", Tags: []string{"v1"}}, model.Repo{FullName: "acme/web"},
		"https://ci.example.com", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	a := Sender{}.Send(context.Background(), model.Hook{URL: srv.URL, Secret: secret}, "msg_1", body, now)

	if !Succeeded(a) || a.StatusCode != http.StatusNoContent || a.Error != "" {
		t.Fatalf("attempt = %+v, want delivered with 204", a)
	}
	if !a.At.Equal(now) || a.DurationMS < 0 {
		t.Errorf("attempt time %v / duration %d ms, want at %v", a.At, a.DurationMS, now)
	}
	r := <-got
	if r.verifyErr != nil {
		t.Fatalf("receiver rejected the signature: %v", r.verifyErr)
	}
	if ct, ua := r.header.Get("Content-Type"), r.header.Get("User-Agent"); ct != "application/json" || ua != "Slipway-Webhooks/1" {
		t.Errorf("Content-Type %q, User-Agent %q", ct, ua)
	}
	if id := r.header.Get("webhook-id"); id != "msg_1" {
		t.Errorf("webhook-id = %q, want msg_1", id)
	}
	var p Payload
	if err := json.Unmarshal(r.body, &p); err != nil || p.Build.ID != "b1" {
		t.Errorf("receiver could not read the payload: %v, %+v", err, p)
	}
}

func TestSendFailures(t *testing.T) {
	secret := GenerateSecret()
	tests := []struct {
		name      string
		hookKey   string // secret the sender signs with
		now       time.Time
		reply     func(w http.ResponseWriter)
		wantCode  int
		wantError string // exact Attempt.Error, or prefix when ending in "*"
	}{
		{
			name: "receiver error", hookKey: secret, now: time.Now(),
			reply: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, "database is down\n"+strings.Repeat("x", 500))
			},
			wantCode:  500,
			wantError: "HTTP 500: database is down\n" + strings.Repeat("x", 200-len("database is down\n")),
		},
		{
			name: "empty error body", hookKey: secret, now: time.Now(),
			reply:    func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) },
			wantCode: 502, wantError: "HTTP 502",
		},
		{
			name: "redirect is not followed", hookKey: secret, now: time.Now(),
			reply: func(w http.ResponseWriter) {
				w.Header().Set("Location", "https://elsewhere.example.com/hook")
				w.WriteHeader(http.StatusFound)
			},
			wantCode: 302, wantError: "HTTP 302",
		},
		{
			name: "wrong secret rejected by receiver", hookKey: GenerateSecret(), now: time.Now(),
			wantCode: 401, wantError: "HTTP 401: verify webhook: no matching signature",
		},
		{
			name: "stale timestamp rejected by receiver", hookKey: secret, now: time.Now().Add(-10 * time.Minute),
			wantCode: 401, wantError: "HTTP 401: verify webhook: message timestamp too old*",
		},
		{
			name: "hook without secret is not sent", hookKey: "", now: time.Now(),
			wantCode: 0, wantError: "sign webhook: hook * has no secret",
		},
		{
			name: "malformed secret is not sent", hookKey: "hunter2", now: time.Now(),
			wantCode: 0, wantError: "sign webhook: bad webhook secret: missing \"whsec_\" prefix",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := tt.reply
			if reply == nil {
				reply = func(w http.ResponseWriter) { t.Error("receiver accepted a bad signature") }
			}
			srv, got := receiver(t, secret, reply)
			hook := model.Hook{URL: srv.URL, Secret: tt.hookKey}

			a := Sender{}.Send(context.Background(), hook, "msg_1", []byte(`{}`), tt.now)

			if Succeeded(a) || a.StatusCode != tt.wantCode || !matches(a.Error, tt.wantError, srv.URL) {
				t.Fatalf("attempt = %+v\nwant code %d, error %q", a, tt.wantCode, tt.wantError)
			}
			if tt.wantCode == 0 && len(got) > 0 {
				t.Error("request reached the receiver")
			}
		})
	}
}

// matches compares an error text with a pattern where "*" at the end means
// "anything follows" and "*" elsewhere stands for the hook URL.
func matches(got, pattern, url string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(got, prefix)
	}
	return got == strings.Replace(pattern, "*", url, 1)
}

func TestSendTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hang like a stuck deploy script
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release) // runs first, so Close does not wait on the handler

	s := Sender{Timeout: 200 * time.Millisecond}
	start := time.Now()
	a := s.Send(context.Background(), model.Hook{URL: srv.URL, Secret: GenerateSecret()}, "msg_1", []byte(`{}`), start)
	elapsed := time.Since(start)

	if Succeeded(a) || a.StatusCode != 0 || !strings.Contains(a.Error, "deadline exceeded") {
		t.Fatalf("attempt = %+v, want a timeout error", a)
	}
	if elapsed > 2*time.Second || a.DurationMS < 200 {
		t.Fatalf("took %s (recorded %d ms), want about the 200ms timeout", elapsed, a.DurationMS)
	}
}

func TestSendStopsWhenCallerCancels(t *testing.T) {
	srv, _ := receiver(t, "whsec_AAAA", func(w http.ResponseWriter) {})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := Sender{}.Send(ctx, model.Hook{URL: srv.URL, Secret: GenerateSecret()}, "msg_1", []byte(`{}`), time.Now())
	if Succeeded(a) || !strings.Contains(a.Error, "context canceled") {
		t.Fatalf("attempt = %+v, want a cancellation error", a)
	}
}

func TestSucceeded(t *testing.T) {
	tests := []struct {
		a    model.Attempt
		want bool
	}{
		{model.Attempt{StatusCode: 200}, true},
		{model.Attempt{StatusCode: 299}, true},
		{model.Attempt{StatusCode: 300}, false},
		{model.Attempt{StatusCode: 199}, false},
		{model.Attempt{StatusCode: 500, Error: "HTTP 500"}, false},
		{model.Attempt{Error: "post webhook: connection refused"}, false},
		{model.Attempt{StatusCode: 200, Error: "read body: reset"}, false},
	}
	for _, tt := range tests {
		if got := Succeeded(tt.a); got != tt.want {
			t.Errorf("Succeeded(%+v) = %v, want %v", tt.a, got, tt.want)
		}
	}
}

// The zero Sender must not wait forever on a hung receiver; waiting out the
// real 10 s in a test would be too slow, so check the resolved value.
func TestZeroSenderTimeout(t *testing.T) {
	if got := (Sender{}).timeout(); got != 10*time.Second {
		t.Fatalf("zero Sender timeout = %s, want 10s", got)
	}
	if got := (Sender{Timeout: time.Second}).timeout(); got != time.Second {
		t.Fatalf("Sender{Timeout: 1s} timeout = %s", got)
	}
}
