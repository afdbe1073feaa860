package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// These tests send packets to loopback only: every other address is judged
// as a value, or reaches a recorder in place of the connect step.

func TestRefusedDecision(t *testing.T) {
	refusedAddrs := []string{
		"127.0.0.1", "127.255.0.9", "::1", "169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.1.1",
		"100.64.0.1", "fd00::1", "fe80::1", "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
		"224.0.0.1", "ff02::1", "255.255.255.255", "100.100.100.200", "fd00:ec2::254", "64:ff9b::7f00:1",
	}
	for _, s := range refusedAddrs {
		if why := Refused(netip.MustParseAddr(s)); why == "" {
			t.Errorf("Refused(%s) = \"\", want a reason", s)
		}
	}
	for _, s := range []string{"8.8.8.8", "2001:4860::8888", "140.82.112.3", "::ffff:8.8.8.8"} {
		if why := Refused(netip.MustParseAddr(s)); why != "" {
			t.Errorf("Refused(%s) = %q, want allowed", s, why)
		}
	}
}

func TestAllowListOpensRangesButNeverMetadata(t *testing.T) {
	g := &Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("100.64.0.0/10")}}
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1", "169.254.1.1", "100.64.0.1"} {
		if err := g.Check(netip.MustParseAddr(s), 80); err != nil {
			t.Errorf("Check(%s) with the range allowed: %v", s, err)
		}
	}
	for _, s := range []string{"169.254.169.254", "100.100.100.200", "::1", "10.0.0.1"} {
		if err := g.Check(netip.MustParseAddr(s), 80); !errors.Is(err, ErrRefused) {
			t.Errorf("Check(%s) = %v, want ErrRefused", s, err)
		}
	}
}

func TestAllowAddrsOpenOneAddressAndPort(t *testing.T) {
	g := (&Guard{}).With(netip.MustParseAddrPort("127.0.0.1:5000"))
	if err := g.Check(netip.MustParseAddr("127.0.0.1"), 5000); err != nil {
		t.Errorf("the opened address: %v", err)
	}
	if err := g.Check(netip.MustParseAddr("127.0.0.1"), 5001); err == nil {
		t.Error("another port of the opened address was allowed")
	}
}

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs(" 127.0.0.0/8, 10.1.2.3 ,fd00::/8,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.0/8", "10.1.2.3/32", "fd00::/8"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ParseCIDRs = %v, want %v", got, want)
	}
	if _, err := ParseCIDRs("127.0.0.0/33"); err == nil {
		t.Error("a bad range was accepted")
	}
}

// recorder stands in for the connect step: it notes every address and
// connects only to loopback, which the tests allow on purpose.
type recorder struct {
	mu    sync.Mutex
	addrs []string
}

func (r *recorder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	r.addrs = append(r.addrs, addr)
	r.mu.Unlock()
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().IsLoopback() {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return nil, errors.New("recorder: not connecting to " + addr)
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.addrs...)
}

func fakeDNS(names map[string][]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		var out []netip.Addr
		for _, s := range names[host] {
			out = append(out, netip.MustParseAddr(s))
		}
		if out == nil {
			return nil, fmt.Errorf("fake DNS: no such host %s", host)
		}
		return out, nil
	}
}

func TestDialerConnectsOnlyToAllowedAddresses(t *testing.T) {
	g := &Guard{Lookup: fakeDNS(map[string][]string{
		"evil.example":   {"127.0.0.1"},
		"mixed.example":  {"10.0.0.7", "8.8.4.4"},
		"public.example": {"2001:4860::8888"},
	})}
	cases := []dialCase{
		{"8.8.8.8:443", "8.8.8.8:443"},
		{"public.example:443", "[2001:4860::8888]:443"},
		{"mixed.example:443", "8.8.4.4:443"},
		{"evil.example:80", ""},
		{"127.0.0.1:80", ""},
		{"[::1]:80", ""},
		{"[::ffff:127.0.0.1]:80", ""},
		{"169.254.169.254:80", ""},
		{"0x7f000001:80", ""},
		{"2130706433:80", ""},
		{"127.1:80", ""},
		{"10.0.0.1:22", ""},
	}
	checkDials(t, g, cases)
}

func TestControlChecksTheSocketAddress(t *testing.T) {
	d := &Dialer{Guard: &Guard{}}
	if err := d.control("tcp4", "127.0.0.1:80", nil); !errors.Is(err, ErrRefused) {
		t.Errorf("control(127.0.0.1) = %v, want ErrRefused", err)
	}
	if err := d.control("tcp6", "[fd00:ec2::254]:80", nil); !errors.Is(err, ErrRefused) {
		t.Errorf("control(fd00:ec2::254) = %v, want ErrRefused", err)
	}
	if err := d.control("tcp4", "8.8.8.8:443", nil); err != nil {
		t.Errorf("control(8.8.8.8) = %v, want nil", err)
	}
}

func TestRealDialRefusesLoopbackUnlessAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	if _, err := (&Guard{}).Client(0).Get(srv.URL); !errors.Is(err, ErrRefused) {
		t.Errorf("GET %s with no allow list = %v, want ErrRefused", srv.URL, err)
	}
	open := &Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	resp, err := open.Client(0).Get(srv.URL)
	if err != nil {
		t.Fatalf("GET %s with 127.0.0.0/8 allowed: %v", srv.URL, err)
	}
	resp.Body.Close()
}

func TestRedirectToMetadataIsRefusedWithoutDialling(t *testing.T) {
	for _, target := range []string{"http://169.254.169.254/latest/meta-data/", "http://evil.example/", "http://[::ffff:a9fe:a9fe]/"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, http.StatusFound)
		}))
		g := &Guard{
			Allow:  []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			Lookup: fakeDNS(map[string][]string{"evil.example": {"169.254.169.254"}}),
		}
		rec := &recorder{}
		hc := g.client(transport(&Dialer{Guard: g, dial: rec.dial}), 0)
		_, err := hc.Get(srv.URL)
		srv.Close()
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "redirect") {
			t.Errorf("redirect to %s: %v, want a refused redirect", target, err)
		}
		for _, a := range rec.seen() {
			if !strings.HasPrefix(a, "127.0.0.1:") {
				t.Errorf("redirect to %s: dialled %s", target, a)
			}
		}
	}
}

func TestCheckURL(t *testing.T) {
	g := &Guard{Lookup: fakeDNS(map[string][]string{"evil.example": {"127.0.0.1", "::1"}, "git.example": {"203.0.113.9"}})}
	for _, raw := range []string{"https://evil.example/x.git", "http://0x7f000001/", "https://[::1]:8443/", "http://169.254.169.254/"} {
		u, _ := url.Parse(raw)
		if err := g.CheckURL(context.Background(), u); !errors.Is(err, ErrRefused) {
			t.Errorf("CheckURL(%s) = %v, want ErrRefused", raw, err)
		}
	}
	u, _ := url.Parse("https://git.example/a/b.git")
	if err := g.CheckURL(context.Background(), u); err != nil {
		t.Errorf("CheckURL(%s) = %v", u, err)
	}
	u, _ = url.Parse("https://nowhere.example/")
	if err := g.CheckURL(context.Background(), u); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("an unresolvable name: %v, want a lookup error that is not a refusal", err)
	}
}

// A name the operator configured (the registry of a Compose file) is
// reached at its private address; the same address under another name or
// port, and a metadata address under that name, stay refused.
func TestAllowHostsOpensANameAtItsAddresses(t *testing.T) {
	g := (&Guard{Lookup: fakeDNS(map[string][]string{
		"registry":       {"172.18.0.4"},
		"other":          {"172.18.0.4"},
		"metadata-alias": {"169.254.169.254"},
	})}).WithHost("registry:5000").WithHost("metadata-alias:80")
	cases := []dialCase{
		{"registry:5000", "172.18.0.4:5000"},
		{"registry.:5000", "172.18.0.4:5000"},
		{"registry:5001", ""},
		{"other:5000", ""},
		{"172.18.0.4:5000", ""},
		{"metadata-alias:80", ""},
	}
	checkDials(t, g, cases)
	// The socket's own check, which runs on the literal address, accepts
	// it through the copy the dialer made for the name.
	named := g.With(netip.MustParseAddrPort("172.18.0.4:5000"))
	if err := (&Dialer{Guard: named}).control("tcp4", "172.18.0.4:5000", nil); err != nil {
		t.Errorf("control on the named registry's address: %v", err)
	}
}

// dialCase is an address dialled and the address the connect step must
// see, "" when the dial must be refused before connecting.
type dialCase struct{ addr, want string }

// checkDials dials each case through g with the connect step replaced by a
// recorder, so no packet leaves the test.
func checkDials(t *testing.T, g *Guard, cases []dialCase) {
	t.Helper()
	for _, c := range cases {
		rec := &recorder{}
		d := &Dialer{Guard: g, dial: rec.dial}
		_, err := d.DialContext(context.Background(), "tcp", c.addr)
		seen := rec.seen()
		if c.want == "" {
			if !errors.Is(err, ErrRefused) || len(seen) != 0 {
				t.Errorf("dial %s: err %v, connected to %v; want refused before connecting", c.addr, err, seen)
			}
			continue
		}
		if len(seen) != 1 || seen[0] != c.want {
			t.Errorf("dial %s: connect step saw %v, want [%s]", c.addr, seen, c.want)
		}
	}
}
