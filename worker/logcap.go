package worker

import (
	"fmt"
	"io"
	"sync"
)

// DefaultLogLimit is the most of a build's log kept when Worker.LogLimit is
// unset.
const DefaultLogLimit = 16 << 20

// cappedLog keeps the first limit bytes of a build's log and swallows the
// rest, so a build that prints without end neither fills the store nor
// stops: writes past the limit still succeed. Close says where it was cut.
type cappedLog struct {
	mu      sync.Mutex
	w       io.WriteCloser
	limit   int64
	written int64 // by earlier attempts too
	full    bool  // an earlier attempt reached the limit and said so
	cut     bool
	lastNL  bool
}

// newCappedLog caps w at limit bytes, used of which earlier attempts of
// the build already stored.
func newCappedLog(w io.WriteCloser, limit, used int64) *cappedLog {
	if limit <= 0 {
		limit = DefaultLogLimit
	}
	return &cappedLog{w: w, limit: limit, written: used, full: used >= limit, lastNL: true}
}

func (c *cappedLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := p
	if room := c.limit - c.written; int64(len(p)) > room {
		keep, c.cut = p[:max(room, 0)], true
	}
	if len(keep) > 0 {
		n, err := c.w.Write(keep)
		c.written += int64(n)
		if n > 0 {
			c.lastNL = keep[n-1] == '\n'
		}
		if err != nil {
			return n, err
		}
	}
	return len(p), nil
}

// Hide passes secrets learnt during the build (a clone token) on to the
// redacting writer beneath, when there is one.
func (c *cappedLog) Hide(secrets ...string) {
	if h, ok := c.w.(hider); ok {
		h.Hide(secrets...)
	}
}

// hider is a log that can be told more secrets to hide.
type hider interface{ Hide(secrets ...string) }

// Close ends a cut log with the line that says so, then closes it.
func (c *cappedLog) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut && !c.full {
		_, _ = io.WriteString(c.w, cutLine(c.limit, c.lastNL))
	}
	return c.w.Close()
}

// cutLine is the last line of a log cut at limit.
func cutLine(limit int64, afterNewline bool) string {
	nl := "\n"
	if afterNewline {
		nl = ""
	}
	return fmt.Sprintf("%s--- log cut at %s (SLIPWAY_LOG_LIMIT); the build went on ---\n", nl, size(limit))
}

// size writes a byte count the way SLIPWAY_LOG_LIMIT is usually set.
func size(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
