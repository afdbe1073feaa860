package rig

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/model"
)

// Root is the module's root directory.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// sharedSecretKey seals secrets in every process started on one NATS: 32
// bytes of 0x5a, a test key only.
const sharedSecretKey = "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo="

var (
	buildOnce sync.Once
	binPath   string
	binErr    error
	pluginDir string
)

// Binary builds cmd/slipway once per test process and checks that buildkitd
// and runc, which `make build` puts in bin/, are there, and the CNI plugins
// in bin/cni or a cni/ on PATH. A missing part fails the test: these tests
// never skip.
func Binary(t testing.TB) string {
	t.Helper()
	root := Root(t)
	for _, tool := range []string{"buildkitd", "runc"} {
		if _, err := os.Stat(filepath.Join(root, "bin", tool)); err != nil {
			t.Fatalf("bin/%s is missing: run `make build` (make test does it): %v", tool, err)
		}
	}
	buildOnce.Do(func() {
		if pluginDir, binErr = cniDir(root); binErr != nil {
			binErr = fmt.Errorf("bin/cni is missing: run `make build` (make test does it): %w", binErr)
			return
		}
		dir, err := os.MkdirTemp("", "slipway-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "slipway")
		if prebuilt := os.Getenv("SLIPWAY_BENCH_BINARY"); prebuilt != "" {
			// A benchmark measures an older Slipway against today's
			// rig: the binary is that Slipway's, built beforehand.
			binPath = prebuilt
			return
		}
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/slipway")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/slipway: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// FreeAddr returns a loopback address with a port nobody listens on now,
// below the ephemeral range (see pickPort).
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", pickPort(t))
}

// Slipway is a `slipway serve` process.
type Slipway struct {
	t            testing.TB
	DataDir      string
	HTTPAddr     string
	RegistryAddr string
	Token        string
	Env          []string
	LogPath      string
	cmd          *exec.Cmd
	exited       chan struct{}
	role         string
	base         []string // environment every start of this process gets
	// BuildBridge and BuildSubnet are this process's build network.
	BuildBridge string
	BuildSubnet netip.Prefix
}

// Options for StartSlipway; zero values pick fresh ports and directories.
type Options struct {
	// Role is serve (the default), webhook, api or worker.
	Role         string
	DataDir      string
	HTTPAddr     string
	RegistryAddr string
	// ExternalRegistry turns the embedded registry off; images go to this
	// registry instead.
	ExternalRegistry string
	// NATSURL points the process at a shared NATS instead of its own;
	// NATSCreds is the credentials file it connects with, if it needs one.
	NATSURL   string
	NATSCreds string
	// ListenAll has the API and the embedded registry listen on every
	// address, so that only the build network's fence keeps builds off
	// them; HTTPAddr and RegistryAddr stay on loopback for clients.
	ListenAll bool
	Env       []string
}

// StartSlipway runs `slipway serve` and waits until /readyz says ready.
func StartSlipway(t testing.TB, o Options) *Slipway {
	t.Helper()
	bin := Binary(t)
	s := &Slipway{t: t, DataDir: o.DataDir, HTTPAddr: o.HTTPAddr, RegistryAddr: o.RegistryAddr, Token: "test-token-0123456789abcdef0123456789", Env: o.Env, role: o.Role}
	if s.role == "" {
		s.role = "serve"
	}
	registryEnv := ""
	if o.ExternalRegistry != "" {
		s.RegistryAddr, registryEnv = o.ExternalRegistry, "off"
	}
	if o.NATSURL != "" {
		// Processes on one NATS share the key sealing repositories'
		// secrets; a key file is made only with the embedded NATS.
		s.base = append(s.base, "SLIPWAY_NATS_URL="+o.NATSURL, "SLIPWAY_SECRET_KEY="+sharedSecretKey)
	}
	if o.NATSCreds != "" {
		s.base = append(s.base, "SLIPWAY_NATS_CREDS="+o.NATSCreds)
	}
	if s.DataDir == "" {
		// Not t.TempDir: a subtest's name may hold a comma, which runc
		// refuses in the build network's namespace paths.
		dir, err := os.MkdirTemp("", "slipway-data-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { UnmountUnder(dir); _ = os.RemoveAll(dir) })
		s.DataDir = dir
	}
	if s.HTTPAddr == "" {
		s.HTTPAddr = FreeAddr(t)
	}
	if s.RegistryAddr == "" {
		s.RegistryAddr = FreeAddr(t)
	}
	if registryEnv == "" {
		registryEnv = s.RegistryAddr
		// The embedded registry wants a token; the bootstrap API token
		// is its site admin.
		Login(s.RegistryAddr, "admin", s.Token)
	}
	if o.ListenAll {
		registryEnv = anyAddr(t, s.RegistryAddr)
		s.base = append(s.base, "SLIPWAY_HTTP_ADDR="+anyAddr(t, s.HTTPAddr))
	}
	s.base = append(s.base, "SLIPWAY_REGISTRY_ADDR="+registryEnv)
	// Registered before the process's own cleanup, so it runs after it.
	s.BuildBridge, s.BuildSubnet = claimBuildNet(t)
	s.base = append(s.base, "SLIPWAY_BUILD_BRIDGE="+s.BuildBridge, "SLIPWAY_BUILD_SUBNET="+s.BuildSubnet.String(),
		"SLIPWAY_CNI_DIR="+pluginDir)
	s.start(bin)
	return s
}

// anyAddr is addr's port on every address.
func anyAddr(t testing.TB, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return net.JoinHostPort("0.0.0.0", port)
}

// BuildGateway is the build bridge's address on this host, the one a
// build's default route points at.
func (s *Slipway) BuildGateway() netip.Addr { return s.BuildSubnet.Addr().Next() }

func (s *Slipway) start(bin string) {
	t := s.t
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), "slipway-*.log")
	if err != nil {
		t.Fatal(err)
	}
	s.LogPath = logFile.Name()
	cmd := exec.Command(bin, s.role)
	cmd.Env = append(os.Environ(),
		"PATH="+filepath.Join(Root(t), "bin")+":"+os.Getenv("PATH"),
		"SLIPWAY_DATA_DIR="+s.DataDir,
		"SLIPWAY_HTTP_ADDR="+s.HTTPAddr,
		"SLIPWAY_API_TOKEN="+s.Token,
		"SLIPWAY_PUBLIC_URL=http://"+s.HTTPAddr,
		"SLIPWAY_LOG_LEVEL=debug",
		// The suite's Git servers, host API servers, registries and deploy
		// receivers all listen on loopback, which the outbound guard
		// refuses unless opened.
		"SLIPWAY_OUTBOUND_ALLOW_CIDRS=127.0.0.0/8",
	)
	cmd.Env = append(cmd.Env, s.base...)
	cmd.Env = append(cmd.Env, s.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start slipway: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(s.exited) }()
	t.Cleanup(func() {
		s.shutdown()
		s.checkResolved()
		if t.Failed() {
			s.dumpLog()
		}
	})
	s.waitReady(90 * time.Second)
}

// resolvedRE finds a name Slipway asked the machine's DNS server about, as
// Go's resolver words its errors: "lookup api.github.com on 10.0.0.53:53".
var resolvedRE = regexp.MustCompile(`lookup ([^ ]+) on ([^ ]+:53)`)

// checkResolved fails the test when Slipway sent a DNS query off the
// machine: tests keep their traffic on loopback, so a repository with a
// token needs an APIURL on a local stand-in (StartHostAPI), not the real
// host's API.
func (s *Slipway) checkResolved() {
	raw, err := os.ReadFile(s.LogPath)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, m := range resolvedRE.FindAllStringSubmatch(string(raw), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			s.t.Errorf("slipway looked up %s through the DNS server at %s: tests must keep their traffic on loopback (give the repository an APIURL on rig.StartHostAPI)", m[1], m[2])
		}
	}
}

func (s *Slipway) waitReady(limit time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.dumpLog()
			s.t.Fatalf("slipway exited before it was ready")
		default:
		}
		resp, err := http.Get(s.URL() + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = string(body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.dumpLog()
	s.t.Fatalf("slipway not ready after %s: %s", limit, last)
}

func (s *Slipway) dumpLog() {
	raw, _ := os.ReadFile(s.LogPath)
	if len(raw) > 20000 {
		raw = raw[len(raw)-20000:]
	}
	s.t.Logf("slipway log (%s, tail):\n%s", s.LogPath, raw)
}

// URL is the HTTP base address.
func (s *Slipway) URL() string { return "http://" + s.HTTPAddr }

// Stop sends SIGTERM and waits for a clean exit.
func (s *Slipway) Stop() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			s.t.Errorf("slipway exited with code %d after SIGTERM", code)
		}
	case <-time.After(60 * time.Second):
		s.t.Errorf("slipway did not stop within 60s of SIGTERM")
		s.Kill()
	}
}

