package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestPing(t *testing.T) {
	ctx := context.Background()
	open := startTest(t, "127.0.0.1:0", t.TempDir(), nil)
	locked := startHtpasswd(t)
	for name, host := range map[string]string{"open registry": open.Addr(), "registry wanting basic auth": locked.Addr()} {
		if err := (Client{}).Ping(ctx, host); err != nil {
			t.Errorf("Ping of the %s: %v", name, err)
		}
	}

	// A web server that is no registry answers, so it is not unreachable.
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	webHost := strings.TrimPrefix(web.URL, "http://")
	err := Client{}.Ping(ctx, webHost)
	if err == nil || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), webHost) || !strings.Contains(err.Error(), "404") {
		t.Errorf("Ping of a web server answering 404: err = %v, want a 404 error naming %s, not ErrUnreachable", err, webHost)
	}

	closed := closedAddr(t)
	err = Client{}.Ping(ctx, closed)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), closed) {
		t.Errorf("Ping of a closed port: err = %v, want ErrUnreachable naming %s", err, closed)
	}

	for _, bad := range []string{"", "not a host", "127.0.0.1:5000/app"} {
		if err := (Client{Transport: failTransport{t}}).Ping(ctx, bad); err == nil || !strings.Contains(err.Error(), "invalid host") {
			t.Errorf("Ping(%q) err = %v, want invalid host", bad, err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	d := "sha256:" + strings.Repeat("ab", 32)
	closed := closedAddr(t)

	// Accepts connections and closes them without a word.
	dropper, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dropper.Close()
	go func() {
		for {
			conn, err := dropper.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	// A registry whose token service is down.
	_, closedPort, _ := net.SplitHostPort(closed)
	realmDown := startTokenRegistry(t, newTokenServer(t), "http://localhost:"+closedPort+"/token")

	c := Client{}
	viaLocalhost := Client{Transport: newLoopbackOnly()}
	for name, err := range map[string]error{
		"Tag, connection refused":  c.Tag(ctx, closed+"/team/app", d, "v1"),
		"Ping, connection refused": c.Ping(ctx, closed),
		"Tag, connection dropped":  c.Tag(ctx, dropper.Addr().String()+"/team/app", d, "v1"),
		"Ping, connection dropped": c.Ping(ctx, dropper.Addr().String()),
		"Tag, token service down":  viaLocalhost.Tag(ctx, realmDown.Addr()+"/team/app", d, "v1"),
	} {
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("%s: err = %v, want ErrUnreachable", name, err)
		}
	}

	// The caller's deadline passing while the registry keeps quiet counts.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	deadline, cancelDeadline := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelDeadline()
	hangHost := strings.TrimPrefix(hang.URL, "http://")
	if err := c.Tag(deadline, hangHost+"/team/app", d, "v1"); !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline passed: err = %v, want ErrUnreachable and context.DeadlineExceeded", err)
	}

	// Cancelling is the caller's doing, not the registry's.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Tag(cancelled, closed+"/team/app", d, "v1"); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) {
		t.Errorf("cancelled context: err = %v, want context.Canceled and not ErrUnreachable", err)
	}
}

// TestUnreachableErrors classifies errors of the net package, as a custom
// transport or dialer may return them unwrapped.
func TestUnreachableErrors(t *testing.T) {
	bg := context.Background()
	closed := closedAddr(t)
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	dial := func(ctx context.Context, d *net.Dialer) error {
		conn, err := d.DialContext(ctx, "tcp", closed)
		if err == nil {
			conn.Close()
			t.Fatalf("dial %s succeeded", closed)
		}
		return err
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"refused", bg, dial(bg, &net.Dialer{}), true},
		{"dial timeout", bg, dial(bg, &net.Dialer{Timeout: time.Nanosecond}), true},
		// Made up rather than looked up: tests send nothing to a resolver.
		{"unknown host", bg, &net.DNSError{Err: "no such host", Name: "registry.invalid", IsNotFound: true}, true},
		{"dial cancelled", cancelled, dial(cancelled, &net.Dialer{}), false},
		{"context cancelled", cancelled, context.Canceled, false},
		{"other", bg, errors.New("tls: handshake failure"), false},
	} {
		if got := unreachable(tc.ctx, tc.err); got != tc.want {
			t.Errorf("unreachable(%s: %v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	err := redact(fmt.Errorf("registry said pw-123 and tok-abc: %w", ErrUnreachable), []string{"pw-123", "tok-abc", ""})
	if got, want := err.Error(), "registry said *** and ***: registry unreachable"; got != want {
		t.Errorf("redacted = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("redacted error is no longer ErrUnreachable")
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("redacted error unwraps to the original text")
	}
	plain := errors.New("nothing secret")
	if redact(plain, []string{"pw-123"}) != plain {
		t.Errorf("an error without secrets was rewrapped")
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.1.2.3": true, "localhost": true, "LOCALHOST:5000": true,
		"[::1]:5000": true, "[::1]": true,
		"ghcr.io": false, "10.0.0.1:5000": false, "localhost.io": false, "[2001:db8::1]:1": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// loopbackOnly refuses every request to a non-loopback host, noting its
// URL, and sends the others on, dialling 127.0.0.1 for "localhost" without
// asking a resolver: a safety net that keeps the test's traffic on this
// machine whatever Client does.
type loopbackOnly struct {
	next http.RoundTripper

	mu      sync.Mutex
	refused []string
}

func newLoopbackOnly() *loopbackOnly {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(host, "localhost") {
			host = "127.0.0.1"
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("test: dial %s refused: not loopback", addr)
		}
		return dialer.DialContext(ctx, network, net.JoinHostPort(host, port))
	}
	return &loopbackOnly{next: &http.Transport{DialContext: dial}}
}

func (l *loopbackOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if isLoopback(r.URL.Host) {
		return l.next.RoundTrip(r)
	}
	l.mu.Lock()
	l.refused = append(l.refused, r.URL.String())
	l.mu.Unlock()
	return nil, errors.New("test: request to a non-loopback host refused")
}

func (l *loopbackOnly) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.refused)
}

// TestPlainHTTPOnlyToLoopback: credentials never go over plain HTTP to
// another machine, not to a private address that go-containerregistry
// would try over HTTP, nor to a token service.
func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	ctx := context.Background()
	safety := newLoopbackOnly()
	c := Client{Transport: safety, Credentials: credentials("ci", accounts["ci"].password, new([]string))}

	// 10.0.0.0/8: go-containerregistry tries HTTPS, then HTTP.
	d := "sha256:" + strings.Repeat("ab", 32)
	err := c.Tag(ctx, "10.1.2.3:5000/team/app", d, "v1")
	if err == nil || !strings.Contains(err.Error(), "refusing plain HTTP to 10.1.2.3:5000") {
		t.Errorf("Tag on a private address: err = %v, want plain HTTP refused", err)
	}
	for _, u := range safety.seen() {
		if !strings.HasPrefix(u, "https://") {
			t.Errorf("request to %s got past the client", u)
		}
	}

	// A loopback registry naming a token service elsewhere over HTTP
	// (192.0.2.0/24 is TEST-NET-1). Nothing is pushed: that would need a
	// token from there.
	e := startTokenRegistry(t, newTokenServer(t), "http://192.0.2.1/token")
	err = c.Tag(ctx, e.Addr()+"/team/app", d, "v1")
	if err == nil || !strings.Contains(err.Error(), "refusing plain HTTP to 192.0.2.1") || errors.Is(err, ErrUnreachable) {
		t.Errorf("Tag with a plain HTTP token service elsewhere: err = %v, want plain HTTP refused", err)
	}
	checkNoSecrets(t, err, accounts["ci"].password, basicAuth("ci", accounts["ci"].password))
	for _, u := range safety.seen() {
		if strings.Contains(u, "192.0.2.1") {
			t.Errorf("request to %s got past the client", u)
		}
	}
}
