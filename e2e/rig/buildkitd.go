package rig

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
)

// Buildkitd is a buildkitd process of the test's own, with no supervisor:
// the test can kill it with SIGKILL, as a builder machine that crashes, and
// start it again on the same address and root, as an operator brings it
// back. It stops when the test ends.
type Buildkitd struct {
	// Addr is what clients dial: unix://<dir>/buildkitd.sock.
	Addr string
	// LogPath holds the output of every start.
	LogPath string

	t      testing.TB
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	// groups are the process groups of every start: a killed daemon's
	// runc children outlive it there until the test ends.
	groups []int
}

// NewBuildkitd starts a buildkitd on a socket in a fresh directory and
// waits until it answers.
func NewBuildkitd(t testing.TB) *Buildkitd {
	t.Helper()
	// A short directory, not t.TempDir: the socket path must fit in 108
	// bytes whatever the test's name.
	dir, err := os.MkdirTemp("", "bk-")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "buildkitd.toml"), []byte("[worker.oci]\n  gc = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &Buildkitd{Addr: "unix://" + filepath.Join(dir, "buildkitd.sock"), LogPath: filepath.Join(dir, "buildkitd.log"), t: t, dir: dir}
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			t.Logf("buildkitd %s log (tail):\n%s", b.Addr, tailFile(b.LogPath, 4000))
		}
		UnmountUnder(dir)
		_ = os.RemoveAll(dir)
	})
	b.Start()
	return b
}

// Start runs buildkitd on the address and root it had, and waits until it
// answers a ping. It fails the test if the process is running already.
func (b *Buildkitd) Start() {
	b.t.Helper()
	if b.Running() {
		b.t.Fatalf("buildkitd %s is running already", b.Addr)
	}
	logf, err := os.OpenFile(b.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(b.dir, "buildkitd.sock")) // a killed daemon leaves it
	root := filepath.Join(b.dir, "root")
	bin := filepath.Join(Root(b.t), "bin")
	cmd := exec.Command(filepath.Join(bin, "buildkitd"),
		"--root", root, "--addr", b.Addr, "--config", filepath.Join(root, "buildkitd.toml"),
		"--oci-worker=true", "--containerd-worker=false", "--oci-worker-binary", filepath.Join(bin, "runc"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: a test binary that dies takes its daemons along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		b.t.Fatalf("start buildkitd: %v", err)
	}
	b.cmd, b.exited = cmd, make(chan struct{})
	b.groups = append(b.groups, cmd.Process.Pid)
	go func() { _ = cmd.Wait(); logf.Close(); close(b.exited) }()
	b.waitReady(60 * time.Second)
}

func (b *Buildkitd) waitReady(limit time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := builder.Client{Addr: b.Addr}.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-b.exited:
			b.t.Fatalf("buildkitd %s exited before it answered: %v\n%s", b.Addr, err, tailFile(b.LogPath, 4000))
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("buildkitd %s not ready after %s: %v", b.Addr, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Running reports whether the process is up.
func (b *Buildkitd) Running() bool {
	if b.exited == nil {
		return false
	}
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// Pid is the running process's id.
func (b *Buildkitd) Pid() int { return b.cmd.Process.Pid }

// Kill sends SIGKILL to buildkitd alone, as a crash would, and waits until
// it is gone. Its build containers are left to end on their own, as they
// would on a real machine.
func (b *Buildkitd) Kill() {
	b.t.Helper()
	if err := syscall.Kill(b.Pid(), syscall.SIGKILL); err != nil {
		b.t.Fatalf("kill -9 buildkitd %d: %v", b.Pid(), err)
	}
	<-b.exited
}

// stop ends the process gently, so that it unmounts its snapshots, then by
// force, and then what is left in the process groups it ran.
func (b *Buildkitd) stop() {
	if b.Running() {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.exited:
		case <-time.After(20 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.exited
		}
	}
	for _, g := range b.groups {
		_ = syscall.Kill(-g, syscall.SIGKILL)
	}
}

// tailFile is the last n bytes of a file, for failure messages.
func tailFile(path string, n int) string {
	raw, err := os.ReadFile(path) // #nosec G304 -- a log the rig wrote
	if err != nil {
		return err.Error()
	}
	if len(raw) > n {
		raw = raw[len(raw)-n:]
	}
	return string(raw)
}
