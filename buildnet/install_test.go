package buildnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// listChain is `<cmd> -S <chain>` as lines; ok is false when the chain does
// not exist.
func listChain(t *testing.T, cmd, chain string) (lines []string, ok bool) {
	t.Helper()
	out, err := exec.Command(cmd, "-w", "-S", chain).CombinedOutput()
	if err != nil {
		return nil, false
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), true
}

// testBridge creates a bridge of the test's own and deletes it at the end.
func testBridge(t *testing.T, n int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("installing iptables rules needs root (make test runs as root)")
	}
	name := fmt.Sprintf("slwt%d-%d", os.Getpid()%1000000, n)
	if out, err := exec.Command("ip", "link", "add", name, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add %s type bridge: %v: %s", name, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() })
	return name
}

// TestInstallAndRemove puts the fence around a bridge the test made, reads
// it back with iptables -S, and takes it away. No packet is sent: what the
// kernel would do with one is what the listed rules say.
func TestInstallAndRemove(t *testing.T) {
	ctx := context.Background()
	f := Fence{
		Bridge: testBridge(t, 0), Subnet: netip.MustParsePrefix("10.213.251.0/24"),
		Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, IPv6: hasIPv6(),
	}
	t.Cleanup(func() { _ = f.Remove(ctx) })

	// A fence a crash left behind, with a stray rule and a second jump,
	// is flushed and refilled, not added to.
	if err := f.Install(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ipt(ctx, "iptables", "-A", f.InChain(), "-j", "ACCEPT"); err != nil {
		t.Fatal(err)
	}
	if err := ipt(ctx, "iptables", "-A", "INPUT", "-i", f.Bridge, "-j", f.InChain()); err != nil {
		t.Fatal(err)
	}
	if err := f.Install(ctx); err != nil {
		t.Fatal(err)
	}

	for _, c := range f.chains(f.Rules()) {
		if c.name == cniAdmin {
			continue
		}
		got, ok := listChain(t, c.cmd, c.name)
		if !ok {
			t.Fatalf("%s -S %s: no such chain after Install", c.cmd, c.name)
		}
		want := []string{"-N " + c.name}
		for _, r := range f.Rules() {
			if r.Cmd == c.cmd && r.Chain == c.name {
				want = append(want, "-A "+c.name+" "+r.Spec)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s -S %s =\n%s\nwant\n%s", c.cmd, c.name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	fwd, _ := listChain(t, "iptables", f.FwdChain())
	for _, drop := range []string{"-d 169.254.0.0/16 -j DROP", "-d 100.100.100.200/32 -j DROP"} {
		if !slices.Contains(fwd, "-A "+f.FwdChain()+" "+drop) {
			t.Errorf("%s lacks %q:\n%s", f.FwdChain(), drop, strings.Join(fwd, "\n"))
		}
	}
	if f.IPv6 {
		fwd6, _ := listChain(t, "ip6tables", f.FwdChain())
		for _, drop := range []string{"-d fe80::/10 -j DROP", "-d fd00:ec2::254/128 -j DROP"} {
			if !slices.Contains(fwd6, "-A "+f.FwdChain()+" "+drop) {
				t.Errorf("ip6tables %s lacks %q:\n%s", f.FwdChain(), drop, strings.Join(fwd6, "\n"))
			}
		}
	}
	for _, r := range f.Rules() {
		if !f.own(r.Chain) {
			checkJump(t, r, 1, true)
		}
	}

	if err := f.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.chains(f.Rules()) {
		if _, ok := listChain(t, c.cmd, c.name); ok && c.name != cniAdmin {
			t.Errorf("%s chain %s still there after Remove", c.cmd, c.name)
		}
	}
	for _, r := range f.Rules() {
		if !f.own(r.Chain) {
			checkJump(t, r, 0, false)
		}
	}
	if err := f.Remove(ctx); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if _, err := net.InterfaceByName(f.Bridge); err != nil {
		t.Errorf("the bridge itself is not the fence's to remove: %v", err)
	}
}

// checkJump wants n copies of jump r in its chain, the first as its first
// rule when first is set.
func checkJump(t *testing.T, r Rule, n int, first bool) {
	t.Helper()
	lines, _ := listChain(t, r.Cmd, r.Chain)
	line := "-A " + r.Chain + " " + r.Spec
	var rules []string
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") {
			rules = append(rules, l)
		}
	}
	count := 0
	for _, l := range rules {
		if l == line {
			count++
		}
	}
	if count != n || (first && rules[0] != line) {
		t.Errorf("%s -S %s: want %d copies of %q (first: %v); got\n%s", r.Cmd, r.Chain, n, line, first, strings.Join(lines, "\n"))
	}
}

// Two Slipways starting at once each get their whole fence, though both
// may find CNI-ADMIN missing and make it.
func TestInstallConcurrently(t *testing.T) {
	ctx := context.Background()
	fences := []Fence{
		{Bridge: testBridge(t, 1), Subnet: netip.MustParsePrefix("10.213.252.0/24"), IPv6: hasIPv6()},
		{Bridge: testBridge(t, 2), Subnet: netip.MustParsePrefix("10.213.253.0/24"), IPv6: hasIPv6()},
	}
	for _, f := range fences {
		t.Cleanup(func() { _ = f.Remove(ctx) })
	}
	errs := make(chan error, len(fences))
	for _, f := range fences {
		go func() { errs <- f.Install(ctx) }()
	}
	for range fences {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for _, f := range fences {
		for _, r := range f.Rules() {
			if !f.own(r.Chain) {
				checkJump(t, r, 1, false) // the other's may be first
			}
		}
	}
}
