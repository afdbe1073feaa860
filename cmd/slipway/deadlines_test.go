package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A build log outlives the server's read timeout and has no write
// deadline; any other answer must be written within its deadline.
func TestWriteDeadlines(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(400 * time.Millisecond)
		if err := r.Context().Err(); err != nil {
			http.Error(w, "cancelled: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "whole answer")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/builds/{id}/log", slow)
	mux.HandleFunc("GET /api/v1/builds/{id}", slow)
	srv := httptest.NewUnstartedServer(writeDeadlines(mux, 100*time.Millisecond))
	srv.Config.ReadTimeout = 100 * time.Millisecond
	srv.Start()
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL + "/api/v1/builds/b1/log")
	if err != nil {
		t.Fatalf("log: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "whole answer" {
		t.Errorf("log: HTTP %d %q, want 200 %q", resp.StatusCode, body, "whole answer")
	}

	resp, err = srv.Client().Get(srv.URL + "/api/v1/builds/b1")
	if err == nil {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Errorf("build: HTTP %d %q after its write deadline, want the connection closed", resp.StatusCode, body)
	}
}
