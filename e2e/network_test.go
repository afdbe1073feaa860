package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/buildnet"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// probeScript prints what a build can reach: its default route, its network
// interfaces, its resolv.conf, and for each host:port argument whether a
// TCP connection gets through. It names addresses only, so it sends no DNS
// query.
const probeScript = `#!/bin/sh
echo "route=[$(ip route | awk '/^default/ {print $3}')]"
echo "ifaces=[$(tail -n +3 /proc/net/dev | cut -d: -f1 | xargs)]"
sed 's/^/resolv: /' /etc/resolv.conf
for target in "$@"; do
  # nc exits 1 when it cannot connect; once connected it waits for the
  # server to hang up, and timeout ends it.
  timeout 4 nc -w 2 "${target%:*}" "${target##*:}" </dev/null >/dev/null 2>&1
  if [ $? -eq 1 ]; then echo "probe $target BLOCKED"; else echo "probe $target REACHED"; fi
done
`

// probeFiles is a commit whose build runs probeScript against targets;
// nonce keeps BuildKit from answering from its cache.
func probeFiles(registry, nonce string, targets ...string) map[string]string {
	return map[string]string{
		"probe.sh": probeScript,
		"Dockerfile": fmt.Sprintf("FROM %s/library/busybox:latest\nCOPY probe.sh /probe.sh\nRUN sh /probe.sh %s # %s\n",
			registry, strings.Join(targets, " "), nonce),
	}
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func iptables(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestBuildNetwork runs builds on the bridge of a Slipway whose API and
// registry listen on every address: only the fence keeps builds off them.
// Probes go only to the bridge's gateway, which that Slipway created, and
// to the build's own loopback.
func TestBuildNetwork(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{ListenAll: true})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	gw := s.BuildGateway().String()
	api, reg := port(t, s.HTTPAddr), port(t, s.RegistryAddr)
	viaGateway := []string{gw + ":" + api, gw + ":" + reg}
	viaLoopback := []string{"127.0.0.1:" + api, "127.0.0.1:" + reg}
	targets := append(append([]string{}, viaGateway...), viaLoopback...)
	p := newProject(t, s, git, "fenced", nil)

	t.Run("builds reach neither the API nor the registry and still succeed", func(t *testing.T) {
		start := time.Now()
		r := p.push("refs/heads/main", "probe", probeFiles(s.RegistryAddr, "fenced", targets...), nil)
		b := p.succeeded(r.Builds[0])
		log := s.Log(b.ID)
		rig.Contains(t, "build log", log, "route=["+gw+"]", "eth0")
		for _, target := range targets {
			rig.Contains(t, "build log", log, "probe "+target+" BLOCKED")
		}
		if b.Network != "" {
			t.Errorf("build network = %q, want the bridge (\"\")", b.Network)
		}
		// DNS stays as BuildKit sets it: the host's resolvers, less
		// loopback ones; the fence lets them through if they are this host.
		for _, ns := range buildnet.Nameservers("/etc/resolv.conf") {
			rig.Contains(t, "build log", log, "resolv: nameserver "+ns.String())
		}
		t.Logf("fenced build in %s; its resolv.conf:\n%s", time.Since(start).Round(time.Millisecond), grepLines(log, "resolv: "))
	})

	t.Run("opened, the fence lets the same probe through", func(t *testing.T) {
		// A rule of the test's own ahead of Slipway's DROP shows that the
		// fence, not where the API listens, blocked the probe above.
		in := "SLIPWAY-IN-" + s.BuildBridge
		if out, err := iptables(t, "-I", in, "1", "-j", "ACCEPT"); err != nil {
			t.Fatalf("open the fence: %v: %s", err, out)
		}
		r := p.push("refs/heads/main", "probe again", probeFiles(s.RegistryAddr, "opened", targets...), nil)
		b := p.succeeded(r.Builds[0])
		if out, err := iptables(t, "-D", in, "-j", "ACCEPT"); err != nil {
			t.Fatalf("close the fence: %v: %s", err, out)
		}
		log := s.Log(b.ID)
		for _, target := range viaGateway {
			rig.Contains(t, "build log", log, "probe "+target+" REACHED")
		}
		// 127.0.0.1 is the build's own loopback, never this host's.
		for _, target := range viaLoopback {
			rig.Contains(t, "build log", log, "probe "+target+" BLOCKED")
		}
	})

	t.Run("RUN --network=host is refused", func(t *testing.T) {
		files := map[string]string{"Dockerfile": fmt.Sprintf("FROM %s/library/busybox:latest\nRUN --network=host true\n", s.RegistryAddr)}
		r := p.push("refs/heads/main", "host network", files, nil)
		b := p.waitState(r.Builds[0], model.StatusFailed, 3*time.Minute)
		rig.Contains(t, "build error", b.Error+"\n"+s.Log(b.ID), "network.host")
		t.Logf("refused: %s", b.Error)
	})

	t.Run("network none leaves a build only its loopback", func(t *testing.T) {
		q := newProject(t, s, git, "offline", func(r *model.Repo) { r.Network = model.NetworkNone })
		if q.repo.Network != model.NetworkNone {
			t.Fatalf("registered network = %q, want none", q.repo.Network)
		}
		r := q.push("refs/heads/main", "probe", probeFiles(s.RegistryAddr, "offline", viaGateway[0]), nil)
		b := q.succeeded(r.Builds[0])
		if b.Network != model.NetworkNone {
			t.Errorf("build network = %q, want none", b.Network)
		}
		rig.Contains(t, "build log", s.Log(b.ID), "ifaces=[lo]", "route=[]", "probe "+viaGateway[0]+" BLOCKED")
	})

	t.Run("stop takes the fence and the bridge away", func(t *testing.T) {
		s.Stop()
		for _, chain := range []string{"SLIPWAY-IN-" + s.BuildBridge, "SLIPWAY-FWD-" + s.BuildBridge} {
			if out, err := iptables(t, "-S", chain); err == nil {
				t.Errorf("%s still there after stop:\n%s", chain, out)
			}
		}
		if out, _ := iptables(t, "-S", "INPUT"); strings.Contains(out, "-i "+s.BuildBridge+" ") {
			t.Errorf("INPUT still jumps for %s:\n%s", s.BuildBridge, out)
		}
		if _, err := net.InterfaceByName(s.BuildBridge); err == nil {
			t.Errorf("bridge %s still there after stop", s.BuildBridge)
		}
	})
}

func grepLines(text, prefix string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, prefix); i >= 0 {
			out = append(out, line[i:])
		}
	}
	return strings.Join(out, "\n")
}

