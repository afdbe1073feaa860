// Package buildnet fences off the bridge network BuildKit attaches every RUN
// step to. Without it a Dockerfile could reach this host's own listeners
// (Slipway's API and webhooks, the embedded registry, which has no auth,
// NATS) and the cloud metadata service; with it, builds keep ordinary egress
// (package mirrors) and nothing more.
//
// The fence is a pair of iptables chains per bridge, named after it, so that
// several Slipways on one machine each own theirs. Installing flushes and
// refills them; removing takes them out again.
package buildnet

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// Fence describes the rules around one build bridge.
type Fence struct {
	// Bridge is the interface BuildKit's CNI bridge plugin creates, and
	// Subnet the IPv4 range builds get their addresses from.
	Bridge string
	Subnet netip.Prefix
	// Nameservers are the DNS servers BuildKit writes into a build's
	// resolv.conf; when one of them is this host, builds may still ask it.
	Nameservers []netip.Addr
	// IPv6 adds the ip6tables rules: even without IPv6 addresses on the
	// bridge, a build can talk to the host over link-local fe80:: ones.
	IPv6 bool
}

// Rule is one iptables rule as `iptables -S Chain` prints it after
// "-A Chain ".
type Rule struct {
	Cmd   string // iptables or ip6tables
	Chain string
	Spec  string
}

// Metadata and link-local ranges no build may reach through the host: cloud
// instance metadata (credentials) lives there.
var (
	blocked4 = []string{"169.254.0.0/16", "100.100.100.200/32"}
	blocked6 = []string{"fe80::/10", "fd00:ec2::254/128"}
)

// InChain holds what builds may send to this host itself; FwdChain what
// they may send through it.
func (f Fence) InChain() string  { return "SLIPWAY-IN-" + f.Bridge }
func (f Fence) FwdChain() string { return "SLIPWAY-FWD-" + f.Bridge }

// own reports whether chain is one of the fence's own chains, which are
// flushed and refilled; rules in other chains are jumps into them.
func (f Fence) own(chain string) bool { return chain == f.InChain() || chain == f.FwdChain() }

// Rules is the whole fence, per command: the own chains' rules in order,
// then the jumps into them, each of which goes first in its chain.
func (f Fence) Rules() []Rule {
	rules := f.family("iptables", blocked4, netip.Addr.Is4)
	if f.IPv6 {
		rules = append(rules, f.family("ip6tables", blocked6, netip.Addr.Is6)...)
	}
	return rules
}

func (f Fence) family(cmd string, blocked []string, ours func(netip.Addr) bool) []Rule {
	rules := f.inRules(cmd, ours)
	rules = append(rules, f.fwdRules(cmd, blocked)...)
	return append(rules, f.jumps(cmd)...)
}

// inRules: traffic to any address of this host (the bridge gateway,
// eth0's, another bridge's) arrives on INPUT from the bridge, and only DNS
// to a resolver BuildKit named passes.
func (f Fence) inRules(cmd string, ours func(netip.Addr) bool) []Rule {
	var rules []Rule
	for _, ns := range f.Nameservers {
		if ours(ns) {
			dst := netip.PrefixFrom(ns, ns.BitLen()).String()
			rules = append(rules,
				Rule{cmd, f.InChain(), "-d " + dst + " -p udp -m udp --dport 53 -j ACCEPT"},
				Rule{cmd, f.InChain(), "-d " + dst + " -p tcp -m tcp --dport 53 -j ACCEPT"})
		}
	}
	return append(rules, Rule{cmd, f.InChain(), "-j DROP"})
}

// fwdRules: what builds send through this host may go anywhere but the
// blocked ranges.
func (f Fence) fwdRules(cmd string, blocked []string) []Rule {
	var rules []Rule
	if cmd == "iptables" {
		// Only the bridge's own addresses leave through the host: a build
		// with raw sockets must not put forged sources on the network.
		rules = append(rules, Rule{cmd, f.FwdChain(), "! -s " + f.Subnet.Masked().String() + " -j DROP"})
	}
	for _, dst := range blocked {
		rules = append(rules, Rule{cmd, f.FwdChain(), "-d " + dst + " -j DROP"})
	}
	if cmd == "ip6tables" {
		// Builds have IPv6 link-local addresses only, which are never
		// forwarded: any other source is forged.
		rules = append(rules, Rule{cmd, f.FwdChain(), "-j DROP"})
	}
	return rules
}

