package rig

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/slipway-build/slipway/builder"
)

// The images a Compose file may name, and what stands in for each here.
const (
	// SlipwayImage is Slipway's own image: the binary from Binary runs
	// in its place.
	SlipwayImage = "ghcr.io/slipway-build/slipway"
	natsImage    = "nats"
	// buildkitImage runs as bin/buildkitd, rootful.
	buildkitImage = "moby/buildkit"
)

// slipwayImageEnv is what a Slipway container has before its service's
// own environment: the Dockerfile's data dir, and the HTTP address the
// configuration defaults to, spelt out so that the rig moves it to a port
// of its own.
var slipwayImageEnv = map[string]string{"SLIPWAY_DATA_DIR": "/var/lib/slipway", "SLIPWAY_HTTP_ADDR": ":8080"}

// buildkitDefaultRoot is buildkitd's state directory in the rootful image.
const buildkitDefaultRoot = "/var/lib/buildkit"

// LoadCompose reads a Compose file as `docker compose` does with env as
// its .env, strictly: the compose-spec schema refuses keys it does not
// know, and a required variable left empty fails with its message.
func LoadCompose(ctx context.Context, path string, env map[string]string) (*types.Project, error) {
	content, err := os.ReadFile(path) // #nosec G304 -- the test's own Compose file
	if err != nil {
		return nil, fmt.Errorf("compose file: %w", err)
	}
	return LoadComposeContent(ctx, path, content, env)
}

// LoadComposeContent is LoadCompose of content, as if it were at path.
func LoadComposeContent(ctx context.Context, path string, content []byte, env map[string]string) (*types.Project, error) {
	p, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: content}},
		Environment: env,
	}, func(o *loader.Options) {
		// Validation is compose-go's default; said here so that it stays.
		o.SkipValidation = false
		o.SkipConsistencyCheck = false
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return p, nil
}

// ReadDotEnv reads an .env file as Compose does.
func ReadDotEnv(path string) (map[string]string, error) {
	env, err := dotenv.Read(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return env, nil
}

// ComposeOptions are what the test adds to a Compose topology.
type ComposeOptions struct {
	// Env is added to every Slipway process's environment, after the
	// service's own: settings only a test on loopback needs.
	Env []string
}

// Compose is a Compose project run as processes on loopback: every
// <service>:<port> the file names is 127.0.0.1 and a port of the test's,
// every volume a directory of its own.
type Compose struct {
	t       testing.TB
	project *types.Project
	opts    ComposeOptions

	mu    sync.Mutex
	ports map[string]map[uint32]int // service → container port → loopback port

	procs map[string][]*composeProc // service → its replicas
}

// composeProc is one replica of a service as it was started.
type composeProc struct {
	service string
	replica int
	env     []string          // a Slipway process's environment, rewritten
	volumes map[string]string // container path → directory
	log     string            // log file
	cmd     *exec.Cmd
	exited  chan struct{}
	health  func(context.Context) error
}

// scope is where the process's own values are read, as its container sees
// them.
func (p *composeProc) scope() scope {
	return scope{service: p.service, replica: p.replica, volumes: p.volumes}
}

// StartCompose starts every service of p in the order its depends_on
// gives, waiting for each one's healthcheck (and a Slipway process's
// /readyz) before starting what depends on it. Everything stops when the
// test ends, last started first.
func StartCompose(t testing.TB, p *types.Project, o ComposeOptions) *Compose {
	t.Helper()
	c := &Compose{t: t, project: p, opts: o, ports: map[string]map[uint32]int{}, procs: map[string][]*composeProc{}}
	for _, name := range startOrder(t, p) {
		svc := p.Services[name]
		for i := 0; i < replicas(svc); i++ {
			proc := c.start(svc, i)
			c.procs[name] = append(c.procs[name], proc)
		}
		for _, proc := range c.procs[name] {
			c.waitHealthy(svc, proc)
		}
	}
	return c
}

// startOrder lists the services so that each comes after what it depends
// on; ties go by name, so that runs are alike.
func startOrder(t testing.TB, p *types.Project) []string {
	t.Helper()
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string)
	visit = func(name string, path []string) {
		switch state[name] {
		case 1:
			t.Fatalf("compose: depends_on cycle: %s", strings.Join(append(path, name), " → "))
		case 2:
			return
		}
		svc, ok := p.Services[name]
		if !ok {
			t.Fatalf("compose: %s depends on %s, which is no service", path[len(path)-1], name)
		}
		state[name] = 1
		deps := svc.GetDependencies()
		sort.Strings(deps)
		for _, d := range deps {
			visit(d, append(path, name))
		}
		state[name] = 2
		order = append(order, name)
	}
	names := p.ServiceNames()
	sort.Strings(names)
	for _, n := range names {
		visit(n, nil)
	}
	return order
}

