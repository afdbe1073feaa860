package main

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/outbound"
)

// hostAPITimeout bounds one call to a Git host's API or token exchange.
const hostAPITimeout = 30 * time.Second

// guards are the outbound guards of one process: every connection Slipway
// makes for a repository goes through one of them.
type guards struct {
	// all judges deploy hooks, host APIs, token exchanges and clones.
	all *outbound.Guard
	// registry judges the registry client's connections: all, plus the
	// embedded registry's own address, which is Slipway's and needs no
	// allow list (`make run` tags images on 127.0.0.1:5000).
	registry *outbound.Guard
}

func newGuards(cfg config.Config, embedded bool) guards {
	g := guards{all: &outbound.Guard{Allow: cfg.OutboundAllow}}
	g.registry = g.all
	for _, ap := range embeddedRegistry(cfg, embedded) {
		g.registry = g.registry.With(ap)
	}
	if !embedded && cfg.RegistryAddr != "off" {
		// The other roles reach the Slipway registry by the name images
		// use (registry:5000 in Compose, a Service in a cluster), whose
		// private address nobody should have to list.
		g.registry = g.registry.WithHost(cfg.RegistryAddr)
		for _, ap := range localAddrs(cfg.RegistryAddr) {
			g.registry = g.registry.With(ap)
		}
	}
	return g
}

// embeddedRegistry is where this process's embedded registry answers: its
// listen address, or loopback when it listens on every interface. With
// token auth, this process's HTTP address too, which serves the tokens
// (the realm) the registry client must fetch.
func embeddedRegistry(cfg config.Config, embedded bool) []netip.AddrPort {
	if !embedded || cfg.RegistryAddr == "off" {
		return nil
	}
	addrs := localAddrs(cfg.RegistryAddr)
	if cfg.RegistryAuth == "token" {
		addrs = append(addrs, localAddrs(cfg.HTTPAddr)...)
	}
	return addrs
}

// localAddrs is where a listener on addr of this process answers.
func localAddrs(addr string) []netip.AddrPort {
	host, portText, err := net.SplitHostPort(addr)
	port, perr := strconv.ParseUint(portText, 10, 16)
	if err != nil || perr != nil {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err == nil && !ip.IsUnspecified() {
		return []netip.AddrPort{netip.AddrPortFrom(ip, uint16(port))}
	}
	if err == nil || host == "" || host == "localhost" {
		return []netip.AddrPort{
			netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)),
			netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port)),
		}
	}
	return nil // a name: open it with SLIPWAY_OUTBOUND_ALLOW_CIDRS
}

// hostAPI sends requests to the Git hosts' APIs and their token exchanges.
func (g guards) hostAPI() *http.Client { return g.all.Client(hostAPITimeout) }

// hooks sends deploy webhooks. Like deploy.Sender's own default it follows
// no redirect: the spec treats 3xx as failure.
func (g guards) hooks() deploy.Sender {
	hc := g.all.Client(0) // deploy.Sender bounds each attempt itself
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return deploy.Sender{Client: hc}
}

// installGit makes go-git clone over HTTP(S) through the guard; plain http
// reaches only what the allow list opens, since the token would travel in
// clear. go-git v5 has no per-call HTTP client, only this process-wide
// protocol table, so it is set once here, before anything clones. (SSH
// clones dial through go-git's own dialer: registration checks their host,
// but the dial is not guarded.)
func (g guards) installGit() {
	client.InstallProtocol("https", githttp.NewClient(g.all.Client(0)))
	client.InstallProtocol("http", githttp.NewClient(g.all.Plain().Client(0)))
}
