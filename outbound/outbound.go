// Package outbound decides which addresses Slipway may connect to. Every
// connection Slipway makes on a user's behalf (deploy hooks, Git host APIs
// and token exchanges, clones over HTTP, registries) goes through a Guard,
// so that a registered URL cannot make Slipway reach its own machine, the
// private network it runs in or a cloud metadata service.
//
// The decision is made on the address actually dialled, after DNS
// resolution, so a name that resolves to loopback, or re-resolves to it
// later (DNS rebinding), is refused as well.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrRefused is wrapped by every refusal.
var ErrRefused = errors.New("outbound connection refused")

// refusedRange is one refused range and why.
type refusedRange struct {
	prefix netip.Prefix
	why    string
}

func mustRanges(pairs ...string) []refusedRange {
	out := make([]refusedRange, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, refusedRange{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return out
}

// metadata are the cloud metadata services. They are refused even when an
// allowed range covers them: no setup needs Slipway to fetch instance
// credentials.
var metadata = mustRanges(
	"169.254.169.254/32", "a cloud metadata address",
	"169.254.170.2/32", "a cloud metadata address", // ECS task credentials
	"fd00:ec2::254/128", "a cloud metadata address",
	"100.100.100.200/32", "a cloud metadata address",
)

// refused are the ranges that are not the public internet.
var refused = mustRanges(
	"0.0.0.0/8", "an unspecified address",
	"::/128", "an unspecified address",
	"127.0.0.0/8", "a loopback address",
	"::1/128", "a loopback address",
	"10.0.0.0/8", "a private address",
	"172.16.0.0/12", "a private address",
	"192.168.0.0/16", "a private address",
	"100.64.0.0/10", "a shared (CGNAT) address",
	"169.254.0.0/16", "a link-local address",
	"fe80::/10", "a link-local address",
	"fc00::/7", "a unique local address",
	"224.0.0.0/4", "a multicast address",
	"ff00::/8", "a multicast address",
	"240.0.0.0/4", "a reserved or broadcast address",
	"192.0.0.0/24", "an IETF protocol address",
)

// nat64 embeds an IPv4 address in its last 32 bits; the embedded address
// decides.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Refused reports why ip may not be dialled ("" when it may), ignoring any
// allow list. IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) and NAT64
// addresses are judged by the IPv4 address they carry.
func Refused(ip netip.Addr) string {
	ip = canonical(ip)
	if !ip.IsValid() {
		return "not an IP address"
	}
	if why := lookupRange(metadata, ip); why != "" {
		return why
	}
	return lookupRange(refused, ip)
}

func canonical(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() && nat64.Contains(ip) {
		b := ip.As16()
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	return ip
}

func lookupRange(ranges []refusedRange, ip netip.Addr) string {
	for _, r := range ranges {
		if r.prefix.Contains(ip) {
			return r.why
		}
	}
	return ""
}

// Guard is the policy: the refused ranges, opened where Allow says so. The
// zero value refuses every non-public address and resolves names with the
// system resolver. A Guard must not be changed once in use.
type Guard struct {
	// Allow are ranges opened on purpose (SLIPWAY_OUTBOUND_ALLOW_CIDRS),
	// e.g. 127.0.0.0/8 for a local try-out or 10.0.0.0/8 for a Git host
	// on the private network. They never open a metadata address.
	Allow []netip.Prefix
	// AllowAddrs are single host:port pairs opened, such as the embedded
	// registry's own address for the registry client.
	AllowAddrs []netip.AddrPort
	// AllowHosts are host:port names opened at whatever address they
	// resolve to, such as the Slipway registry a Compose file or a cluster
	// names (registry:5000): its operator named it, so a private address
	// is expected. Metadata addresses stay refused.
	AllowHosts []string
	// Lookup resolves a host name; nil means the system resolver. Tests
	// replace it so that no test depends on real DNS.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// OnlyAllowed refuses public addresses too, so that only what Allow
	// and AllowAddrs open is reachable: plain-HTTP clones, which would
	// carry the token in clear, go through such a Guard (see Plain).
	OnlyAllowed bool
}

// Check returns nil when ip:port may be dialled, else an error wrapping
// ErrRefused that says why. port 0 matches no AllowAddrs entry.
func (g *Guard) Check(ip netip.Addr, port uint16) error {
	ip = canonical(ip)
	why := Refused(ip)
	if why == "" && g != nil && g.OnlyAllowed {
		why = "not in the ranges opened for plain HTTP"
	}
	if why == "" {
		return nil
	}
	if lookupRange(metadata, ip) != "" {
		return fmt.Errorf("%w: %s is %s", ErrRefused, ip, why)
	}
	if g.opened(ip, port) {
		return nil
	}
	return fmt.Errorf("%w: %s is %s (SLIPWAY_OUTBOUND_ALLOW_CIDRS can open it)", ErrRefused, ip, why)
}

func (g *Guard) opened(ip netip.Addr, port uint16) bool {
	if g == nil {
		return false
	}
	for _, p := range g.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	for _, ap := range g.AllowAddrs {
		if canonical(ap.Addr()) == ip && ap.Port() == port && port != 0 {
			return true
		}
	}
	return false
}

// With returns a copy of g that also allows the exact address ap.
func (g *Guard) With(ap netip.AddrPort) *Guard {
	c := Guard{}
	if g != nil {
		c = *g
	}
	c.AllowAddrs = append(append([]netip.AddrPort(nil), c.AllowAddrs...), ap)
	return &c
}

// WithHost returns a copy of g that also opens the name host:port.
func (g *Guard) WithHost(hostport string) *Guard {
	c := Guard{}
	if g != nil {
		c = *g
	}
	c.AllowHosts = append(append([]string(nil), c.AllowHosts...), hostport)
	return &c
}

// namedHost reports whether host:port is one of AllowHosts.
func (g *Guard) namedHost(host string, port uint16) bool {
	if g == nil || port == 0 {
		return false
	}
	hp := net.JoinHostPort(strings.TrimSuffix(strings.Trim(host, "[]"), "."), strconv.Itoa(int(port)))
	for _, h := range g.AllowHosts {
		if strings.EqualFold(h, hp) {
			return true
		}
	}
	return false
}

// Plain returns a copy of g that reaches only what the allow list opens.
func (g *Guard) Plain() *Guard {
	c := Guard{}
	if g != nil {
		c = *g
	}
	c.OnlyAllowed = true
	return &c
}

// Resolve returns the addresses host (a name or an IP literal) stands for,
// each checked: those that may be dialled, or an error naming the first
// refusal when none may. port is as in Check.
func (g *Guard) Resolve(ctx context.Context, host string, port uint16) ([]netip.Addr, error) {
	addrs, err := g.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	named := g.namedHost(host, port)
	var ok []netip.Addr
	var first error
	for _, a := range addrs {
		if named && lookupRange(metadata, canonical(a)) == "" {
			ok = append(ok, canonical(a))
			continue
		}
		if err := g.Check(a, port); err != nil {
			first = cmpErr(first, err)
			continue
		}
		ok = append(ok, canonical(a))
	}
	if len(ok) == 0 {
		if first == nil {
			first = fmt.Errorf("%w: %s resolves to no address", ErrRefused, host)
		}
		if _, literal := netip.ParseAddr(strings.Trim(host, "[]")); literal == nil {
			return nil, first
		}
		return nil, fmt.Errorf("%s: %w", host, first)
	}
	return ok, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// lookup turns host into addresses. An IP literal is itself; a host that
// looks numeric but is not a dotted-quad or IPv6 literal (0x7f000001,
// 2130706433, 127.1, 0177.0.0.1) is refused, because C resolvers read it as
// an IPv4 address while Go's reads it as a name: the decision must not
// depend on which one answers.
func (g *Guard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	if host == "" {
		return nil, fmt.Errorf("%w: empty host", ErrRefused)
	}
	if numeric(host) {
		return nil, fmt.Errorf("%w: %q is a numeric host that is not a plain IP address", ErrRefused, host)
	}
	if g != nil && g.Lookup != nil {
		return g.Lookup(ctx, host)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	return addrs, nil
}

// numeric reports whether host's last label starts with a digit: no
// top-level domain does, and inet_aton accepts every such form.
func numeric(host string) bool {
	last := host[strings.LastIndex(host, ".")+1:]
	return last != "" && last[0] >= '0' && last[0] <= '9'
}

// ParseCIDRs reads a comma-separated list of ranges, e.g.
// "127.0.0.0/8, 10.1.0.0/16". A bare address counts as its own /32 or /128.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if ip, err := netip.ParseAddr(part); err == nil {
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("want CIDR ranges such as 127.0.0.0/8,10.0.0.0/8, got %q", part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
