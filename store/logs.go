package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// AppendLog adds a chunk to a build's log.
func (s *Store) AppendLog(ctx context.Context, buildID string, chunk []byte) error {
	if _, err := s.js.Publish(ctx, logsPrefix+buildID, chunk); err != nil {
		return fmt.Errorf("append log of %s: %w", buildID, err)
	}
	return nil
}

// CopyLog writes a build's log as stored so far to w, one stored chunk at a
// time, so a long log is never held whole. It returns the bytes written.
func (s *Store) CopyLog(ctx context.Context, buildID string, w io.Writer) (int64, error) {
	var n int64
	err := s.eachChunk(ctx, buildID, false, func(msg jetstream.Msg) error {
		k, err := w.Write(msg.Data())
		n += int64(k)
		if err != nil {
			return fmt.Errorf("send log of %s: %w", buildID, err)
		}
		return nil
	})
	return n, err
}

// LogSize is how many bytes of a build's log are stored, counted from the
// chunks' headers without reading the chunks; a retried build's log goes on
// from there.
func (s *Store) LogSize(ctx context.Context, buildID string) (int64, error) {
	var n int64
	err := s.eachChunk(ctx, buildID, true, func(msg jetstream.Msg) error {
		size, err := strconv.ParseInt(msg.Headers().Get(nats.MsgSize), 10, 64)
		if err != nil {
			return fmt.Errorf("size of log of %s: chunk header %s: %w", buildID, nats.MsgSize, err)
		}
		n += size
		return nil
	})
	return n, err
}

// eachChunk hands fn the stored chunks of a build's log in order (only
// their headers with headersOnly).
func (s *Store) eachChunk(ctx context.Context, buildID string, headersOnly bool, fn func(jetstream.Msg) error) error {
	c, err := s.logs.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{logsPrefix + buildID}, HeadersOnly: headersOnly,
	})
	if err != nil {
		return fmt.Errorf("read log of %s: %w", buildID, err)
	}
	defer s.dropConsumer(c, nil)
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("read log of %s: %w", buildID, err)
	}
	for left := info.NumPending; left > 0; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read log of %s: %w", buildID, err)
		}
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return fmt.Errorf("read log of %s: %w", buildID, err)
		}
		if err := fn(msg); err != nil {
			return err
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read log of %s: %w", buildID, err)
		}
		left = md.NumPending
	}
	return nil
}

// Log chunks stay well under NATS's default 1 MiB max_payload, and a writer
// whose store does not answer holds at most maxBuffered before it drops
// (and counts) what comes next.
const (
	chunkSize   = 64 << 10
	maxBuffered = 4 << 20
)

// LogWriter buffers a build's log and stores it in chunks, so a chatty build
// does not become one JetStream message per line.
type LogWriter struct {
	store   *Store
	buildID string
	mu      sync.Mutex
	buf     bytes.Buffer
	lost    int // bytes dropped since the store last took a chunk
	done    chan struct{}
	stopped chan struct{}
}

// NewLogWriter starts a writer that flushes at least every interval.
func (s *Store) NewLogWriter(buildID string, interval time.Duration) *LogWriter {
	w := &LogWriter{store: s, buildID: buildID, done: make(chan struct{}), stopped: make(chan struct{})}
	go w.loop(interval)
	return w
}

func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buffer(p)
	full := w.buf.Len() >= chunkSize
	w.mu.Unlock()
	if full {
		w.flush()
	}
	return len(p), nil
}

// buffer keeps p unless the store has stopped taking chunks and the buffer
// is full; once anything is dropped, everything is until the store answers
// again, so the gap is one place in the log.
func (w *LogWriter) buffer(p []byte) {
	if w.lost > 0 {
		w.lost += len(p)
		return
	}
	if room := maxBuffered - w.buf.Len(); len(p) > room {
		w.lost = len(p) - max(room, 0)
		p = p[:max(room, 0)]
	}
	w.buf.Write(p)
}

func (w *LogWriter) loop(interval time.Duration) {
	defer close(w.stopped)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.flush()
		case <-w.done:
			w.flush()
			return
		}
	}
}

func (w *LogWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A failed append keeps the bytes for the next flush; the log is
	// best-effort but never silently reordered.
	for w.buf.Len() > 0 {
		chunk := w.buf.Bytes()[:min(w.buf.Len(), chunkSize)]
		if err := w.store.AppendLog(ctx, w.buildID, bytes.Clone(chunk)); err != nil {
			return
		}
		w.buf.Next(len(chunk))
	}
	if w.lost > 0 {
		note := fmt.Sprintf("\n--- %d bytes of log lost: the log store did not take them ---\n", w.lost)
		if err := w.store.AppendLog(ctx, w.buildID, []byte(note)); err == nil {
			w.lost = 0
		}
	}
}

// Close flushes what is left and stops the writer.
func (w *LogWriter) Close() error {
	close(w.done)
	<-w.stopped
	return nil
}
