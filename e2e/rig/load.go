package rig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/webhook"
)

// SwitchReceiver is a deploy-hook endpoint on a fixed loopback address that
// the test can take down and bring back on the same port, to play a
// receiver that is away for a while. It records every call and answers 204.
type SwitchReceiver struct {
	Addr string
	URL  string

	t      testing.TB
	mu     sync.Mutex
	srv    *http.Server
	got    []Received
	notify chan struct{}
}

// NewSwitchReceiver reserves a loopback address; the receiver starts down.
func NewSwitchReceiver(t testing.TB) *SwitchReceiver {
	t.Helper()
	addr := FreeAddr(t)
	r := &SwitchReceiver{Addr: addr, URL: "http://" + addr, t: t, notify: make(chan struct{}, 1000)}
	t.Cleanup(r.Down)
	return r
}

// Up starts listening on the receiver's address.
func (r *SwitchReceiver) Up() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ln, err = net.Listen("tcp", r.Addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receiver cannot listen on %s again: %v", r.Addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
}

// Down closes the listener and every open connection: callers get
// "connection refused" until Up.
func (r *SwitchReceiver) Down() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		_ = r.srv.Close()
		r.srv = nil
	}
}

func (r *SwitchReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, Received{Header: req.Header.Clone(), Body: body, At: time.Now()})
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// Calls returns what was received so far.
func (r *SwitchReceiver) Calls() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.got...)
}

// WaitCalls waits until at least n calls arrived.
func (r *SwitchReceiver) WaitCalls(t testing.TB, n int, limit time.Duration) []Received {
	t.Helper()
	deadline := time.After(limit)
	for {
		if got := r.Calls(); len(got) >= n {
			return got
		}
		select {
		case <-r.notify:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("deploy receiver got %d calls, want %d within %s", len(r.Calls()), n, limit)
		}
	}
}

// loadClient keeps connections to Slipway open across many concurrent
// webhooks.
var loadClient = &http.Client{
	Timeout:   2 * time.Minute,
	Transport: &http.Transport{MaxIdleConns: 200, MaxIdleConnsPerHost: 200, IdleConnTimeout: 30 * time.Second},
}

// PostGitHub is SendGitHub for use from many goroutines at once: it returns
// errors instead of failing the test.
func PostGitHub(baseURL, event, delivery, secret string, body []byte) (HookResponse, error) {
	req, err := http.NewRequest("POST", baseURL+"/hooks/github", bytes.NewReader(body))
	if err != nil {
		return HookResponse{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/test")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	if secret != "" {
		req.Header.Set("X-Hub-Signature-256", "sha256="+webhook.SignHMAC(body, secret))
	}
	resp, err := loadClient.Do(req)
	if err != nil {
		return HookResponse{}, fmt.Errorf("send webhook %s: %w", delivery, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := HookResponse{Code: resp.StatusCode}
	if err := json.Unmarshal(raw, &out); err != nil && resp.StatusCode < 300 {
		return out, fmt.Errorf("webhook %s: undecodable answer %q", delivery, raw)
	}
	return out, nil
}

// InParallel calls fn(0) … fn(count-1) with at most n calls running at once
// and returns when all have returned.
func InParallel(n, count int, fn func(i int)) {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}