func replicas(svc types.ServiceConfig) int {
	if svc.Deploy != nil && svc.Deploy.Replicas != nil {
		return *svc.Deploy.Replicas
	}
	return 1
}

// Addr is where a service's container port answers here (127.0.0.1:port).
func (c *Compose) Addr(service string, port uint32) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port(service, port)))
}

// port allocates (once) the loopback port standing in for a service's
// container port.
func (c *Compose) port(service string, port uint32) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ports[service] == nil {
		c.ports[service] = map[uint32]int{}
	}
	if p, ok := c.ports[service][port]; ok {
		return p
	}
	_, text, _ := net.SplitHostPort(FreeAddr(c.t))
	p, _ := strconv.Atoi(text)
	c.ports[service][port] = p
	return p
}

// Env is the value a service's first process was given for key, after the
// rewriting.
func (c *Compose) Env(service, key string) string {
	procs := c.procs[service]
	if len(procs) == 0 {
		c.t.Fatalf("compose: no process of service %s", service)
	}
	for _, e := range procs[0].env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}

// Log is what every process of a service wrote.
func (c *Compose) Log(service string) string {
	var b strings.Builder
	for _, p := range c.procs[service] {
		raw, _ := os.ReadFile(p.log)
		b.Write(raw)
	}
	return b.String()
}

// Slipway is an API client of a Slipway service (its first process) that
// the test did not start itself: token is the API token, registry the
// registry its images go to, buildkit the BuildKit PushBusybox builds on.
func (c *Compose) Slipway(service, token, registry, buildkit string) *Slipway {
	return &Slipway{t: c.t, HTTPAddr: c.Env(service, "SLIPWAY_HTTP_ADDR"), RegistryAddr: registry, Token: token,
		DataDir: c.Env(service, "SLIPWAY_DATA_DIR"), LogPath: c.procs[service][0].log, base: []string{"SLIPWAY_BUILDKIT_ADDR=" + buildkit}}
}

func (c *Compose) start(svc types.ServiceConfig, replica int) *composeProc {
	c.t.Helper()
	proc := &composeProc{service: svc.Name, replica: replica, volumes: c.volumes(svc)}
	switch imageName(svc.Image) {
	case SlipwayImage:
		c.startSlipway(svc, proc)
	case natsImage:
		c.startNATS(svc, proc)
	case buildkitImage:
		c.startBuildkitd(svc, proc)
	default:
		c.t.Fatalf("compose: service %s: the rig does not know how to run image %s", svc.Name, svc.Image)
	}
	return proc
}

// imageName is an image reference without its tag.
func imageName(ref string) string {
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[:colon]
	}
	return ref
}

// volumes gives each volume of the service (named, anonymous or bind) a
// directory of its own, by the path it is mounted at. Not t.TempDir: the
// data dir must not hold a comma (runc) and buildkitd leaves mounts.
func (c *Compose) volumes(svc types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for _, v := range svc.Volumes {
		dir, err := os.MkdirTemp("", "compose-"+svc.Name+"-")
		if err != nil {
			c.t.Fatal(err)
		}
		c.t.Cleanup(func() { UnmountUnder(dir); _ = os.RemoveAll(dir) })
		out[v.Target] = dir
	}
	return out
}

