package autotest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/slipway-build/slipway/builder"
)

// idRE is a build id as trigger.ID and model.NewID make them.
var idRE = regexp.MustCompile(`^[0-9a-z]{8,40}$`)

// runc runs the runc binary on the runner's state root.
func (r *Runner) runc(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.Runc, append([]string{"--root", r.runcRoot()}, args...)...) // #nosec G204 -- runc found by builder.FindBinary, with arguments Slipway makes
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("runc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// runContainer runs a container in the foreground until it exits; its
// output goes to out. It is not bound to a context: the container is
// stopped by kill, so that runc is never killed with its container left
// running.
func (r *Runner) runContainer(id, bundle string, out *lineWriter) (int, error) {
	defer out.Close()
	cmd := exec.Command(r.Runc, "--root", r.runcRoot(), "run", "--bundle", bundle, id) // #nosec G204 -- runc found by builder.FindBinary, with arguments Slipway makes
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("runc run %s: %w", id, err)
	}
	return 0, nil
}

// kill sends SIGKILL to every container that still runs.
func (r *Runner) kill(ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		_, _ = r.runc(ctx, "kill", id, "KILL")
	}
}

// deleteContainer kills and deletes a container, whatever its state.
func (r *Runner) deleteContainer(ctx context.Context, id string) {
	_, _ = r.runc(ctx, "kill", id, "KILL")
	if _, err := r.runc(ctx, "delete", "--force", id); err != nil && !strings.Contains(err.Error(), "does not exist") {
		r.logger().Debug("delete test container", "container", id, "err", err)
	}
}

// list names the containers under the runner's runc root.
func (r *Runner) list(ctx context.Context) ([]string, error) {
	if _, err := os.Stat(r.runcRoot()); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	out, err := r.runc(ctx, "list", "--quiet")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, id := range strings.Fields(string(out)) {
		if strings.HasPrefix(id, Prefix) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// writeSpec writes runc's default spec for bundle with change applied.
func (r *Runner) writeSpec(ctx context.Context, bundle string, change func(*specs.Spec) error) error {
	path := filepath.Join(bundle, "config.json")
	_ = os.Remove(path)
	if _, err := r.runc(ctx, "spec", "--bundle", bundle); err != nil {
		return err
	}
	raw, err := os.ReadFile(path) // #nosec G304 -- the spec runc just wrote in the run's own dir
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("runc spec: %w", err)
	}
	spec.Root = &specs.Root{Path: filepath.Join(bundle, "rootfs")}
	if err := change(&spec); err != nil {
		return err
	}
	raw, err = json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}

// specFor runs s as the image and the compose file say, as root unless
// user says otherwise, in the run's network namespace, with the run's
// /etc/hosts and no other host path.
func specFor(s Service, img builder.ImageConfig, hosts, netns string) func(*specs.Spec) error {
	return func(spec *specs.Spec) error {
		args := processArgs(s, img)
		if len(args) == 0 {
			return errors.New("no entrypoint or command to run")
		}
		user, err := parseUser(s.User)
		if err != nil {
			return err
		}
		p := spec.Process
		p.Terminal, p.Args, p.User = false, args, user
		p.Env = append(imageEnv(img.Env), s.Environment...)
		p.Cwd = firstOf(s.WorkingDir, img.WorkingDir, "/")
		spec.Hostname = s.Name
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: hosts, Options: []string{"rbind", "ro"}})
		for i, ns := range spec.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				spec.Linux.Namespaces[i].Path = netns
			}
		}
		return nil
	}
}

// processArgs is what Docker runs: a compose entrypoint drops the image's
// command; a compose command replaces the image's.
func processArgs(s Service, img builder.ImageConfig) []string {
	entry, cmd := img.Entrypoint, img.Cmd
	if s.Entrypoint != nil {
		entry, cmd = s.Entrypoint, nil
	}
	if s.Command != nil {
		cmd = s.Command
	}
	return append(append([]string{}, entry...), cmd...)
}

func imageEnv(env []string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return env
		}
	}
	return append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
}

// parseUser takes a numeric uid[:gid]; names would need the image's
// /etc/passwd.
func parseUser(u string) (specs.User, error) {
	if u == "" {
		return specs.User{}, nil
	}
	uid, gid, _ := strings.Cut(u, ":")
	var out specs.User
	for _, f := range []struct {
		s string
		v *uint32
	}{{uid, &out.UID}, {gid, &out.GID}} {
		if f.s == "" {
			continue
		}
		n, err := strconv.ParseUint(f.s, 10, 32)
		if err != nil {
			return specs.User{}, fmt.Errorf("user %q: only numeric uid[:gid] is supported", u)
		}
		*f.v = uint32(n)
	}
	return out, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// hostsFile maps every service's name to loopback: they share one network
// namespace, so web:8080 is the port web listens on.
func hostsFile(p Plan) []byte {
	names := []string{"localhost"}
	for _, s := range p.Services {
		names = append(names, s.Name)
	}
	return []byte("127.0.0.1\t" + strings.Join(names, " ") + "\n::1\tlocalhost ip6-localhost ip6-loopback\n")
}

func netnsPath(name string) string { return filepath.Join("/var/run/netns", name) }

// netnsAdd makes a network namespace with only loopback, up.
func netnsAdd(ctx context.Context, name string) error {
	if err := ip(ctx, "netns", "add", name); err != nil {
		return err
	}
	return ip(ctx, "-n", name, "link", "set", "lo", "up")
}

func netnsDelete(ctx context.Context, name string) error {
	if _, err := os.Stat(netnsPath(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return ip(ctx, "netns", "delete", name)
}

func ip(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "ip", args...) // #nosec G204 -- fixed subcommands on names Slipway makes
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
