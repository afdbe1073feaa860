package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/store"
)

// fuzzServer is the API on one embedded JetStream store for a whole fuzz
// run; listing a remote's branches always fails, so nothing leaves the
// process.
func fuzzServer(f *testing.F) http.Handler {
	e, err := natsd.Start(natsd.Options{StoreDir: f.TempDir()})
	if err != nil {
		f.Fatalf("natsd.Start: %v", err)
	}
	f.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	if err != nil {
		f.Fatalf("Connect: %v", err)
	}
	f.Cleanup(nc.Close)
	st, err := store.Open(context.Background(), nc, store.Options{Replicas: 1, Keys: testKeys})
	if err != nil {
		f.Fatalf("store.Open: %v", err)
	}
	q, err := queue.Open(context.Background(), nc, st, queue.Options{})
	if err != nil {
		f.Fatalf("queue.Open: %v", err)
	}
	dir, err := access.Open(context.Background(), nc, 1)
	if err != nil {
		f.Fatalf("access.Open: %v", err)
	}
	dir.Bootstrap = testToken
	s := &api.Server{
		Repos: st, Builds: st, Queue: q, Seen: st, Tokens: dir, Orgs: dir, Hosts: apiHosts(),
		Heads: func(context.Context, model.Repo) (map[string]string, error) {
			return nil, errors.New("no remotes in fuzzing")
		},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
	}
	mux := http.NewServeMux()
	s.Register(mux)
	return mux
}

// FuzzCreateRepo posts arbitrary bodies to POST /api/v1/repos: the server
// never panics, answers no 5xx for what a client sent (every bad body is
// the client's to fix), and a registered repository is answered with an id
// and without its secrets.
func FuzzCreateRepo(f *testing.F) {
	f.Add(`{"provider":"github","full_name":"acme/demo","clone_url":"http://127.0.0.1:1/acme/demo.git","image":"127.0.0.1:5000/acme/demo","webhook_secret":"0123456789abcdef","rules":[{"source_type":"branch","source":"main","tags":["latest"]}]}`)
	f.Add(`{"provider":"gitlab","full_name":"a/b","image":"r/a","rules":[{"source_type":"tag","source":"/v(.*)/","tags":["{\\1}"],"build_args":{"V":"{version}"}}],"build_now":true}`)
	f.Add(`{"provider":"github","full_name":"a/b","unknown":1}`)
	f.Add(`{"hooks":[{"url":"http://127.0.0.1:9/x","secret":"whsec_AAAA"}]}`)
	f.Add(`[]`)
	f.Add(`{"rules":[{"source":"/(/","tags":["{date:}"]}]}` + strings.Repeat(" ", 10))
	h := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/repos", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: HTTP %d %s", body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusCreated {
			return
		}
		var got api.Registered
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.ID == "" || got.WebhookSecret != "" {
			t.Fatalf("body %q: answer %s (%v): want an id and no secret", body, rec.Body, err)
		}
		for _, hook := range got.Hooks {
			if hook.Secret != "" {
				t.Fatalf("body %q: hook secret answered: %s", body, rec.Body)
			}
		}
	})
}