// shutdown stops the process at the end of a test: gently, so buildkitd
// unmounts its snapshots, then by force; mounts a crash left behind are
// detached so the data dir can be removed.
func (s *Slipway) shutdown() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.Kill()
	}
	UnmountUnder(s.DataDir)
}

// UnmountUnder detaches every mount below dir, deepest first.
func UnmountUnder(dir string) {
	raw, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			points = append(points, f[1])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// Kill ends the process at once, as a crash would (kill -9).
func (s *Slipway) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Pid is the process id.
func (s *Slipway) Pid() int { return s.cmd.Process.Pid }

// Restart starts a new process on the same data dir and ports.
func (s *Slipway) Restart(env ...string) {
	s.t.Helper()
	s.Env = env
	s.start(Binary(s.t))
}

// Do calls the API; it returns the status code and decodes JSON into out.
func (s *Slipway) Do(method, path string, body, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if s, ok := out.(*string); ok {
			*s = string(raw)
		} else if err := json.Unmarshal(raw, out); err != nil && resp.StatusCode < 300 {
			panic(fmt.Sprintf("decode %s %s: %v: %s", method, path, err, raw))
		}
	}
	return resp.StatusCode
}

// Builds lists the builds of a repository, or every build when repoID is
// empty, newest first: every page (the API answers 50 at a time unless
// asked for more).
func (s *Slipway) Builds(repoID string) []model.Build {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bs, err := api.Client{BaseURL: s.URL(), Token: s.Token}.Builds(ctx, repoID)
	if err != nil {
		s.t.Fatalf("list builds of %q: %v", repoID, err)
	}
	return bs
}

