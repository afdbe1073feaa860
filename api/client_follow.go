package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-build/slipway/model"
)

// The kinds of Event.
const (
	EventLog    = "log"
	EventStatus = "status"
	EventEnd    = "end"
)

// Event is one event of a followed build log.
type Event struct {
	Kind string // EventLog, EventStatus or EventEnd
	// Text is a piece of the log, and Offset the log's byte offset just
	// after it: following again from Offset goes on from there (EventLog).
	Text   string
	Offset int64
	// Build is the build's record, its status changed (EventStatus).
	Build *model.Build
	// Status is the finished build's status (EventEnd).
	Status string
}

// How FollowLog copes with connections that drop: a connection quiet for
// followIdle is taken for dead (the server sends a keepalive every 15 s),
// and after followRetries failed connections in a row without an event it
// gives up.
const (
	followIdle    = time.Minute
	followRetries = 10
	maxEventLine  = 8 << 20 // a 64 KiB chunk JSON-escaped stays far below
)

// errStreamEnded is a stream that sent its end event.
var errStreamEnded = errors.New("log stream ended")

// permanentError is returned by FollowLog as it is, never retried: fn's
// error, or an answer that is no event stream.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }

// FollowLog follows a build's log live from byte offset (0: the start)
// until the build is finished and all of its log was sent, handing fn each
// event in order: a status event first, log events as the log grows, a
// status event whenever the status changes, and the end event last. A
// connection that drops before the end is opened again where the last log
// event ended. It returns nil after the end event, fn's error as it is,
// an *Error for an answer such as 404, or ctx's error. c.HTTP must have no
// Timeout shorter than the build.
func (c Client) FollowLog(ctx context.Context, id string, offset int64, fn func(Event) error) error {
	st := &followState{offset: offset, fn: fn}
	for failures := 0; ; {
		n, err := c.followOnce(ctx, id, st)
		var perm permanentError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errStreamEnded):
			return nil
		case errors.As(err, &perm):
			return perm.err
		case !retryable(ctx, err):
			return err
		}
		if n > 0 {
			failures = 0
		}
		if failures++; failures >= followRetries {
			return fmt.Errorf("follow log of build %s: gave up after %d failed connections: %w", id, failures, err)
		}
		select {
		case <-time.After(min(time.Duration(failures)*500*time.Millisecond, 5*time.Second)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// followState is what FollowLog carries from one connection to the next.
type followState struct {
	offset int64
	status string // the last status handed on, so that a reconnection's first status event is not handed on again
	fn     func(Event) error
}

// retryable reports whether following may go on after err: the connection
// failed or dropped, or a proxy or the server was briefly unavailable.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code == http.StatusBadGateway || e.Code == http.StatusServiceUnavailable || e.Code == http.StatusGatewayTimeout
	}
	return true
}

// followOnce reads one connection's events; it answers how many it handed
// on, and errStreamEnded after the end event.
func (c Client) followOnce(ctx context.Context, id string, st *followState) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	path := "/api/v1/builds/" + url.PathEscape(id) + "/log"
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "text/event-stream")
	if st.offset > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(st.offset, 10))
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if err := streamAnswer(resp); err != nil {
		return 0, err
	}
	// Every line read puts the deadline off; a quiet connection is closed.
	idle := time.AfterFunc(followIdle, cancel)
	defer idle.Stop()
	return readEvents(resp.Body, func() { idle.Reset(followIdle) }, st)
}

// streamAnswer checks that resp is an event stream, else answers its
// error.
func streamAnswer(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return &Error{Code: resp.StatusCode, Message: e.Error}
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "text/event-stream" {
		return permanentError{fmt.Errorf("the server answered %q, not a live log (text/event-stream)", resp.Header.Get("Content-Type"))}
	}
	return nil
}

// readEvents parses Server-Sent Events from body and hands them on.
func readEvents(body io.Reader, alive func(), st *followState) (int, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	var (
		kind, lastID string
		data         bytes.Buffer
		n            int
	)
	for sc.Scan() {
		alive()
		line := sc.Text()
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				kind = value
			case "id":
				lastID = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			}
			continue
		}
		handed, err := st.dispatch(kind, lastID, data.Bytes())
		if handed {
			n++
		}
		if err != nil {
			return n, err
		}
		kind = ""
		data.Reset()
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("read the log stream: %w", err)
	}
	return n, fmt.Errorf("the log stream closed before its end: %w", io.ErrUnexpectedEOF)
}

// dispatch hands on one event; it reports whether it did. Events of other
// kinds (and comments, which carry no data) are passed over.
func (st *followState) dispatch(kind, id string, data []byte) (bool, error) {
	var ev Event
	switch kind {
	case EventLog:
		var v struct {
			Text string `json:"text"`
		}
		end, err := strconv.ParseInt(id, 10, 64)
		if err := errors.Join(err, json.Unmarshal(data, &v)); err != nil {
			return false, fmt.Errorf("log event (id %q): %w", id, err)
		}
		ev, st.offset = Event{Kind: EventLog, Text: v.Text, Offset: end}, end
	case EventStatus:
		var b model.Build
		if err := json.Unmarshal(data, &b); err != nil {
			return false, fmt.Errorf("status event: %w", err)
		}
		if b.Status == st.status {
			return false, nil
		}
		ev, st.status = Event{Kind: EventStatus, Build: &b}, b.Status
	case EventEnd:
		var v struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return false, fmt.Errorf("end event: %w", err)
		}
		if err := st.fn(Event{Kind: EventEnd, Status: v.Status}); err != nil {
			return true, permanentError{err}
		}
		return true, errStreamEnded
	default:
		return false, nil
	}
	if err := st.fn(ev); err != nil {
		return true, permanentError{err}
	}
	return true, nil
}
