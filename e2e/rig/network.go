package rig

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/slipway-build/slipway/buildnet"
)

// netSlots is how many build networks the rig hands out: slw1..slw250 on
// 10.213.1.0/24..10.213.250.0/24, clear of the default slipway0 on
// 10.213.0.0/24.
const netSlots = 250

// netNext is the last slot handed out; the first claim starts it at the pid,
// so test binaries running side by side start far apart.
var netNext atomic.Int64

// claimBuildNet gives one Slipway a build bridge and subnet of its own. A
// lock file holds the slot until the test ends, so no other test binary
// takes it meanwhile; then what the Slipway, or a kill of it, left behind
// is removed.
func claimBuildNet(t testing.TB) (string, netip.Prefix) {
	t.Helper()
	netNext.CompareAndSwap(0, int64(os.Getpid()))
	for range netSlots {
		n := int(netNext.Add(1)%netSlots) + 1
		lock, ok := lockSlot(n)
		if !ok {
			continue
		}
		bridge := fmt.Sprintf("slw%d", n)
		subnet := netip.MustParsePrefix(fmt.Sprintf("10.213.%d.0/24", n))
		forgetBuildNet(bridge, subnet) // a killed test binary's
		t.Cleanup(func() {
			forgetBuildNet(bridge, subnet)
			lock.Close()
		})
		return bridge, subnet
	}
	t.Fatalf("all %d build network slots are taken", netSlots)
	return "", netip.Prefix{}
}

func lockSlot(n int) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("slipway-rig-slw%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// forgetBuildNet removes a build network's traces: Slipway's fence, the
// rules and addresses the CNI plugins keep for the bridge and its builds,
// and the bridge. A Slipway that stopped cleanly leaves only the CNI
// firewall plugin's isolation rules; a killed one leaves everything.
func forgetBuildNet(bridge string, subnet netip.Prefix) {
	_ = buildnet.Fence{Bridge: bridge, Subnet: subnet, IPv6: true}.Remove(context.Background())
	forgetCNIRules(bridge, subnet)
	_ = exec.Command("ip", "link", "del", bridge).Run()
	forgetAddresses(subnet)
}

// cniChains are where the CNI plugins keep per-bridge and per-address
// rules: the firewall plugin's isolation and accepts, the bridge plugin's
// masquerade.
var cniChains = []struct{ table, chain string }{
	{"filter", "CNI-ISOLATION-STAGE-1"}, {"filter", "CNI-ISOLATION-STAGE-2"},
	{"filter", "CNI-FORWARD"}, {"nat", "POSTROUTING"},
}

func forgetCNIRules(bridge string, subnet netip.Prefix) {
	for _, c := range cniChains {
		out, err := exec.Command("iptables", "-w", "-t", c.table, "-S", c.chain).Output()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			spec, ok := strings.CutPrefix(line, "-A "+c.chain+" ")
			if !ok || !mentions(spec, bridge, subnet) {
				continue
			}
			// -S quotes its comments as a shell reads them.
			_ = exec.Command("sh", "-c", "iptables -w -t "+c.table+" -D "+c.chain+" "+spec).Run()
			if target := jumpTarget(spec); c.table == "nat" && strings.HasPrefix(target, "CNI-") {
				_ = exec.Command("iptables", "-w", "-t", "nat", "-F", target).Run()
				_ = exec.Command("iptables", "-w", "-t", "nat", "-X", target).Run()
			}
		}
	}
}

// mentions reports whether a rule names the bridge or one address of the
// subnet.
func mentions(spec, bridge string, subnet netip.Prefix) bool {
	for _, f := range strings.Fields(spec) {
		if f == bridge {
			return true
		}
		if p, err := netip.ParsePrefix(f); err == nil && p.IsSingleIP() && subnet.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

func jumpTarget(spec string) string {
	f := strings.Fields(spec)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" {
			return f[i+1]
		}
	}
	return ""
}

// forgetAddresses frees the subnet's addresses in the host-local IPAM
// plugin's store, which BuildKit's network "buildkit" shares on the host.
func forgetAddresses(subnet netip.Prefix) {
	dir := "/var/lib/cni/networks/buildkit"
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if a, err := netip.ParseAddr(e.Name()); err == nil && subnet.Contains(a) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// cniDir is where the rig's Slipways find the CNI plugins: bin/cni, as
// `make build` leaves them beside buildkitd, else a cni/ on PATH.
func cniDir(root string) (string, error) {
	if dir, err := buildnet.PluginDir(filepath.Join(root, "bin", "cni")); err == nil {
		return dir, nil
	}
	return buildnet.PluginDir("")
}
