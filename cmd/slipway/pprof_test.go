package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestPprofServesProfilesOnlyWhenAsked(t *testing.T) {
	var st stack
	if err := startPprof("", slog.New(slog.DiscardHandler), &st); err != nil || len(st) != 0 {
		t.Fatalf("empty address: err %v, %d things started; want nothing", err, len(st))
	}
	var logged strings.Builder
	if err := startPprof("127.0.0.1:0", slog.New(slog.NewTextHandler(&logged, nil)), &st); err != nil {
		t.Fatal(err)
	}
	defer st.close()
	_, addr, _ := strings.Cut(logged.String(), "pprof=")
	addr = strings.TrimSpace(addr)
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), "goroutine profile:") {
		t.Errorf("GET /debug/pprof/goroutine: HTTP %d %.200s", resp.StatusCode, raw)
	}
}
