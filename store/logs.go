package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// AppendLog adds a chunk to a build's log.
func (s *Store) AppendLog(ctx context.Context, buildID string, chunk []byte) error {
	if _, err := s.js.Publish(ctx, logsPrefix+buildID, chunk); err != nil {
		return fmt.Errorf("append log of %s: %w", buildID, err)
	}
	return nil
}

// ReadLog returns a build's whole log as stored so far.
func (s *Store) ReadLog(ctx context.Context, buildID string) ([]byte, error) {
	c, err := s.logs.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{logsPrefix + buildID},
	})
	if err != nil {
		return nil, fmt.Errorf("read log of %s: %w", buildID, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read log of %s: %w", buildID, err)
	}
	var buf bytes.Buffer
	for left := info.NumPending; left > 0; {
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("read log of %s: %w", buildID, err)
		}
		buf.Write(msg.Data())
		md, err := msg.Metadata()
		if err != nil {
			return nil, err
		}
		left = md.NumPending
	}
	return buf.Bytes(), nil
}

// LogWriter buffers a build's log and stores it in chunks, so a chatty build
// does not become one JetStream message per line.
type LogWriter struct {
	store   *Store
	buildID string
	mu      sync.Mutex
	buf     bytes.Buffer
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
	w.buf.Write(p)
	full := w.buf.Len() >= 64<<10
	w.mu.Unlock()
	if full {
		w.flush()
	}
	return len(p), nil
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
	if w.buf.Len() == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A failed append keeps the bytes for the next flush; the log is
	// best-effort but never silently reordered.
	if err := w.store.AppendLog(ctx, w.buildID, bytes.Clone(w.buf.Bytes())); err == nil {
		w.buf.Reset()
	}
}

// Close flushes what is left and stops the writer.
func (w *LogWriter) Close() error {
	close(w.done)
	<-w.stopped
	return nil
}