// onVolume is path with its volume's mount point replaced by the volume's
// directory; ok is false when no volume holds path.
func onVolume(volumes map[string]string, path string) (string, bool) {
	targets := make([]string, 0, len(volumes))
	for t := range volumes {
		targets = append(targets, t)
	}
	// The deepest mount point wins, as in a container.
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	for _, t := range targets {
		if path == t {
			return volumes[t], true
		}
		if rest, ok := strings.CutPrefix(path, strings.TrimSuffix(t, "/")+"/"); ok {
			return filepath.Join(volumes[t], rest), true
		}
	}
	return path, false
}

// hostPort finds host:port in a value; the character before the host, if
// any, is one that cannot be part of a name.
var hostPort = regexp.MustCompile(`(^|[^A-Za-z0-9_.-])([A-Za-z0-9][A-Za-z0-9_.-]*|\[::\]):([0-9]{1,5})`)

// listenOnly is a bare listen address such as ":8080".
var listenOnly = regexp.MustCompile(`^:([0-9]{1,5})$`)

// scope is where a value is read: which process, and what localhost
// means in it.
type scope struct {
	service string
	replica int
	volumes map[string]string // container path → directory
	// published: localhost:<port> is this machine, where ports are
	// published (addresses users are given, as SLIPWAY_PUBLIC_URL);
	// otherwise the container itself (healthchecks, listen addresses).
	published bool
}

// self is the key of the process's own ports: a second replica of a
// service listens on ports of its own.
func (s scope) self() string {
	if s.replica == 0 {
		return s.service
	}
	return fmt.Sprintf("%s#%d", s.service, s.replica)
}

// rewrite turns a value, as its container sees it, into the same on
// loopback here: <service>:<port> and listen addresses (":8080",
// 0.0.0.0:1234) become 127.0.0.1 and the port standing in for it; a path on
// a volume becomes the volume's directory.
func (c *Compose) rewrite(s scope, value string) string {
	if m := listenOnly.FindStringSubmatch(value); m != nil {
		return c.Addr(s.self(), containerPort(m[1]))
	}
	if v, ok := onVolume(s.volumes, value); ok {
		return v
	}
	return hostPort.ReplaceAllStringFunc(value, func(match string) string {
		m := hostPort.FindStringSubmatch(match)
		prefix, host, port := m[1], m[2], containerPort(m[3])
		switch {
		case host == "0.0.0.0" || host == "[::]":
			return prefix + c.Addr(s.self(), port)
		case (host == "localhost" || host == "127.0.0.1") && !s.published:
			return prefix + net.JoinHostPort(host, strconv.Itoa(c.port(s.self(), port)))
		case host == "localhost" || host == "127.0.0.1":
			svc, target, ok := c.published(port)
			if !ok {
				return match
			}
			return prefix + net.JoinHostPort(host, strconv.Itoa(c.port(svc, target)))
		}
		if _, ok := c.project.Services[host]; ok {
			return prefix + c.Addr(host, port)
		}
		return match
	})
}

func containerPort(text string) uint32 {
	n, _ := strconv.ParseUint(text, 10, 16)
	return uint32(n)
}

// published is the service and container port behind a port published on
// the machine.
func (c *Compose) published(hostPort uint32) (string, uint32, bool) {
	for name, svc := range c.project.Services {
		for _, p := range svc.Ports {
			if p.Published == strconv.Itoa(int(hostPort)) {
				return name, p.Target, true
			}
		}
	}
	return "", 0, false
}

