package redact

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"sync"
)

// MaxLine is how much of a line without a newline Writer holds before it
// lets the line out in pieces, so a build that prints megabytes without a
// newline does not grow Slipway's memory with it.
const MaxLine = 64 << 10

// minSecret is the shortest known secret Writer replaces: a shorter one
// would mangle a log everywhere its letters occur, and hides nothing a
// guess would not find.
const minSecret = 4

// Hidden replaces a known secret value in a log.
const Hidden = "***"

// Writer redacts what passes through it, line by line: URLs and
// user:password@host forms as Text does, and every copy of the known
// secrets it was given. A line is held until its newline, so a URL or a
// secret split across two writes is still found; Close writes what is
// left. A Writer is safe for concurrent use.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	secrets []string // longest first, so a secret holding another goes whole
	buf     []byte
	err     error
}

// NewWriter redacts into w. secrets are values to replace by Hidden
// wherever they occur (a token, a webhook secret); empty and very short
// ones are left out.
func NewWriter(w io.Writer, secrets ...string) *Writer {
	return &Writer{w: w, secrets: keepSecrets(secrets)}
}

// keepSecrets drops empty, short and repeated secrets and puts the longest
// first.
func keepSecrets(secrets []string) []string {
	var keep []string
	for _, s := range secrets {
		if len(s) >= minSecret && !slices.Contains(keep, s) {
			keep = append(keep, s)
		}
	}
	slices.SortFunc(keep, func(a, b string) int { return len(b) - len(a) })
	return keep
}

// Hide adds secrets known only once the log has begun (a token fetched
// for the clone). Lines already written are not gone over again.
func (r *Writer) Hide(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = keepSecrets(append(r.secrets, secrets...))
}

// Write takes p whole; complete lines go out redacted at once.
func (r *Writer) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	r.buf = append(r.buf, p...)
	if i := bytes.LastIndexByte(r.buf, '\n'); i >= 0 {
		r.emit(i + 1)
	}
	for r.err == nil && len(r.buf) > MaxLine {
		r.emit(cutPoint(r.buf))
	}
	if r.err != nil {
		return 0, r.err
	}
	return len(p), nil
}

// cutPoint is where a too-long line is split: after its last white space
// within MaxLine, where no URL or token is cut in two, else at MaxLine.
func cutPoint(b []byte) int {
	if i := bytes.LastIndexAny(b[:MaxLine], " \t\r"); i >= MaxLine/2 {
		return i + 1
	}
	return MaxLine
}

// emit writes the first n bytes of the buffer redacted and keeps the rest.
func (r *Writer) emit(n int) {
	out := r.redact(string(r.buf[:n]))
	r.buf = append(r.buf[:0], r.buf[n:]...)
	if _, err := io.WriteString(r.w, out); err != nil {
		r.err = err
	}
}

func (r *Writer) redact(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, Hidden)
	}
	return Text(s)
}

// Flush writes a held partial line, redacted.
func (r *Writer) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil && len(r.buf) > 0 {
		r.emit(len(r.buf))
	}
	return r.err
}

// Close flushes, then closes the underlying writer if it is an io.Closer.
func (r *Writer) Close() error {
	err := r.Flush()
	if c, ok := r.w.(io.Closer); ok {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
