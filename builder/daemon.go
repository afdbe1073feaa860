package builder

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DaemonOptions configures a supervised buildkitd.
type DaemonOptions struct {
	// Binary is the buildkitd executable; Runc the OCI runtime it uses.
	Binary string
	Runc   string
	// Root holds BuildKit's state and cache; Socket is its unix socket path.
	Root   string
	Socket string
	// Config is the buildkitd.toml content written under Root.
	Config string
	// Log receives the daemon's own output.
	Log    io.Writer
	Logger *slog.Logger
}

// Daemon is a buildkitd child process that is restarted when it dies.
type Daemon struct {
	opts   DaemonOptions
	cancel context.CancelFunc
	done   chan struct{}
	// firstExit is closed when the first buildkitd process has ended, with
	// firstErr what it ended with: StartDaemon fails on it rather than wait
	// out restarts of a daemon that cannot come up.
	firstExit chan struct{}
	firstErr  error

	mu      sync.Mutex
	running bool
}

// FindBinary looks for name next to the running executable, then on PATH.
func FindBinary(name string) (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found next to slipway or on PATH (run `make build`): %w", name, err)
	}
	return p, nil
}

// StartDaemon starts buildkitd and waits until it answers on its socket.
func StartDaemon(ctx context.Context, o DaemonOptions) (*Daemon, error) {
	if err := os.MkdirAll(o.Root, 0o700); err != nil {
		return nil, fmt.Errorf("buildkit root: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.Root, "buildkitd.toml"), []byte(o.Config), 0o600); err != nil {
		return nil, fmt.Errorf("buildkitd config: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	d := &Daemon{opts: o, cancel: cancel, done: make(chan struct{}), firstExit: make(chan struct{})}
	first := make(chan error, 1)
	go d.supervise(runCtx, first)
	select {
	case err := <-first:
		if err != nil {
			cancel()
			<-d.done
			return nil, err
		}
	case <-ctx.Done():
		cancel()
		<-d.done
		return nil, ctx.Err()
	}
	if err := d.waitReady(ctx, 60*time.Second); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

// Addr is the address clients dial.
func (d *Daemon) Addr() string { return "unix://" + d.opts.Socket }

// Running reports whether the child process is up right now.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running
}

func (d *Daemon) command(ctx context.Context) *exec.Cmd {
	args := []string{
		"--root", d.opts.Root,
		"--addr", d.Addr(),
		"--config", filepath.Join(d.opts.Root, "buildkitd.toml"),
		"--oci-worker=true", "--containerd-worker=false",
	}
	if d.opts.Runc != "" {
		args = append(args, "--oci-worker-binary", d.opts.Runc)
	}
	cmd := exec.CommandContext(ctx, d.opts.Binary, args...) // #nosec G204 -- buildkitd from FindBinary with arguments built here; no shell
	cmd.Stdout, cmd.Stderr = d.opts.Log, d.opts.Log
	cmd.Env = withoutOTel(os.Environ())
	// Pdeathsig takes buildkitd down with Slipway even on kill -9, so no
	// orphan keeps the socket and state directory locked.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	return cmd
}

// withoutOTel is env less the OpenTelemetry variables (OTEL_*). They
// configure Slipway's own traces; buildkitd reads the same ones and would
// export spans of its own to that endpoint, over gRPC unless told
// otherwise, whatever protocol the endpoint speaks.
func withoutOTel(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	return out
}

// supervise runs buildkitd until ctx ends, restarting it with backoff.
func (d *Daemon) supervise(ctx context.Context, first chan<- error) {
	defer close(d.done)
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		_ = os.Remove(d.opts.Socket)
		cmd := d.command(ctx)
		err := cmd.Start()
		if attempt == 0 {
			first <- wrapStart(d.opts.Binary, err)
			if err != nil {
				// StartDaemon returns the error and stops us: no restart.
				return
			}
		}
		if err == nil {
			d.setRunning(true)
			started := time.Now()
			err = cmd.Wait()
			d.setRunning(false)
			if time.Since(started) > time.Minute {
				backoff = time.Second
			}
		}
		if attempt == 0 {
			d.firstErr = err
			close(d.firstExit)
		}
		if ctx.Err() != nil {
			return
		}
		d.logger().Error("buildkitd exited; restarting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func wrapStart(bin string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("start buildkitd %s: %w", bin, err)
}

func (d *Daemon) setRunning(v bool) {
	d.mu.Lock()
	d.running = v
	d.mu.Unlock()
}

func (d *Daemon) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c := Client{Addr: d.Addr()}
	var err error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err = c.Ping(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("buildkitd not ready after %s: %w", limit, err)
		case <-d.firstExit:
			return fmt.Errorf("buildkitd exited before it was ready (its log has why): %w", d.firstErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop terminates buildkitd and waits for it.
func (d *Daemon) Stop() {
	d.cancel()
	<-d.done
}

func (d *Daemon) logger() *slog.Logger {
	if d.opts.Logger != nil {
		return d.opts.Logger
	}
	return slog.Default()
}