// startSlipway runs the service's command with the slipway binary, with
// the service's environment rewritten and nothing of the test's own but
// a system PATH and opts.Env.
func (c *Compose) startSlipway(svc types.ServiceConfig, proc *composeProc) {
	t := c.t
	t.Helper()
	if len(svc.Entrypoint) > 0 {
		t.Fatalf("compose: service %s overrides the Slipway image's entrypoint (%q); the rig runs the slipway binary", svc.Name, svc.Entrypoint)
	}
	env := map[string]string{}
	for k, v := range slipwayImageEnv {
		env[k] = v
	}
	for k, v := range svc.Environment {
		if v == nil {
			t.Fatalf("compose: service %s: %s has no value", svc.Name, k)
		}
		env[k] = *v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// No bin/ on PATH: the Slipway image has neither runc nor buildkitd,
	// and its worker must start without them.
	proc.env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, k := range keys {
		proc.env = append(proc.env, k+"="+c.rewrite(scope{service: svc.Name, replica: proc.replica, volumes: proc.volumes, published: true}, env[k]))
	}
	proc.env = append(proc.env, c.opts.Env...)
	dataDir := c.procEnv(proc, "SLIPWAY_DATA_DIR")
	if _, ok := onVolume(reverse(proc.volumes), dataDir); !ok {
		t.Fatalf("compose: service %s keeps its data (SLIPWAY_DATA_DIR=%s) on no volume: it would be lost with the container", svc.Name, env["SLIPWAY_DATA_DIR"])
	}
	args := slices.Clone([]string(svc.Command))
	proc.log = filepath.Join(t.TempDir(), fmt.Sprintf("%s-%d.log", svc.Name, proc.replica))
	cmd := exec.Command(Binary(t), args...) // #nosec G204 -- the test's own binary and Compose file
	cmd.Env = proc.env
	c.run(proc, cmd)
	httpAddr := c.procEnv(proc, "SLIPWAY_HTTP_ADDR")
	proc.health = func(ctx context.Context) error { return httpOK(ctx, "http://"+httpAddr+"/readyz") }
}

// reverse maps each volume's directory to itself, to ask whether a
// rewritten path is on one.
func reverse(volumes map[string]string) map[string]string {
	out := map[string]string{}
	for _, dir := range volumes {
		out[dir] = dir
	}
	return out
}

func (c *Compose) procEnv(proc *composeProc, key string) string {
	for _, e := range proc.env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}

// run starts cmd with its output in proc.log, and stops it (SIGTERM, then
// SIGKILL after 30 s) when the test ends.
func (c *Compose) run(proc *composeProc, cmd *exec.Cmd) {
	t := c.t
	t.Helper()
	logFile, err := os.Create(proc.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// No process outlives a test that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("compose: start %s: %v", proc.service, err)
	}
	proc.cmd, proc.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(proc.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-proc.exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-proc.exited
		}
		for _, dir := range proc.volumes {
			UnmountUnder(dir)
		}
		if t.Failed() {
			raw, _ := os.ReadFile(proc.log)
			if len(raw) > 16000 {
				raw = raw[len(raw)-16000:]
			}
			t.Logf("%s[%d] log (%s, tail):\n%s", proc.service, proc.replica, proc.log, raw)
		}
	})
}

// natsFlags are the nats-server flags the rig understands; the value says
// whether the flag takes one.
var natsFlags = map[string]bool{
	"-js": false, "--js": false, "-jetstream": false, "--jetstream": false,
	"-sd": true, "--sd": true, "-store_dir": true, "--store_dir": true,
	"-m": true, "--m": true, "-http_port": true, "--http_port": true,
	"-p": true, "--p": true, "-port": true, "--port": true,
}

