package builder_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/e2e/rig"
)

// daemonPid is the pid of the buildkitd whose --root is root, or "" when none
// runs.
func daemonPid(t testing.TB, root string) string {
	t.Helper()
	var found []string
	for _, pid := range processes("--root\x00" + root + "\x00") {
		comm, err := os.ReadFile(filepath.Join("/proc", pid, "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == "buildkitd" {
			found = append(found, pid)
		}
	}
	if len(found) > 1 {
		t.Fatalf("%d buildkitd processes for %s: %v", len(found), root, found)
	}
	if len(found) == 0 {
		return ""
	}
	return found[0]
}

func TestDaemonStopLeavesNoProcess(t *testing.T) {
	d, o := startDaemon(t)
	pid := daemonPid(t, o.Root)
	if pid == "" || !d.Running() {
		t.Fatalf("after StartDaemon: pid %q, Running() = %v; want a buildkitd running", pid, d.Running())
	}
	if err := (builder.Client{Addr: d.Addr()}).Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	start := time.Now()
	d.Stop()
	t.Logf("Stop took %s", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join("/proc", pid)); err == nil {
		t.Errorf("buildkitd %s still in /proc after Stop", pid)
	}
	if left := daemonPid(t, o.Root); left != "" {
		t.Errorf("buildkitd %s runs after Stop", left)
	}
	if d.Running() {
		t.Error("Running() = true after Stop")
	}
}

// TestDaemonRestartsAfterKill kills buildkitd as a crash would and expects
// the supervisor to bring a new one up on the same socket.
func TestDaemonRestartsAfterKill(t *testing.T) {
	d, o := startDaemon(t)
	pid := daemonPid(t, o.Root)
	if pid == "" {
		t.Fatal("no buildkitd after StartDaemon")
	}
	if err := syscall.Kill(atoi(t, pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "a new buildkitd", func() bool {
		p := daemonPid(t, o.Root)
		return p != "" && p != pid
	})
	c := builder.Client{Addr: d.Addr()}
	waitFor(t, 15*time.Second, "the new buildkitd to answer Ping", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		return c.Ping(ctx) == nil
	})
	if !d.Running() {
		t.Error("Running() = false with the new buildkitd up")
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStartDaemonMissingBinary(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var logged syncBuffer
	d, err := builder.StartDaemon(ctx, builder.DaemonOptions{
		Binary: filepath.Join(dir, "no-buildkitd"),
		Root:   filepath.Join(dir, "root"), Socket: filepath.Join(dir, "bk.sock"),
		Logger: slog.New(slog.NewTextHandler(&logged, nil)),
	})
	if err == nil {
		d.Stop()
		t.Fatal("StartDaemon with a missing binary succeeded")
	}
	if !strings.Contains(err.Error(), "start buildkitd") || !strings.Contains(err.Error(), "no-buildkitd") {
		t.Errorf("err = %v, want it to name the binary it could not start", err)
	}
	// The error goes to the caller; a "restarting" log would be a lie.
	if logged.String() != "" {
		t.Errorf("StartDaemon logged:\n%s", logged.String())
	}
}

// TestPingNothingListening needs no daemon: Ping must fail, and promptly,
// when the socket is missing or left behind by a dead daemon.
func TestPingNothingListening(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the socket file after closing, as a killed daemon would.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()

	for name, path := range map[string]string{"Missing": filepath.Join(dir, "none.sock"), "Stale": stale} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			err := builder.Client{Addr: "unix://" + path}.Ping(ctx)
			if err == nil {
				t.Fatal("Ping succeeded with nothing listening")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want it to name %s", err, path)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Ping took %s to fail", took)
			}
		})
	}
}

// TestStartDaemonBadConfig: a buildkitd that exits at once (here on a config
// it cannot parse) must fail StartDaemon promptly, not after the readiness
// limit of restarts, and leave nothing running.
func TestStartDaemonBadConfig(t *testing.T) {
	bin, runc := tool(t, "buildkitd"), tool(t, "runc")
	dir, err := os.MkdirTemp("", "bk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var log syncBuffer
	o := builder.DaemonOptions{
		Binary: bin, Runc: runc,
		Root: filepath.Join(dir, "root"), Socket: filepath.Join(dir, "bk.sock"),
		Config: "not [[ toml\n", Log: &log,
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	start := time.Now()
	d, err := builder.StartDaemon(ctx, o)
	took := time.Since(start)
	if err == nil {
		d.Stop()
		t.Fatal("StartDaemon succeeded with an unparsable config")
	}
	if took > 10*time.Second {
		t.Errorf("StartDaemon took %s to fail", took.Round(time.Millisecond))
	}
	if !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("err = %v, want buildkitd's exit status", err)
	}
	if pid := daemonPid(t, o.Root); pid != "" {
		t.Errorf("buildkitd %s runs after StartDaemon failed", pid)
	}
	rig.Contains(t, "buildkitd output", log.String(), "failed to parse config")
}