// Build returns a build by id.
func (s *Slipway) Build(id string) model.Build {
	s.t.Helper()
	var b model.Build
	if code := s.Do("GET", "/api/v1/builds/"+id, nil, &b); code != http.StatusOK {
		s.t.Fatalf("GET build %s: HTTP %d", id, code)
	}
	return b
}

// WaitBuild polls a build until it is finished or limit passes.
func (s *Slipway) WaitBuild(id string, limit time.Duration) model.Build {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		b := s.Build(id)
		if model.Terminal(b.Status) {
			return b
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("build %s still %s after %s (error %q)", id, b.Status, limit, b.Error)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Log returns a build's log.
func (s *Slipway) Log(id string) string {
	s.t.Helper()
	var out string
	if code := s.Do("GET", "/api/v1/builds/"+id+"/log", nil, &out); code != http.StatusOK {
		s.t.Fatalf("GET log %s: HTTP %d: %s", id, code, out)
	}
	return out
}

// BuildkitAddr is the BuildKit this Slipway uses: the one it was given
// (the first of a pool's list), or the one it started.
func (s *Slipway) BuildkitAddr() string {
	for _, e := range append(append([]string{}, s.base...), s.Env...) {
		if v, ok := strings.CutPrefix(e, "SLIPWAY_BUILDKIT_ADDR="); ok {
			first, _, _ := strings.Cut(v, ",")
			return strings.TrimSpace(first)
		}
	}
	return "unix://" + filepath.Join(s.DataDir, "buildkitd.sock")
}

// PushBusybox puts a busybox base image at <registry>/library/busybox:latest,
// built FROM scratch around Debian's static busybox: builds here have no
// internet. With several platforms (linux/amd64, linux/arm64) it is a
// multi-platform index; arm64 steps run under qemu's binfmt handler, which
// `make deps` registers.
//
// The image is public, as Docker Hub's library is: organization library
// lists it, so that every organization's builds may pull it.
func (s *Slipway) PushBusybox(platforms ...string) string {
	s.t.Helper()
	ref := PushBusybox(s.t, s.BuildkitAddr(), s.RegistryAddr, platforms...)
	if code := s.Do("POST", "/api/v1/orgs", map[string]any{"name": "library", "owners": []string{"admin"}}, nil); code != http.StatusCreated && code != http.StatusConflict {
		s.t.Fatalf("create organization library: HTTP %d", code)
	}
	if code := s.Do("PATCH", "/api/v1/orgs/library", map[string]any{"public_images": []string{"library/busybox"}}, nil); code != http.StatusOK {
		s.t.Fatalf("make library/busybox public: HTTP %d", code)
	}
	return ref
}

// PushBusybox builds the busybox base image described at Slipway.PushBusybox
// on the BuildKit at buildkitAddr and pushes it to registryAddr, for tests
// that run BuildKit and a registry without a Slipway.
func PushBusybox(t testing.TB, buildkitAddr, registryAddr string, platforms ...string) string {
	t.Helper()
	dir := t.TempDir()
	bins := map[string]string{"amd64": "/bin/busybox", "arm64": filepath.Join(Root(t), "bin", "busybox-arm64")}
	for arch, src := range bins {
		bb, err := os.ReadFile(src)
		if err != nil {
			t.Fatalf("%s busybox missing at %s (make deps installs it): %v", arch, src, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "busybox-"+arch), bb, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	df := "FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\n" +
		"RUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/usr/bin\", \"/sbin\", \"/usr/sbin\", \"/tmp\"]\n" +
		"RUN [\"/bin/busybox\", \"--install\", \"-s\"]\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := registryAddr + "/library/busybox:latest"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log bytes.Buffer
	_, err := builder.Client{Addr: buildkitAddr}.Build(ctx, builder.Request{
		ContextDir: dir, Dockerfile: filepath.Join(dir, "Dockerfile"), Refs: []string{ref}, Push: true, Platforms: platforms,
		Credentials: credentials,
	}, &log)
	if err != nil {
		t.Fatalf("build busybox base image: %v\n%s", err, log.String())
	}
	return ref
}

// Contains fails unless text contains every want.
func Contains(t testing.TB, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, text)
		}
	}
}

// Children lists the processes whose command line names this Slipway's data
// dir (its buildkitd, runc shims), so a test can check none outlive it.
func (s *Slipway) Children() []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(raw), "\x00", " ")
		if strings.Contains(cmdline, s.DataDir) {
			out = append(out, e.Name()+": "+cmdline)
		}
	}
	return out
}

// CLI runs the slipway command against this server and returns its output.
func (s *Slipway) CLI(args ...string) (string, error) {
	cmd := exec.Command(Binary(s.t), args...)
	cmd.Env = append(os.Environ(), "SLIPWAY_URL="+s.URL(), "SLIPWAY_API_TOKEN="+s.Token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