func (f Fence) jumps(cmd string) []Rule {
	rules := []Rule{
		{cmd, "INPUT", "-i " + f.Bridge + " -j " + f.InChain()},
		{cmd, "FORWARD", "-i " + f.Bridge + " -j " + f.FwdChain()},
	}
	if cmd == "iptables" {
		// The CNI firewall plugin puts its own chain first in FORWARD
		// once BuildKit starts, and that chain accepts everything from a
		// build's address after consulting CNI-ADMIN, the chain it keeps
		// for administrators' rules: the fence must be there too.
		rules = append(rules, Rule{cmd, cniAdmin, "-i " + f.Bridge + " -j " + f.FwdChain()})
	}
	return rules
}

const cniAdmin = "CNI-ADMIN"

// Install flushes and refills the fence's chains and puts one jump into
// each at the top of INPUT, FORWARD and CNI-ADMIN; it is safe to run again
// over a fence a crash left behind.
func (f Fence) Install(ctx context.Context) error {
	rules := f.Rules()
	for _, c := range f.chains(rules) {
		if err := ensureChain(ctx, c.cmd, c.name); err != nil {
			return err
		}
	}
	for _, r := range rules {
		var err error
		if f.own(r.Chain) {
			err = ipt(ctx, r.Cmd, append([]string{"-A", r.Chain}, strings.Fields(r.Spec)...)...)
		} else {
			err = insertFirst(ctx, r)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Remove takes the jumps out and deletes the fence's chains. A fence that
// is not there is not an error.
func (f Fence) Remove(ctx context.Context) error {
	rules := f.Rules()
	for _, r := range rules {
		if !f.own(r.Chain) {
			deleteAll(ctx, r)
		}
	}
	var firstErr error
	for _, c := range f.chains(rules) {
		if c.name == cniAdmin || !exists(ctx, c.cmd, c.name) {
			// CNI-ADMIN stays, empty: it is the CNI plugins' chain, and
			// another Slipway may be about to put its jump there.
			continue
		}
		_ = ipt(ctx, c.cmd, "-F", c.name)
		if err := ipt(ctx, c.cmd, "-X", c.name); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

type chain struct{ cmd, name string }

// chains lists the chains the rules need, own ones and CNI-ADMIN, which
// the fence creates when BuildKit has not yet.
func (f Fence) chains(rules []Rule) []chain {
	seen := map[chain]bool{}
	var out []chain
	for _, r := range rules {
		c := chain{r.Cmd, r.Chain}
		if (f.own(r.Chain) || r.Chain == cniAdmin) && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// ensureChain leaves name existing and, if it is the fence's own, empty.
func ensureChain(ctx context.Context, cmd, name string) error {
	if !exists(ctx, cmd, name) {
		// A CNI plugin or another Slipway may make CNI-ADMIN meanwhile.
		if err := ipt(ctx, cmd, "-N", name); err != nil && !exists(ctx, cmd, name) {
			return err
		}
	}
	if name == cniAdmin {
		return nil // others' rules stay
	}
	return ipt(ctx, cmd, "-F", name)
}

func exists(ctx context.Context, cmd, name string) bool {
	return ipt(ctx, cmd, "-S", name) == nil
}

// insertFirst makes r the first rule of its chain, and its only copy.
func insertFirst(ctx context.Context, r Rule) error {
	deleteAll(ctx, r)
	return ipt(ctx, r.Cmd, append([]string{"-I", r.Chain, "1"}, strings.Fields(r.Spec)...)...)
}

// deleteAll removes every copy of r; earlier runs may have left several.
func deleteAll(ctx context.Context, r Rule) {
	args := append([]string{"-D", r.Chain}, strings.Fields(r.Spec)...)
	for range 16 {
		if ipt(ctx, r.Cmd, args...) != nil {
			return
		}
	}
}

// ipt runs iptables or ip6tables, waiting for the lock the CNI plugins also
// take; its error is one line with the command and what it said.
func ipt(ctx context.Context, cmd string, args ...string) error {
	args = append([]string{"-w"}, args...)
	out, err := exec.CommandContext(ctx, cmd, args...).CombinedOutput() // #nosec G204 -- cmd is iptables or ip6tables, args are Slipway's own rules; no shell
	if err != nil {
		msg := strings.Join(strings.Fields(string(out)), " ")
		return fmt.Errorf("%s %s: %w: %s", cmd, strings.Join(args, " "), err, msg)
	}
	return nil
}
