package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/model"
)

// follower is a client following a build's log in the background.
type follower struct {
	t      *testing.T
	events chan api.Event
	done   chan error
	cancel context.CancelFunc
}

// follow starts c.FollowLog of id from offset; onEvent, when set, runs in
// the client's callback before the event is handed to the test.
func follow(t *testing.T, c api.Client, id string, offset int64, onEvent func(api.Event)) *follower {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	f := &follower{t: t, events: make(chan api.Event, 1000), done: make(chan error, 1), cancel: cancel}
	t.Cleanup(cancel)
	go func() {
		f.done <- c.FollowLog(ctx, id, offset, func(e api.Event) error {
			if onEvent != nil {
				onEvent(e)
			}
			f.events <- e
			return nil
		})
	}()
	return f
}

// next is the next event; the test fails after 10 s without one.
func (f *follower) next() api.Event {
	f.t.Helper()
	select {
	case e := <-f.events:
		return e
	case err := <-f.done:
		// Events handed on before FollowLog returned come first.
		select {
		case e := <-f.events:
			f.done <- err
			return e
		default:
		}
		f.t.Fatalf("FollowLog returned %v while an event was awaited", err)
	case <-time.After(10 * time.Second):
		f.t.Fatal("no event within 10 s")
	}
	return api.Event{}
}

