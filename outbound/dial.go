package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// Dialer connects only to addresses its Guard allows. It resolves the host
// itself, checks every address, and dials the allowed ones by IP, so the
// address checked is the address connected to; the socket's Control
// function checks it once more just before connect.
type Dialer struct {
	Guard *Guard
	// dial connects to an ip:port that has been checked; nil means a
	// net.Dialer. Tests replace it with a recorder, so that no test sends a
	// packet anywhere but loopback.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialContext is net.Dialer.DialContext behind the guard.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port: %w", address, err)
	}
	addrs, err := d.Guard.Resolve(ctx, host, uint16(port))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	guard := d.Guard
	if guard.namedHost(host, uint16(port)) {
		// The socket's last check must accept what the name resolved to.
		for _, ip := range addrs {
			guard = guard.With(netip.AddrPortFrom(ip, uint16(port)))
		}
	}
	var errs []error
	for _, ip := range addrs {
		conn, err := d.connect(ctx, guard, network, netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (d *Dialer) connect(ctx context.Context, guard *Guard, network, addr string) (net.Conn, error) {
	if d.dial != nil {
		return d.dial(ctx, network, addr)
	}
	check := &Dialer{Guard: guard}
	nd := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: check.control}
	return nd.DialContext(ctx, network, addr)
}

// control runs on the socket about to connect, with the literal address:
// the last word, whatever resolved the name.
func (d *Dialer) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read the address %q", ErrRefused, address)
	}
	return d.Guard.Check(ap.Addr(), ap.Port())
}

// Transport returns an http.Transport that dials through the guard. It
// uses no proxy from the environment: a proxy would make the address
// dialled the proxy's, and the check meaningless.
func (g *Guard) Transport() *http.Transport {
	return transport(&Dialer{Guard: g})
}

func transport(d *Dialer) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Client returns an http.Client with the guard's Transport whose redirects
// are checked too before they are followed, with timeout per request.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	return g.client(transport(&Dialer{Guard: g}), timeout)
}

func (g *Guard) client(rt http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{Transport: rt, Timeout: timeout, CheckRedirect: g.CheckRedirect}
}

// CheckRedirect refuses a redirect to a URL CheckURL refuses, so the
// refusal names the redirect rather than a failed dial, and stops after 10
// redirects as http.Client does by default. The dial is guarded anyway.
func (g *Guard) CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if err := g.CheckURL(req.Context(), req.URL); err != nil {
		return fmt.Errorf("redirect to %s://%s: %w", req.URL.Scheme, req.URL.Host, err)
	}
	return nil
}

// CheckURL resolves u's host and refuses it when every address it stands
// for is refused. Registration uses it to answer 400 at once instead of a
// failed build later.
func (g *Guard) CheckURL(ctx context.Context, u *url.URL) error {
	port := u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	n, _ := strconv.ParseUint(port, 10, 16)
	_, err := g.Resolve(ctx, u.Hostname(), uint16(n))
	return err
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http":
		return "80"
	case "ssh":
		return "22"
	}
	return "443"
}