// Without the CNI plugins, and without SLIPWAY_BUILD_NETWORK=host, the real
// binary exits 1 at start with one line saying why.
func TestServeExitsWithoutBuildNetwork(t *testing.T) {
	cmd := exec.Command(rig.Binary(t), "serve")
	cmd.Env = append(os.Environ(),
		"SLIPWAY_DATA_DIR="+t.TempDir(), "SLIPWAY_HTTP_ADDR="+rig.FreeAddr(t), "SLIPWAY_REGISTRY_ADDR="+rig.FreeAddr(t),
		"SLIPWAY_CNI_DIR="+t.TempDir(), "SLIPWAY_BUILD_NETWORK=", "PATH="+rig.Root(t)+"/bin:"+os.Getenv("PATH"))
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("slipway serve still running after 30s without CNI plugins")
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if cmd.ProcessState.ExitCode() != 1 || !strings.HasPrefix(last, "slipway: SLIPWAY_BUILD_NETWORK: ") ||
		!strings.Contains(last, "CNI plugin bridge is not in") || !strings.Contains(last, "SLIPWAY_BUILD_NETWORK=host") {
		t.Fatalf("exit %d (%v), last line %q; want exit 1 and one line naming the missing plugin and the host setting\n%s",
			cmd.ProcessState.ExitCode(), err, last, out)
	}
	if strings.Contains(string(out), "buildkitd started") {
		t.Errorf("buildkitd was started:\n%s", out)
	}
}
