package webhook_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/forge/github"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/webhook"
)

// A push's body replayed under a new delivery id after a newer push builds
// nothing, cancels nothing and leaves the newer push the ref's newest:
// remembered by its body's digest, and by the builds' identity alone when
// no delivery is remembered.
func TestHandlerReplayedOldBodyQueuesNothing(t *testing.T) {
	for _, remember := range []bool{true, false} {
		name := map[bool]string{true: "deliveries remembered", false: "identity alone"}[remember]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			if remember {
				e.h.Deliveries = e.store
			}
			a := delivery{event: "push", id: "a-1", body: gh(t, "push-branch.json")}
			code, resp := e.send(a)
			accepted(t, code, resp, idMain)
			e.clock = now.Add(time.Minute)
			b := delivery{event: "push", id: "b-1", body: bytes.ReplaceAll(a.body, []byte(branchHead), []byte(nextHead))}
			code, resp = e.send(b)
			accepted(t, code, resp, idNextMain)

			e.clock = now.Add(2 * time.Minute)
			a.id = "a-replayed"
			code, resp = e.send(a)
			accepted(t, code, resp, idMain)
			e.recorded(idMain, idNextMain)
			if got := e.build(idNextMain); got.Status != model.StatusQueued || got.CancelRequested {
				t.Errorf("newer build after the replay: status %s, cancel requested %v; want queued, not cancelled", got.Status, got.CancelRequested)
			}
			if got := e.build(idMain); got.Status != model.StatusCancelled || got.SupersededBy != idNextMain {
				t.Errorf("replayed build: status %s, superseded by %q; want cancelled by %s", got.Status, got.SupersededBy, idNextMain)
			}
			last, err := e.store.LastCommit(e.ctx, "r1", "refs/heads/main")
			if err != nil || last != nextHead {
				t.Errorf("ref's newest commit = %q (%v), want %s", last, err, nextHead)
			}
		})
	}
}

// The same delivery id with the same body is answered from the record.
func TestHandlerRedeliveryAnsweredFromRecord(t *testing.T) {
	e := newEnv(t, nil)
	e.h.Deliveries = e.store
	d := delivery{event: "push", id: "same-id", body: gh(t, "push-branch.json")}
	code, resp := e.send(d)
	accepted(t, code, resp, idMain)
	got, ok, err := e.store.SeenDelivery(e.ctx, "r1", []string{"id.7b3c1b8e4f0e2f1bd3b7e0c4bb7f7d4d6a1cfd9f1b2a2c8f4f3d0a7c5b9e6d21"})
	if err != nil || ok {
		t.Errorf("an unknown key answered %+v, %v, %v; want nothing", got, ok, err)
	}
	code, resp = e.send(d)
	accepted(t, code, resp, idMain)
	e.recorded(idMain)
}

// A body whose declared length is over the host's limit is refused before
// it is read.
func TestHandlerDeclaredLengthOverLimit(t *testing.T) {
	e := newEnv(t, nil)
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", strings.NewReader("{}"))
	req.ContentLength = 26 << 20
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "too-big")
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413: %s", rec.Code, rec.Body)
	}
}

// Bodies that do not fit in the budget are answered 503 with Retry-After at
// once; a body that fits is served.
func TestHandlerBodyBudget(t *testing.T) {
	e := newEnv(t, nil)
	body := gh(t, "push-branch.json")
	e.h.BodyBudget = int64(len(body)) - 1
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "over-budget")
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" {
		t.Errorf("over budget: status %d, Retry-After %q; want 503 and 5", rec.Code, rec.Header().Get("Retry-After"))
	}
	e2 := newEnv(t, nil)
	e2.h.BodyBudget = int64(len(body))
	code, resp := e2.send(delivery{event: "push", id: "fits", body: body})
	accepted(t, code, resp, idMain)
}

// parseCounter is GitHub's adapter counting full decodes.
type parseCounter struct {
	github.Webhook
	parsed *int
}

func (p parseCounter) Parse(h http.Header, body []byte) (webhook.Event, error) {
	*p.parsed++
	return p.Webhook.Parse(h, body)
}

// A body with a wrong signature is never decoded in full.
func TestHandlerVerifiesBeforeParsing(t *testing.T) {
	parsed := 0
	e := newEnv(t, []webhook.Provider{parseCounter{parsed: &parsed}})
	code, resp := e.send(delivery{event: "push", id: "forged", body: gh(t, "push-branch.json"), sig: ptr("sha256=00")})
	if code != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401: %v", code, resp)
	}
	if parsed != 0 {
		t.Errorf("Parse called %d times for a forged body, want 0", parsed)
	}
	code, resp = e.send(delivery{event: "push", id: "genuine", body: gh(t, "push-branch.json")})
	accepted(t, code, resp, idMain)
	if parsed != 1 {
		t.Errorf("Parse called %d times for a genuine body, want 1", parsed)
	}
}
