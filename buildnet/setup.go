package buildnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Plugins are the CNI plugins BuildKit's bridge network runs for every RUN
// step; they are looked up by these names in one directory.
var Plugins = []string{"bridge", "host-local", "loopback", "firewall"}

// Options is one Slipway's build bridge.
type Options struct {
	Bridge string
	Subnet netip.Prefix
	// PluginDir holds the CNI plugins; empty looks them up (PluginDir).
	PluginDir string
	// ResolvConf is what BuildKit copies DNS servers from; empty is
	// /etc/resolv.conf.
	ResolvConf string
}

// Network is a fenced build bridge, ready for BuildKit to create.
type Network struct {
	Fence
	// PluginDir is where BuildKit finds the CNI plugins.
	PluginDir string
}

// Setup checks that this machine can give builds a fenced bridge (root,
// iptables, the CNI plugins) and installs the fence. Its error says what is
// missing, in one line.
func Setup(ctx context.Context, o Options) (*Network, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("bridge networking needs root (network namespaces, iptables)")
	}
	dir, err := PluginDir(o.PluginDir)
	if err != nil {
		return nil, err
	}
	// buildkitd runs the plugins from wherever its working directory is.
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("CNI plugin directory: %w", err)
	}
	if o.ResolvConf == "" {
		o.ResolvConf = "/etc/resolv.conf"
	}
	f := Fence{Bridge: o.Bridge, Subnet: o.Subnet, Nameservers: Nameservers(o.ResolvConf), IPv6: hasIPv6()}
	for _, cmd := range f.commands() {
		if _, err := exec.LookPath(cmd); err != nil {
			return nil, fmt.Errorf("%s not found (Debian package iptables): %w", cmd, err)
		}
	}
	if err := f.Install(ctx); err != nil {
		_ = f.Remove(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("install the build bridge's firewall: %w", err)
	}
	return &Network{Fence: f, PluginDir: dir}, nil
}

// Close removes the fence; call it once BuildKit has stopped.
func (n *Network) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.Remove(ctx)
}

func (f Fence) commands() []string {
	if f.IPv6 {
		return []string{"iptables", "ip6tables"}
	}
	return []string{"iptables"}
}

// hasIPv6 reports whether the kernel does IPv6, and so gives the bridge
// and every build a link-local address.
func hasIPv6() bool {
	_, err := os.Stat("/proc/net/if_inet6")
	return err == nil
}

// PluginDir is where the CNI plugins are: dir when it is set, else cni/
// next to the running executable, else cni/ inside a directory on PATH
// (`make build` puts them in bin/cni, beside buildkitd).
func PluginDir(dir string) (string, error) {
	if dir != "" {
		return dir, hasPlugins(dir)
	}
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "cni"))
	}
	for _, p := range filepath.SplitList(os.Getenv("PATH")) {
		if p != "" {
			candidates = append(candidates, filepath.Join(p, "cni"))
		}
	}
	for _, c := range candidates {
		if hasPlugins(c) == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("CNI plugins (%s) not found in cni/ next to the executable or in cni/ of a PATH directory", strings.Join(Plugins, ", "))
}

func hasPlugins(dir string) error {
	for _, p := range Plugins {
		st, err := os.Stat(filepath.Join(dir, p)) // #nosec G703 -- dir is the operator's SLIPWAY_CNI_DIR or cni/ beside slipway or on PATH
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("CNI plugin %s is not in %s", p, dir)
		}
	}
	return nil
}

// Nameservers are the DNS servers BuildKit gives a bridged build: those of
// the resolv.conf at path, or of systemd-resolved's upstream list when path
// names only its local stub, less loopback ones, which a build cannot reach.
func Nameservers(path string) []netip.Addr {
	ns := readNameservers(path)
	if len(ns) == 1 && ns[0] == netip.MustParseAddr("127.0.0.53") {
		ns = readNameservers("/run/systemd/resolve/resolv.conf")
	}
	var out []netip.Addr
	for _, a := range ns {
		if !a.IsLoopback() {
			out = append(out, a.WithZone(""))
		}
	}
	return out
}

func readNameservers(path string) []netip.Addr {
	f, err := os.Open(path) // #nosec G304 -- the resolver configuration BuildKit copies, /etc/resolv.conf
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(fields[1]); err == nil {
			out = append(out, a)
		}
	}
	return out
}
