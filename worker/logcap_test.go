package worker

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

type closeBuffer struct {
	bytes.Buffer
	closed bool
}

func (b *closeBuffer) Close() error { b.closed = true; return nil }

func TestCappedLogKeepsTheFirstBytesAndSaysWhereItWasCut(t *testing.T) {
	var out closeBuffer
	w := newCappedLog(&out, 1024, 0)
	line := strings.Repeat("x", 99) + "\n" // 100 bytes
	for i := 0; i < 50; i++ {
		if n, err := io.WriteString(w, line); n != 100 || err != nil {
			t.Fatalf("write %d past the limit = %d, %v; want 100, nil so the build goes on", i, n, err)
		}
	}
	if err := w.Close(); err != nil || !out.closed {
		t.Fatalf("Close = %v, closed %v", err, out.closed)
	}
	want := strings.Repeat(line, 10) + strings.Repeat("x", 24) + "\n--- log cut at 1 KiB (SLIPWAY_LOG_LIMIT); the build went on ---\n"
	if got := out.String(); got != want {
		t.Errorf("log =\n%q\nwant\n%q", got, want)
	}
}

func TestCappedLogUnderTheLimitIsUntouched(t *testing.T) {
	var out closeBuffer
	w := newCappedLog(&out, 1024, 0)
	_, _ = io.WriteString(w, strings.Repeat("y", 1024))
	_ = w.Close()
	if got := out.String(); got != strings.Repeat("y", 1024) {
		t.Errorf("a log of exactly the limit was changed: %d bytes, ends %q", len(got), got[len(got)-20:])
	}
}

func TestCappedLogCutAtALineEnd(t *testing.T) {
	var out closeBuffer
	w := newCappedLog(&out, 3<<20, 0)
	_, _ = io.WriteString(w, strings.Repeat("z\n", 3<<19))
	_, _ = io.WriteString(w, "one more\n")
	_ = w.Close()
	want := strings.Repeat("z\n", 3<<19) + "--- log cut at 3 MiB (SLIPWAY_LOG_LIMIT); the build went on ---\n"
	if got := out.String(); got != want {
		t.Errorf("log ends %q, want it to end %q", got[len(got)-80:], want[len(want)-80:])
	}
}

// A retried build's log goes on from what earlier attempts stored: the
// limit is the build's, not each attempt's.
func TestCappedLogCountsEarlierAttempts(t *testing.T) {
	var second closeBuffer
	w := newCappedLog(&second, 1024, 1000)
	_, _ = io.WriteString(w, "==> clone http://127.0.0.1/app.git again\n")
	_ = w.Close()
	want := "==> clone http://127.0.0" + "\n--- log cut at 1 KiB (SLIPWAY_LOG_LIMIT); the build went on ---\n"
	if got := second.String(); got != want {
		t.Errorf("second attempt logged %q, want %q", got, want)
	}

	var third closeBuffer
	w = newCappedLog(&third, 1024, 1024+67)
	if n, err := io.WriteString(w, "==> clone once more\n"); n != 20 || err != nil {
		t.Fatalf("write = %d, %v; want 20, nil", n, err)
	}
	_ = w.Close()
	if got := third.String(); got != "" {
		t.Errorf("an attempt after the log was cut logged %q, want nothing: the cut line is there already", got)
	}
}
