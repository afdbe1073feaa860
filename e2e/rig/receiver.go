package rig

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Received is one request a Receiver got.
type Received struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// Receiver is a deploy-hook endpoint that records every call. It answers
// 500 to the first FailFirst calls, then 200.
type Receiver struct {
	URL       string
	mu        sync.Mutex
	failFirst int
	got       []Received
	notify    chan struct{}
}

// StartReceiver serves until the test ends.
func StartReceiver(t testing.TB, failFirst int) *Receiver {
	r := &Receiver{failFirst: failFirst, notify: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, Received{Header: req.Header.Clone(), Body: body, At: time.Now()})
		fail := len(r.got) <= r.failFirst
		r.mu.Unlock()
		r.notify <- struct{}{}
		if fail {
			http.Error(w, "receiver is warming up", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Calls returns what was received so far.
func (r *Receiver) Calls() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.got...)
}

// WaitCalls waits until at least n calls arrived.
func (r *Receiver) WaitCalls(t testing.TB, n int, limit time.Duration) []Received {
	t.Helper()
	deadline := time.After(limit)
	for {
		if got := r.Calls(); len(got) >= n {
			return got
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("deploy receiver got %d calls, want %d within %s", len(r.Calls()), n, limit)
		}
	}
}
