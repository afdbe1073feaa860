package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slipway-build/slipway/model"
)

// Live follows builds as they run (package store): their log as it grows
// and their record as it changes.
type Live interface {
	// FollowLog hands fn the log from byte offset on, then each chunk as
	// it is stored, until ctx ends; end is the offset just after chunk.
	FollowLog(ctx context.Context, buildID string, offset int64, fn func(chunk []byte, end int64) error) error
	// LogSize is how many bytes of the log are stored.
	LogSize(ctx context.Context, buildID string) (int64, error)
	// WatchBuild sends the record now and after each change until ctx
	// ends, then closes the channel.
	WatchBuild(ctx context.Context, id string) (<-chan model.Build, error)
}

// DefaultKeepalive is how often a followed log sends a comment when
// nothing else happens, so that proxies keep the connection open.
const DefaultKeepalive = 15 * time.Second

// wantsStream reports whether a GET of a build's log asks for the live
// stream (Server-Sent Events) rather than the plain text so far.
func wantsStream(r *http.Request) bool {
	return r.URL.Query().Get("follow") == "1" || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// logOffset is where a followed log starts: after Last-Event-ID bytes (a
// client reconnecting), else ?offset=, else at the start.
func logOffset(r *http.Request) (int64, error) {
	v, what := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if v == "" {
		v, what = r.URL.Query().Get("offset"), "offset"
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badf("%s: want a byte offset (0 or more), got %q", what, v)
	}
	return n, nil
}

// logChunk is a piece of the log on its way from the store to the client.
type logChunk struct {
	data []byte
	end  int64
}

// streamLog answers a build's log as Server-Sent Events: a status event
// first, each log chunk as it is stored, a status event whenever the
// status changes, and an end event once the build is finished and every
// byte stored until then was sent.
func (s *Server) streamLog(w http.ResponseWriter, r *http.Request, b model.Build) {
	offset, err := logOffset(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.Live == nil {
		writeError(w, http.StatusNotImplemented, "this process cannot follow logs; GET the log without Accept: text/event-stream")
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	builds, err := s.Live.WatchBuild(ctx, b.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The watch's goroutine is gone before the handler returns.
	defer func() {
		cancel()
		for range builds {
		}
	}()
	ev := &eventWriter{w: w, rc: http.NewResponseController(w), read: offset}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would hold the events back
	w.WriteHeader(http.StatusOK)
	f := &follow{s: s, ev: ev, id: b.ID, size: -1}
	if err := f.run(ctx, builds, offset); err != nil {
		s.logger().Debug("log stream ended", "build", b.ID, "sent", ev.read, "err", err)
	}
}

// follow is one client following one build.
type follow struct {
	s  *Server
	ev *eventWriter
	id string
	// status is the last status sent; size is the log's length once the
	// build was seen finished (-1 before), final that record.
	status string
	size   int64
	final  model.Build
}

// run sends events until the build's end was sent, the client left or the
// store stopped answering; the log's follower is gone when it returns.
func (f *follow) run(ctx context.Context, builds <-chan model.Build, offset int64) error {
	// The record first, so that a client knows the status before the log.
	select {
	case b, ok := <-builds:
		if !ok {
			return fmt.Errorf("watch of build %s ended", f.id)
		}
		if err := f.record(ctx, b); err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	ctx, stop := context.WithCancel(ctx)
	chunks, followed := f.followLog(ctx, offset)
	defer func() { stop(); <-followed }()
	keepalive := time.NewTicker(f.s.keepalive())
	defer keepalive.Stop()
	for {
		if f.size >= 0 && f.ev.read >= f.size {
			return f.ev.end(f.final.Status)
		}
		var err error
		select {
		case c := <-chunks:
			err = f.ev.log(c)
		case b, ok := <-builds:
			if !ok {
				return fmt.Errorf("watch of build %s ended", f.id)
			}
			err = f.record(ctx, b)
		case err = <-followed:
			return fmt.Errorf("follow log of %s: %w", f.id, err)
		case <-keepalive.C:
			err = f.ev.comment("keepalive")
		case <-ctx.Done():
			return ctx.Err()
		}
		if err != nil {
			return err
		}
	}
}

// followLog starts following the log in a goroutine; the second channel
// answers its error once it has returned (after ctx ended, at the latest),
// and is closed then.
func (f *follow) followLog(ctx context.Context, offset int64) (<-chan logChunk, <-chan error) {
	chunks, done := make(chan logChunk), make(chan error, 1)
	go func() {
		defer close(done)
		done <- f.s.Live.FollowLog(ctx, f.id, offset, func(data []byte, end int64) error {
			select {
			case chunks <- logChunk{data: data, end: end}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return chunks, done
}

// record sends a status event when the status changed. The first finished
// record fixes how much log the stream must send before its end: every
// byte stored by then, since a worker stores the last of its log before
// it stores the final status.
func (f *follow) record(ctx context.Context, b model.Build) error {
	if b.Status != f.status {
		if err := f.ev.status(b); err != nil {
			return err
		}
		f.status = b.Status
	}
	if model.Terminal(b.Status) && f.size < 0 {
		n, err := f.s.Live.LogSize(ctx, f.id)
		if err != nil {
			return err
		}
		f.size, f.final = n, b
	}
	return nil
}

func (s *Server) keepalive() time.Duration {
	if s.Keepalive > 0 {
		return s.Keepalive
	}
	return DefaultKeepalive
}

// eventWriter writes Server-Sent Events and flushes each one.
type eventWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	// read is the log's offset just after the last chunk received; held
	// are its last bytes when they are the start of a UTF-8 character
	// that the next chunk completes: they are sent with it, so that no
	// character is broken in the JSON and every id is a place to resume.
	read int64
	held []byte
}

func (e *eventWriter) log(c logChunk) error {
	data := append(e.held, c.data...)
	cut := completeUTF8(data)
	e.held, e.read = append([]byte(nil), data[cut:]...), c.end
	if cut == 0 {
		return nil
	}
	return e.logEvent(data[:cut], c.end-int64(len(data)-cut))
}

func (e *eventWriter) logEvent(text []byte, end int64) error {
	raw, err := json.Marshal(struct {
		Text string `json:"text"`
	}{string(text)})
	if err != nil {
		return err
	}
	return e.send("event: log\nid: " + strconv.FormatInt(end, 10) + "\ndata: " + string(raw) + "\n\n")
}

func (e *eventWriter) status(b model.Build) error {
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return e.send("event: status\ndata: " + string(raw) + "\n\n")
}

// end sends what is held back (a log ending inside a character) and the
// end event.
func (e *eventWriter) end(status string) error {
	if len(e.held) > 0 {
		if err := e.logEvent(e.held, e.read); err != nil {
			return err
		}
		e.held = nil
	}
	raw, err := json.Marshal(map[string]string{"status": status})
	if err != nil {
		return err
	}
	return e.send("event: end\ndata: " + string(raw) + "\n\n")
}

func (e *eventWriter) comment(text string) error { return e.send(": " + text + "\n\n") }

func (e *eventWriter) send(event string) error {
	if _, err := e.w.Write([]byte(event)); err != nil {
		return err
	}
	return e.rc.Flush()
}

// completeUTF8 is the length of data without a trailing incomplete UTF-8
// character (at most 3 bytes, which a later chunk may complete).
func completeUTF8(data []byte) int {
	for back := 1; back <= utf8.UTFMax-1 && back <= len(data); back++ {
		i := len(data) - back
		if !utf8.RuneStart(data[i]) {
			continue
		}
		if utf8.FullRune(data[i:]) {
			return len(data)
		}
		return i
	}
	return len(data)
}