// startNATS runs nats-server in this process with the service's command
// line, its ports and store directory made loopback ones; a flag the rig
// does not know fails the test rather than be dropped.
func (c *Compose) startNATS(svc types.ServiceConfig, proc *composeProc) {
	t := c.t
	t.Helper()
	args := slices.Clone([]string(svc.Command))
	if len(args) > 0 && args[0] == "nats-server" {
		args = args[1:]
	}
	clientPort := uint32(4222)
	var out []string
	for i := 0; i < len(args); i++ {
		flagName, value, inline := strings.Cut(args[i], "=")
		takes, known := natsFlags[flagName]
		if !known {
			t.Fatalf("compose: service %s: nats-server flag %q is unknown to the rig", svc.Name, args[i])
		}
		if !takes {
			out = append(out, flagName)
			continue
		}
		if !inline {
			if i+1 == len(args) {
				t.Fatalf("compose: service %s: %s needs a value", svc.Name, flagName)
			}
			i++
			value = args[i]
		}
		switch strings.TrimLeft(flagName, "-") {
		case "sd", "store_dir":
			dir, ok := onVolume(proc.volumes, value)
			if !ok {
				t.Fatalf("compose: service %s: the JetStream store %s is on no volume: it would be lost with the container", svc.Name, value)
			}
			value = dir
		case "m", "http_port":
			value = strconv.Itoa(c.port(proc.scope().self(), containerPort(value)))
		case "p", "port":
			clientPort = containerPort(value)
			continue
		}
		out = append(out, flagName, value)
	}
	out = append(out, "-a", "127.0.0.1", "-p", strconv.Itoa(c.port(proc.scope().self(), clientPort)))
	opts, err := server.ConfigureOptions(flag.NewFlagSet("nats-server", flag.ContinueOnError), out, func() {}, func() {}, func() {})
	if err != nil {
		t.Fatalf("compose: service %s: nats-server %q: %v", svc.Name, out, err)
	}
	opts.NoSigs = true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("compose: service %s: %v", svc.Name, err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatalf("compose: service %s: nats-server not ready after 30s", svc.Name)
	}
	proc.exited = make(chan struct{})
	proc.health = func(context.Context) error { return nil }
}

// startBuildkitd runs bin/buildkitd with the service's command line: its
// --addr on loopback, its --config from the project's configs (rewritten
// like everything else), its state on the volume at its root.
func (c *Compose) startBuildkitd(svc types.ServiceConfig, proc *composeProc) {
	t := c.t
	t.Helper()
	if strings.HasSuffix(svc.Image, "-rootless") {
		t.Fatalf("compose: service %s: the rig runs rootful buildkitd only, not %s", svc.Name, svc.Image)
	}
	configs := c.configFiles(svc, proc)
	root := buildkitDefaultRoot
	var args, addrs []string
	cmdline := []string(svc.Command)
	for i := 0; i < len(cmdline); i++ {
		flagName, value, inline := strings.Cut(cmdline[i], "=")
		if flagName == "--debug" {
			args = append(args, flagName)
			continue
		}
		if flagName != "--addr" && flagName != "--config" && flagName != "--root" {
			t.Fatalf("compose: service %s: buildkitd flag %q is unknown to the rig", svc.Name, cmdline[i])
		}
		if !inline {
			if i+1 == len(cmdline) {
				t.Fatalf("compose: service %s: %s needs a value", svc.Name, flagName)
			}
			i++
			value = cmdline[i]
		}
		switch flagName {
		case "--addr":
			if !strings.HasPrefix(value, "tcp://") {
				t.Fatalf("compose: service %s: --addr %s: other services reach buildkitd over TCP only", svc.Name, value)
			}
			addr := c.rewrite(proc.scope(), value)
			addrs = append(addrs, addr)
			args = append(args, "--addr", addr)
		case "--config":
			file, ok := configs[value]
			if !ok {
				t.Fatalf("compose: service %s: --config %s is no config the service mounts", svc.Name, value)
			}
			args = append(args, "--config", file)
		case "--root":
			root = value
		}
	}
	dir, ok := onVolume(proc.volumes, root)
	if !ok {
		t.Fatalf("compose: service %s: buildkitd's state %s is on no volume: its cache would be lost with the container", svc.Name, root)
	}
	if len(addrs) == 0 {
		t.Fatalf("compose: service %s: buildkitd listens on no TCP --addr; the workers cannot reach it", svc.Name)
	}
	bin := filepath.Join(Root(t), "bin")
	args = append(args, "--root", dir, "--oci-worker=true", "--containerd-worker=false",
		"--oci-worker-binary", filepath.Join(bin, "runc"))
	proc.log = filepath.Join(t.TempDir(), svc.Name+".log")
	cmd := exec.Command(filepath.Join(bin, "buildkitd"), args...) // #nosec G204 -- the rig's buildkitd with the test's Compose file
	cmd.Env = []string{"PATH=" + bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	c.run(proc, cmd)
	addr := addrs[0]
	proc.health = func(ctx context.Context) error { return builder.Client{Addr: addr}.Ping(ctx) }
}

// configFiles writes the configs a service mounts, by their target path;
// their content is rewritten like the environment.
func (c *Compose) configFiles(svc types.ServiceConfig, proc *composeProc) map[string]string {
	out := map[string]string{}
	dir := c.t.TempDir()
	for i, ref := range svc.Configs {
		cfg, ok := c.project.Configs[ref.Source]
		if !ok {
			c.t.Fatalf("compose: service %s mounts config %s, which the project lacks", svc.Name, ref.Source)
		}
		if cfg.Content == "" {
			c.t.Fatalf("compose: config %s: the rig reads inline content only", ref.Source)
		}
		target := ref.Target
		if target == "" {
			target = "/" + ref.Source
		}
		path := filepath.Join(dir, strconv.Itoa(i)+"-"+filepath.Base(target))
		if err := os.WriteFile(path, []byte(c.rewriteText(proc.scope(), cfg.Content)), 0o600); err != nil {
			c.t.Fatal(err)
		}
		out[target] = path
	}
	return out
}

// rewriteText rewrites the service addresses in a file's text.
func (c *Compose) rewriteText(s scope, text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = c.rewrite(s, l)
	}
	return strings.Join(lines, "\n")
}