// untilEnd collects the events up to and including the end event, and
// checks that FollowLog then returns nil.
func (f *follower) untilEnd() []api.Event {
	f.t.Helper()
	var got []api.Event
	for {
		e := f.next()
		got = append(got, e)
		if e.Kind == api.EventEnd {
			break
		}
	}
	select {
	case err := <-f.done:
		if err != nil {
			f.t.Fatalf("FollowLog after the end = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		f.t.Fatal("FollowLog did not return after the end event")
	}
	return got
}

// event is an api.Event as the tests compare it: the record reduced to
// its id and status.
type event struct {
	Kind, Text  string
	Offset      int64
	Build, Stat string
}

func brief(e api.Event) event {
	out := event{Kind: e.Kind, Text: e.Text, Offset: e.Offset, Stat: e.Status}
	if e.Build != nil {
		out.Build, out.Stat = e.Build.ID, e.Build.Status
	}
	return out
}

func briefs(es []api.Event) []event {
	out := make([]event, len(es))
	for i, e := range es {
		out[i] = brief(e)
	}
	return out
}

func (h *harness) appendLog(id, text string) {
	h.t.Helper()
	if err := h.store.AppendLog(testCtx(h.t), id, []byte(text)); err != nil {
		h.t.Fatalf("AppendLog: %v", err)
	}
}

func (h *harness) markRunning(id string) {
	h.t.Helper()
	if _, err := h.store.UpdateBuild(testCtx(h.t), id, func(b *model.Build) error {
		b.Status = model.StatusRunning
		return nil
	}); err != nil {
		h.t.Fatalf("UpdateBuild: %v", err)
	}
}

// TestFollowLogLive: a client following a running build sees its status,
// each piece of log as it is stored, the finished status and the end;
// log stored just before the build finished still comes before the end.
func TestFollowLogLive(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	b := h.trigger(repo.ID, "", commitA)
	h.markRunning(b.ID)

	f := follow(t, h.client, b.ID, 0, nil)
	if got, want := brief(f.next()), (event{Kind: "status", Build: b.ID, Stat: "running"}); got != want {
		t.Fatalf("first event = %+v, want %+v", got, want)
	}
	h.appendLog(b.ID, "#1 clone\n")
	if got, want := brief(f.next()), (event{Kind: "log", Text: "#1 clone\n", Offset: 9}); got != want {
		t.Fatalf("event = %+v, want %+v", got, want)
	}
	h.appendLog(b.ID, "#2 RUN make\n")
	if got, want := brief(f.next()), (event{Kind: "log", Text: "#2 RUN make\n", Offset: 21}); got != want {
		t.Fatalf("event = %+v, want %+v", got, want)
	}

	// The worker's order: the last of the log, then the final status at
	// once. All of it must come before the end.
	var last strings.Builder
	for i := range 30 {
		line := fmt.Sprintf("#3 line %02d\n", i) // 11 bytes
		last.WriteString(line)
		h.appendLog(b.ID, line)
	}
	h.markFinished(b.ID, model.StatusSucceeded)
	rest := f.untilEnd()

	var text strings.Builder
	var statuses []event
	for _, e := range rest[:len(rest)-1] {
		switch e.Kind {
		case api.EventLog:
			text.WriteString(e.Text)
		case api.EventStatus:
			statuses = append(statuses, brief(e))
			if e.Build.Digest != "sha256:"+strings.Repeat("d", 64) || e.Build.FinishedAt == nil {
				t.Errorf("finished status event carries %+v, want the whole record", *e.Build)
			}
		default:
			t.Errorf("unexpected event %+v", brief(e))
		}
	}
	if text.String() != last.String() {
		t.Errorf("log after #2 = %q\nwant %q", text.String(), last.String())
	}
	if want := []event{{Kind: "status", Build: b.ID, Stat: "succeeded"}}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("status events = %+v, want %+v", statuses, want)
	}
	if got, want := brief(rest[len(rest)-1]), (event{Kind: "end", Stat: "succeeded"}); got != want {
		t.Errorf("last event = %+v, want %+v", got, want)
	}
	var lastEnd int64
	for _, e := range rest {
		if e.Kind == api.EventLog {
			lastEnd = e.Offset
		}
	}
	if lastEnd != 351 { // 21 + 30 lines of 11 bytes
		t.Errorf("last log event ends at %d, want 351", lastEnd)
	}
	h.noFollowersLeft()
}

// noFollowersLeft waits until no consumer reads a log or watches a build.
func (h *harness) noFollowersLeft() {
	h.t.Helper()
	// A follower deletes its consumers as it leaves; one that a loaded
	// machine made the client library replace (an ordered consumer is
	// recreated after missed heartbeats) is dropped by the server after
	// its inactive threshold (store's 30 s): either way none may stay.
	deadline := time.Now().Add(45 * time.Second)
	for {
		n, err := h.store.Followers(testCtx(h.t))
		if err != nil {
			h.t.Fatalf("Followers: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d consumers still read logs or watch builds 45 s after the followers left", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFollowLogResume: following a finished build from an offset sends
// what follows it, then the end; the plain GET stays plain text.
func TestFollowLogResume(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	b := h.trigger(repo.ID, "", commitA)
	for _, c := range []string{"one\n", "two\n", "three\n"} { // ends at 4, 8, 14
		h.appendLog(b.ID, c)
	}
	h.markFinished(b.ID, model.StatusFailed)
	status := event{Kind: "status", Build: b.ID, Stat: "failed"}
	end := event{Kind: "end", Stat: "failed"}

	tests := []struct {
		offset int64
		want   []event
	}{
		{0, []event{status, {Kind: "log", Text: "one\n", Offset: 4}, {Kind: "log", Text: "two\n", Offset: 8}, {Kind: "log", Text: "three\n", Offset: 14}, end}},
		{4, []event{status, {Kind: "log", Text: "two\n", Offset: 8}, {Kind: "log", Text: "three\n", Offset: 14}, end}},
		{6, []event{status, {Kind: "log", Text: "o\n", Offset: 8}, {Kind: "log", Text: "three\n", Offset: 14}, end}},
		{14, []event{status, end}},
		{99, []event{status, end}},
	}
	for _, tt := range tests {
		got := briefs(follow(t, h.client, b.ID, tt.offset, nil).untilEnd())
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("from %d: events = %+v\nwant %+v", tt.offset, got, tt.want)
		}
	}

	t.Run("the stream as sent", func(t *testing.T) {
		record, err := json.Marshal(h.getBuild(b.ID))
		if err != nil {
			t.Fatal(err)
		}
		want := "event: status\ndata: " + string(record) + "\n\n" +
			"event: log\nid: 14\ndata: {\"text\":\"three\\n\"}\n\n" +
			"event: end\ndata: {\"status\":\"failed\"}\n\n"
		// Last-Event-ID, which a reconnecting client sends, wins over
		// the URL's offset.
		code, hdr, raw := h.get("/api/v1/builds/"+b.ID+"/log?offset=0", "Accept", "text/event-stream", "Last-Event-ID", "8")
		if code != http.StatusOK || string(raw) != want {
			t.Errorf("HTTP %d\n%s\nwant\n%s", code, raw, want)
		}
		if ct := hdr.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("Content-Type = %q, want text/event-stream", ct)
		}
		code, hdr, raw = h.get("/api/v1/builds/" + b.ID + "/log?follow=1&offset=8")
		if code != http.StatusOK || string(raw) != want || hdr.Get("Content-Type") != "text/event-stream" {
			t.Errorf("?follow=1: HTTP %d %s\n%s", code, hdr.Get("Content-Type"), raw)
		}
	})
	t.Run("plain GET stays plain text", func(t *testing.T) {
		code, hdr, raw := h.get("/api/v1/builds/" + b.ID + "/log")
		if code != http.StatusOK || string(raw) != "one\ntwo\nthree\n" || hdr.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("HTTP %d %s %q", code, hdr.Get("Content-Type"), raw)
		}
	})
	t.Run("bad offsets", func(t *testing.T) {
		for _, tt := range []struct {
			path, header, value, msg string
		}{
			{"?follow=1&offset=-1", "", "", `offset: want a byte offset (0 or more), got "-1"`},
			{"?follow=1&offset=x", "", "", `offset: want a byte offset (0 or more), got "x"`},
			{"?follow=1", "Last-Event-ID", "1e3", `Last-Event-ID: want a byte offset (0 or more), got "1e3"`},
		} {
			var kv []string
			if tt.header != "" {
				kv = []string{tt.header, tt.value}
			}
			code, _, raw := h.get("/api/v1/builds/"+b.ID+"/log"+tt.path, kv...)
			if code != http.StatusBadRequest || errorOf(t, raw) != tt.msg {
				t.Errorf("%s %v: HTTP %d %s, want 400 %s", tt.path, kv, code, raw, tt.msg)
			}
		}
	})
	h.noFollowersLeft()
}

// get sends a GET with the test token and the headers given as name,
// value pairs.
func (h *harness) get(path string, headers ...string) (int, http.Header, []byte) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(testCtx(h.t), "GET", h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, resp.Header, raw
}

// TestFollowLogReconnects: a connection that drops after the first piece
// of log is opened again from where that piece ended, and nothing is
// handed on twice.
func TestFollowLogReconnects(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	b := h.trigger(repo.ID, "", commitA)
	h.markRunning(b.ID)
	h.appendLog(b.ID, "first\n")

	var (
		mu      sync.Mutex
		resumed []string // Last-Event-ID of each connection
	)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		resumed = append(resumed, r.Header.Get("Last-Event-ID"))
		first := len(resumed) == 1
		mu.Unlock()
		if first {
			w = &cutAfterLog{ResponseWriter: w}
		}
		h.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	c := api.Client{BaseURL: proxy.URL, Token: testToken}

	f := follow(t, c, b.ID, 0, func(e api.Event) {
		switch e.Text {
		case "first\n":
			h.appendLog(b.ID, "second\n")
		case "second\n":
			h.markFinished(b.ID, model.StatusSucceeded)
		}
	})
	got := briefs(f.untilEnd())
	want := []event{
		{Kind: "status", Build: b.ID, Stat: "running"},
		{Kind: "log", Text: "first\n", Offset: 6},
		{Kind: "log", Text: "second\n", Offset: 13},
		{Kind: "status", Build: b.ID, Stat: "succeeded"},
		{Kind: "end", Stat: "succeeded"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events = %+v\nwant %+v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"", "6"}; !reflect.DeepEqual(resumed, want) {
		t.Errorf("Last-Event-ID of the connections = %q, want %q", resumed, want)
	}
}

// cutAfterLog drops the connection right after the first log event.
type cutAfterLog struct{ http.ResponseWriter }

func (c *cutAfterLog) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	if strings.HasPrefix(string(p), "event: log") {
		_ = http.NewResponseController(c.ResponseWriter).Flush()
		panic(http.ErrAbortHandler) // net/http closes the connection
	}
	return n, err
}

func (c *cutAfterLog) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// TestFollowLogClientLeaves: a client that goes away leaves no handler
// running and no consumer on NATS.
func TestFollowLogClientLeaves(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	b := h.trigger(repo.ID, "", commitA)
	h.markRunning(b.ID)
	var active atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		active.Add(1)
		defer active.Add(-1)
		h.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := api.Client{BaseURL: srv.URL, Token: testToken}

	f := follow(t, c, b.ID, 0, nil)
	f.next() // the status: the stream is open
	h.appendLog(b.ID, "working\n")
	f.next()
	if n, err := h.store.Followers(testCtx(t)); err != nil || n != 2 {
		t.Errorf("consumers while one client follows = %d, %v; want 2 (the log's and the record's)", n, err)
	}
	f.cancel()
	if err := <-f.done; err != context.Canceled {
		t.Errorf("FollowLog after its context ended = %v, want context.Canceled", err)
	}
	// A follower deletes its consumers as it leaves; one that a loaded
	// machine made the client library replace (an ordered consumer is
	// recreated after missed heartbeats) is dropped by the server after
	// its inactive threshold (store's 30 s): either way none may stay.
	deadline := time.Now().Add(45 * time.Second)
	for active.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the log handler still runs 10 s after its client left")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.noFollowersLeft()
}

// TestFollowLogKeepalive: a quiet stream sends a keepalive comment every
// Keepalive.
func TestFollowLogKeepalive(t *testing.T) {
	h := newHarness(t, func(s *api.Server) { s.Keepalive = 100 * time.Millisecond })
	repo := h.createRepo(validRepo("acme/demo"))
	b := h.trigger(repo.ID, "", commitA)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/api/v1/builds/"+b.ID+"/log", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	start, keepalives := time.Now(), 0
	for keepalives < 3 && sc.Scan() {
		if sc.Text() == ": keepalive" {
			keepalives++
		}
	}
	if keepalives != 3 {
		t.Fatalf("keepalives = %d before the stream ended (%v)", keepalives, sc.Err())
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("3 keepalives in %s, want one every 100 ms", took)
	}
}

// TestFollowLogKeepsCharactersWhole: a chunk that ends inside a UTF-8
// character holds its start back until the next chunk completes it.
func TestFollowLogKeepsCharactersWhole(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	b := h.trigger(repo.ID, "", commitA)
	h.markRunning(b.ID)
	f := follow(t, h.client, b.ID, 0, nil)
	f.next()
	h.appendLog(b.ID, "caf\xc3")
	h.appendLog(b.ID, "\xa9 \xe2\x82")
	h.appendLog(b.ID, "\xac\n")
	for _, want := range []event{
		{Kind: "log", Text: "caf", Offset: 3},
		{Kind: "log", Text: "é ", Offset: 6},
		{Kind: "log", Text: "€\n", Offset: 10},
	} {
		if got := brief(f.next()); got != want {
			t.Errorf("event = %+v, want %+v", got, want)
		}
	}
	// A log that ends inside a character sends its last bytes before
	// the end all the same.
	h.appendLog(b.ID, "cut \xe2\x82")
	if got, want := brief(f.next()), (event{Kind: "log", Text: "cut ", Offset: 14}); got != want {
		t.Errorf("event = %+v, want %+v", got, want)
	}
	h.markFinished(b.ID, model.StatusSucceeded)
	got := briefs(f.untilEnd())
	want := []event{
		{Kind: "status", Build: b.ID, Stat: "succeeded"},
		{Kind: "log", Text: "\ufffd\ufffd", Offset: 16},
		{Kind: "end", Stat: "succeeded"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events = %+v\nwant %+v", got, want)
	}
}
