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
	w := newCappedLog(&out, 1024)
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
	w := newCappedLog(&out, 1024)
	_, _ = io.WriteString(w, strings.Repeat("y", 1024))
	_ = w.Close()
	if got := out.String(); got != strings.Repeat("y", 1024) {
		t.Errorf("a log of exactly the limit was changed: %d bytes, ends %q", len(got), got[len(got)-20:])
	}
}

func TestCappedLogCutAtALineEnd(t *testing.T) {
	var out closeBuffer
	w := newCappedLog(&out, 3<<20)
	_, _ = io.WriteString(w, strings.Repeat("z\n", 3<<19))
	_, _ = io.WriteString(w, "one more\n")
	_ = w.Close()
	want := strings.Repeat("z\n", 3<<19) + "--- log cut at 3 MiB (SLIPWAY_LOG_LIMIT); the build went on ---\n"
	if got := out.String(); got != want {
		t.Errorf("log ends %q, want it to end %q", got[len(got)-80:], want[len(want)-80:])
	}
}