// waitHealthy waits until the process answers its own readiness check and
// the service's healthcheck passes, as depends_on's service_healthy waits.
func (c *Compose) waitHealthy(svc types.ServiceConfig, proc *composeProc) {
	t := c.t
	t.Helper()
	check := c.healthcheck(svc, proc)
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-proc.exited:
			if proc.cmd != nil {
				t.Fatalf("compose: service %s exited before it was healthy", svc.Name)
			}
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		last = proc.health(ctx)
		if last == nil {
			last = check(ctx)
		}
		cancel()
		if last == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("compose: service %s not healthy after 2m: %v", svc.Name, last)
}

// healthcheck is the service's Compose healthcheck as the rig runs it:
// the slipway binary for Slipway's own command, an HTTP GET for wget or
// curl, a ping for buildctl.
func (c *Compose) healthcheck(svc types.ServiceConfig, proc *composeProc) func(context.Context) error {
	hc := svc.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return func(context.Context) error { return nil }
	}
	if hc.Test[0] != "CMD" || len(hc.Test) < 2 {
		c.t.Fatalf("compose: service %s: healthcheck %q: the rig runs the CMD form only", svc.Name, hc.Test)
	}
	args := []string(hc.Test[1:])
	switch filepath.Base(args[0]) {
	case "slipway":
		return func(ctx context.Context) error {
			cmd := exec.CommandContext(ctx, Binary(c.t), args[1:]...) // #nosec G204 -- the test's own binary and Compose file
			cmd.Env = proc.env
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("healthcheck %q: %w: %s", args, err, out)
			}
			return nil
		}
	case "wget", "curl":
		for _, a := range args[1:] {
			if strings.HasPrefix(a, "http://") {
				url := c.rewrite(proc.scope(), a)
				return func(ctx context.Context) error { return httpOK(ctx, url) }
			}
		}
	case "buildctl":
		if len(args) == 5 && args[1] == "--addr" && args[3] == "debug" && args[4] == "workers" {
			addr := c.rewrite(proc.scope(), args[2])
			return func(ctx context.Context) error { return builder.Client{Addr: addr}.Ping(ctx) }
		}
	}
	c.t.Fatalf("compose: service %s: the rig cannot run healthcheck %q", svc.Name, hc.Test)
	return nil
}

// httpOK GETs url and wants a 2xx answer.
func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, body)
	}
	return nil
}
