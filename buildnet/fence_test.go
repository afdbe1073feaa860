package buildnet

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The fence for one bridge, rule by rule, as `iptables -S` prints them.
func TestRules(t *testing.T) {
	f := Fence{
		Bridge: "slw7", Subnet: netip.MustParsePrefix("10.213.7.0/24"),
		Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")},
		IPv6:        true,
	}
	want := []Rule{
		{"iptables", "SLIPWAY-IN-slw7", "-d 192.0.2.53/32 -p udp -m udp --dport 53 -j ACCEPT"},
		{"iptables", "SLIPWAY-IN-slw7", "-d 192.0.2.53/32 -p tcp -m tcp --dport 53 -j ACCEPT"},
		{"iptables", "SLIPWAY-IN-slw7", "-j DROP"},
		{"iptables", "SLIPWAY-FWD-slw7", "! -s 10.213.7.0/24 -j DROP"},
		{"iptables", "SLIPWAY-FWD-slw7", "-d 169.254.0.0/16 -j DROP"},
		{"iptables", "SLIPWAY-FWD-slw7", "-d 100.100.100.200/32 -j DROP"},
		{"iptables", "INPUT", "-i slw7 -j SLIPWAY-IN-slw7"},
		{"iptables", "FORWARD", "-i slw7 -j SLIPWAY-FWD-slw7"},
		{"iptables", "CNI-ADMIN", "-i slw7 -j SLIPWAY-FWD-slw7"},
		{"ip6tables", "SLIPWAY-IN-slw7", "-d 2001:db8::53/128 -p udp -m udp --dport 53 -j ACCEPT"},
		{"ip6tables", "SLIPWAY-IN-slw7", "-d 2001:db8::53/128 -p tcp -m tcp --dport 53 -j ACCEPT"},
		{"ip6tables", "SLIPWAY-IN-slw7", "-j DROP"},
		{"ip6tables", "SLIPWAY-FWD-slw7", "-d fe80::/10 -j DROP"},
		{"ip6tables", "SLIPWAY-FWD-slw7", "-d fd00:ec2::254/128 -j DROP"},
		{"ip6tables", "SLIPWAY-FWD-slw7", "-j DROP"},
		{"ip6tables", "INPUT", "-i slw7 -j SLIPWAY-IN-slw7"},
		{"ip6tables", "FORWARD", "-i slw7 -j SLIPWAY-FWD-slw7"},
	}
	if got := f.Rules(); !reflect.DeepEqual(got, want) {
		t.Errorf("Rules() =\n%s\nwant\n%s", show(got), show(want))
	}
}

// Without IPv6 and without a resolver to let through, the fence is the
// IPv4 drops and jumps alone.
func TestRulesIPv4Only(t *testing.T) {
	f := Fence{Bridge: "slipway0", Subnet: netip.MustParsePrefix("10.213.0.0/24")}
	want := []Rule{
		{"iptables", "SLIPWAY-IN-slipway0", "-j DROP"},
		{"iptables", "SLIPWAY-FWD-slipway0", "! -s 10.213.0.0/24 -j DROP"},
		{"iptables", "SLIPWAY-FWD-slipway0", "-d 169.254.0.0/16 -j DROP"},
		{"iptables", "SLIPWAY-FWD-slipway0", "-d 100.100.100.200/32 -j DROP"},
		{"iptables", "INPUT", "-i slipway0 -j SLIPWAY-IN-slipway0"},
		{"iptables", "FORWARD", "-i slipway0 -j SLIPWAY-FWD-slipway0"},
		{"iptables", "CNI-ADMIN", "-i slipway0 -j SLIPWAY-FWD-slipway0"},
	}
	if got := f.Rules(); !reflect.DeepEqual(got, want) {
		t.Errorf("Rules() =\n%s\nwant\n%s", show(got), show(want))
	}
}

func show(rules []Rule) string {
	var b strings.Builder
	for _, r := range rules {
		b.WriteString("  " + r.Cmd + " -A " + r.Chain + " " + r.Spec + "\n")
	}
	return b.String()
}

func TestNameservers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "# generated\nsearch acme.example\nnameserver 127.0.0.1\nnameserver 192.0.2.53\n" +
		"nameserver ::1\nnameserver fe80::53%eth0\noptions ndots:2\nnameserver not-an-address\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	got := Nameservers(path)
	want := []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("fe80::53")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Nameservers = %v, want %v (loopback dropped, zone stripped)", got, want)
	}
	if got := Nameservers(filepath.Join(t.TempDir(), "none")); got != nil {
		t.Errorf("Nameservers of a missing file = %v, want none", got)
	}
}

func fakePlugins(t *testing.T, dir string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPluginDir(t *testing.T) {
	root := t.TempDir()
	full, partial := filepath.Join(root, "full"), filepath.Join(root, "partial")
	fakePlugins(t, full, Plugins...)
	fakePlugins(t, partial, "bridge", "loopback", "host-local")

	if dir, err := PluginDir(full); err != nil || dir != full {
		t.Errorf("PluginDir(%s) = %q, %v", full, dir, err)
	}
	if _, err := PluginDir(partial); err == nil || !strings.Contains(err.Error(), "firewall") {
		t.Errorf("PluginDir without firewall: err = %v, want it to name firewall", err)
	}
	// Unset, the plugins are found in cni/ of a PATH directory.
	onPath := filepath.Join(root, "bin")
	fakePlugins(t, filepath.Join(onPath, "cni"), Plugins...)
	t.Setenv("PATH", partial+string(filepath.ListSeparator)+onPath)
	if dir, err := PluginDir(""); err != nil || dir != filepath.Join(onPath, "cni") {
		t.Errorf("PluginDir(\"\") = %q, %v; want %s", dir, err, filepath.Join(onPath, "cni"))
	}
	t.Setenv("PATH", partial)
	if _, err := PluginDir(""); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("PluginDir(\"\") with no plugins anywhere: err = %v, want one line", err)
	}
}
