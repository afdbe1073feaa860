package redact

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://github.com/acme/demo.git", "https://github.com/acme/demo.git"},
		{"https://x-access-token:ghs_abc123@github.com/acme/demo.git", "https://github.com/acme/demo.git"},
		{"https://ghp_tokenasuser@github.com/acme/demo", "https://github.com/acme/demo"},
		{"https://u:p@ss@host:8443/x", "https://host:8443/x"},
		{"https://u:p%zz@host/x", "https://host/x"},
		{"nats://slipway:hunter22@127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"https://host/hook?token=abc&ref=main", "https://host/hook?token=REDACTED&ref=main"},
		{"https://host/?Access_Token=a&PRIVATE_TOKEN=b&X-Amz-Signature=c&x-amz-date=d", "https://host/?Access_Token=REDACTED&PRIVATE_TOKEN=REDACTED&X-Amz-Signature=REDACTED&x-amz-date=d"},
		{"https://host/?key=1&secret=2&password=3&passwd=4&sig=5&signature=6&client_secret=7&code=8&auth=9&apikey=10&api_key=11", "https://host/?key=REDACTED&secret=REDACTED&password=REDACTED&passwd=REDACTED&sig=REDACTED&signature=REDACTED&client_secret=REDACTED&code=REDACTED&auth=REDACTED&apikey=REDACTED&api_key=REDACTED"},
		{"https://host/?t%6Fken=abc", "https://host/?t%6Fken=REDACTED"},
		{"https://host/?token", "https://host/?token"},
		{"https://host/?tokens=abc#token=x", "https://host/?tokens=abc#token=x"},
		{"https://host/?token=abc#frag", "https://host/?token=REDACTED#frag"},
		{"https://host/cb?redirect=https://u:p@other/x", "https://host/cb?redirect=https://other/x"},
		{"ssh://git:sekrit@host:22/acme/demo.git", "ssh://host:22/acme/demo.git"},
		{"host/path", "host/path"},
		{"", ""},
	} {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"no urls here", "no urls here"},
		{`fatal: unable to access 'https://oauth2:glpat-xyz@gitlab.example/acme/demo.git/': The requested URL returned error: 403`,
			`fatal: unable to access 'https://gitlab.example/acme/demo.git/': The requested URL returned error: 403`},
		{`Get "https://u:pw@api.example/repos?access_token=t0k": dial tcp: refused`,
			`Get "https://api.example/repos?access_token=REDACTED": dial tcp: refused`},
		{"clone https://a:b@h1/x and https://c:d@h2/y\nnext", "clone https://h1/x and https://h2/y\nnext"},
		{"remote: user:hunter22@example.com:acme/demo.git not found", "remote: example.com:acme/demo.git not found"},
		{"git@github.com:acme/demo.git", "git@github.com:acme/demo.git"},
		{"mail me at someone@example.com", "mail me at someone@example.com"},
		{"<https://u:p@h/x>", "<https://h/x>"},
	} {
		if got := Text(c.in); got != c.want {
			t.Errorf("Text(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestWriterRedactsLinesSplitAcrossWrites(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, "ghp_knownsecret", "", "abc", "whsec_hook")
	for _, p := range []string{"clone https://x:ghs_", "split@host/r\nthe token ghp_known", "secret and whsec_hook\nabc stays\n", "tail https://u:p@h"} {
		if n, err := w.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if strings.Contains(out.String(), "tail") {
		t.Fatalf("a partial line went out before Close: %q", out.String())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "clone https://host/r\nthe token *** and ***\nabc stays\ntail https://h"
	if out.String() != want {
		t.Fatalf("log\n got %q\nwant %q", out.String(), want)
	}
}

func TestWriterBoundsAHugeLine(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	word := strings.Repeat("x", 99) + " "
	for range 5 * MaxLine / len(word) {
		if _, err := w.Write([]byte(word)); err != nil {
			t.Fatal(err)
		}
		if len(w.buf) > MaxLine {
			t.Fatalf("holding %d bytes, want at most %d", len(w.buf), MaxLine)
		}
	}
	if out.Len() == 0 {
		t.Fatal("nothing written for a line of 5 MaxLine")
	}
	blob := bytes.Repeat([]byte("y"), 3*MaxLine+7)
	if _, err := w.Write(blob); err != nil {
		t.Fatal(err)
	}
	if len(w.buf) > MaxLine {
		t.Fatalf("holding %d bytes after a line without spaces", len(w.buf))
	}
	_ = w.Close()
	if got, want := out.Len(), 5*MaxLine/len(word)*len(word)+len(blob); got != want {
		t.Fatalf("wrote %d bytes, want %d", got, want)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterReportsTheUnderlyingError(t *testing.T) {
	w := NewWriter(failWriter{})
	if _, err := w.Write([]byte("line\n")); err == nil {
		t.Fatal("no error from a failing writer")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close hid the error")
	}
}

type stringer struct{}

func (stringer) String() string { return "nats://u:s3cret@host:4222" }

func TestHandler(t *testing.T) {
	var out bytes.Buffer
	base := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	l := slog.New(NewHandler(base.Handler())).With("url", "https://u:w1th@h/x")
	l.WithGroup("g").Info("fetch https://a:msgpw@h/y failed",
		"err", errors.New(`Get "https://b:errpw@h/z?token=tok": EOF`),
		"nats", stringer{}, "n", 3,
		slog.Group("inner", "u", "https://c:grppw@h/"))
	const want = `level=INFO msg="fetch https://h/y failed" url=https://h/x g.err="Get \"https://h/z?token=REDACTED\": EOF" g.nats=nats://host:4222 g.n=3 g.inner.u=https://h/` + "\n"
	if out.String() != want {
		t.Fatalf("log line\n got %s\nwant %s", out.String(), want)
	}
	if !l.Enabled(context.Background(), slog.LevelInfo) || l.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("Enabled does not follow the wrapped handler")
	}
}

func TestURLInsideWhatLooksLikeOneURL(t *testing.T) {
	if got, want := Text("a://https://u:pass@h/x"), "a://https://h/x"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestTextIsLinearOnNestedSchemes(t *testing.T) {
	in := strings.Repeat("a://", MaxLine/4) + "u:p@h"
	start := time.Now()
	out := Text(in)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Text of %d bytes of nested schemes took %v", len(in), d)
	}
	if strings.Contains(out, "u:p") {
		t.Fatalf("the user part survived: ...%s", out[len(out)-20:])
	}
}

func TestWriterHidesSecretsLearntLater(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	_, _ = w.Write([]byte("before ghs_later\nafter gh"))
	w.Hide("ghs_later", "")
	_, _ = w.Write([]byte("s_later\n"))
	_ = w.Close()
	if want := "before ghs_later\nafter ***\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}
