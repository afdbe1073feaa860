package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/autotest"
	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/buildnet"
	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/dashboard"
	"github.com/slipway-build/slipway/deploy"
	githosts "github.com/slipway-build/slipway/forge/hosts"
	"github.com/slipway-build/slipway/metrics"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/redact"
	"github.com/slipway-build/slipway/registry"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/source"
	"github.com/slipway-build/slipway/store"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/worker"
)

// role is which parts of Slipway one process runs. `serve` runs them all;
// the others run one part against a shared NATS, any number at once.
type role struct {
	name     string
	hooks    bool // /hooks/{provider}
	api      bool // /api/v1
	workers  bool // builds, deploy hooks, statuses, reconciliation
	embedded bool // may start its own NATS and registry
	registry bool // the registry and its token service, behind a front
}

var roles = map[string]role{
	"serve":    {name: "serve", hooks: true, api: true, workers: true, embedded: true},
	"webhook":  {name: "webhook", hooks: true},
	"api":      {name: "api", api: true},
	"worker":   {name: "worker", workers: true},
	"registry": {name: "registry", registry: true},
}

// parseRole is the role a command names: serve, one part, or parts joined
// by commas ("webhook,api"), which one process then runs together.
func parseRole(name string) (role, bool) {
	if r, ok := roles[name]; ok {
		return r, true
	}
	out := role{name: name}
	for _, part := range strings.Split(name, ",") {
		r, ok := roles[part]
		if !ok || r.embedded {
			return role{}, false
		}
		out.hooks = out.hooks || r.hooks
		out.api = out.api || r.api
		out.workers = out.workers || r.workers
		out.registry = out.registry || r.registry
	}
	return out, true
}

func serve(ctx context.Context, args []string) error { return run(ctx, roles["serve"], args) }

// run starts the parts of role and serves until ctx ends.
func run(ctx context.Context, r role, args []string) error {
	fs := flag.NewFlagSet(r.name, flag.ContinueOnError)
	configFile := fs.String("config", "", "YAML config file (environment variables override it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return runRole(ctx, r, *configFile)
}

// runRole is run with its config file named.
func runRole(ctx context.Context, r role, configFile string) error {
	cfg, err := config.Load(configFile, os.Getenv)
	if err != nil {
		return err
	}
	if !r.embedded && cfg.NATSURL == "" {
		return fmt.Errorf("SLIPWAY_NATS_URL: slipway %s shares its state through NATS; set the cluster's URL", r.name)
	}
	logger := newLogger(cfg.LogLevel, cfg.LogFormat, os.Stderr).With("role", r.name)
	slog.SetDefault(logger)
	traces, stopTraces, err := newTraces(ctx, os.Getenv, r.name, logger)
	if err != nil {
		return err
	}
	// Deferred first, so it runs last: the spans of builds that finish
	// during the shutdown grace are sent too.
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTraces(sctx); err != nil {
			logger.Warn("send the last spans", "err", err)
		}
	}()
	out := newGuards(cfg, r.embedded)
	out.installGit()
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("SLIPWAY_DATA_DIR: %w", err)
	}
	// runc joins a build's network namespace by a path under the data dir
	// and refuses any path with a comma in it (it separates its list).
	if r.workers && cfg.BuildNetwork == "bridge" && strings.ContainsRune(dataDir, ',') {
		return fmt.Errorf("SLIPWAY_DATA_DIR: %s contains a comma, which runc refuses in the build network's namespace paths; choose another directory", dataDir)
	}
	// The data dir holds the API token, NATS's records and every checkout:
	// Slipway's user's alone, tightened too when an older Slipway made it.
	if err := worker.PrivateDir(dataDir); err != nil {
		return fmt.Errorf("SLIPWAY_DATA_DIR: %w", err)
	}
	// Bind the HTTP port first: a port in use is the most common start-up
	// mistake and should fail before anything is spawned.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("SLIPWAY_HTTP_ADDR: %w", err)
	}
	defer ln.Close()

	var stack stack
	defer stack.close()
	if err := startPprof(cfg.PprofAddr, logger, &stack); err != nil {
		return err
	}

	nc, natsReady, err := startNATS(cfg, dataDir, logger, &stack)
	if err != nil {
		return err
	}
	keys, err := loadKeys(cfg, dataDir, logger)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, nc, store.Options{Replicas: cfg.NATSReplicas, Keys: keys, Logger: logger})
	if err != nil {
		return err
	}
	q, err := queue.Open(ctx, nc, st, queue.Options{Replicas: cfg.NATSReplicas, AckWait: cfg.AckWait})
	if err != nil {
		return err
	}
	dir, err := access.Open(ctx, nc, cfg.NATSReplicas)
	if err != nil {
		return err
	}
	dir.Logger = logger
	if err := adopt(ctx, st, dir, logger); err != nil {
		return err
	}
	// draining: SIGTERM came; /readyz says so, so that a load balancer
	// sends new requests elsewhere while running builds finish.
	var draining atomic.Bool
	checks := []api.Check{{Name: "nats", Func: natsReady}, {Name: "shutdown", Func: func(context.Context) error {
		if draining.Load() {
			return errors.New("shutting down: running builds are finishing")
		}
		return nil
	}}}
	// The bootstrap API token: the API's, and the embedded registry's
	// site admin login.
	switch {
	case r.api:
		if dir.Bootstrap, err = apiToken(cfg, dataDir, logger); err != nil {
			return err
		}
	case cfg.APIToken != "":
		// The other roles (the registry's docker login) know the site
		// admin only when told.
		if dir.Bootstrap, err = apiToken(cfg, dataDir, logger); err != nil {
			return err
		}
	}
	regAccess := &access.Registry{Dir: dir, Repos: st, IsGone: isNotFound}
	reg, err := registryFor(ctx, r, regDeps{cfg: cfg, dataDir: dataDir, dir: dir, who: regAccess, keys: liveKeys{st}, logger: logger}, &stack)
	if err != nil {
		return err
	}
	regAccess.Host = reg.addr
	if reg.ready != nil {
		checks = append(checks, api.Check{Name: "registry", Func: reg.ready})
	}
	var (
		bk     bkParts
		bkAddr string
	)
	if r.workers {
		if bkAddr, err = startBuildkit(ctx, cfg, dataDir, logger, &stack); err != nil {
			return err
		}
		if bk, err = newBuildkit(ctx, cfg, bkAddr, logger); err != nil {
			return err
		}
		checks = append(checks, bk.checks...)
	}
	hs, err := newHosts(cfg, out.hostAPI(), keys)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	counts, err := newMetrics(q, bk.daemons, logger)
	if err != nil {
		return err
	}
	mux.Handle("GET /metrics", counts.Handler())
	if reg.tokens != nil && r.embedded {
		// The Docker token service; POST is the OAuth2 form newer clients
		// (BuildKit, docker login) try first. The registry role serves it
		// on the registry's own port instead.
		mux.Handle("GET /v2/token", reg.tokens)
		mux.Handle("POST /v2/token", reg.tokens)
	}
	if r.hooks {
		// Webhooks find their repository in memory, forgotten on any
		// change to the repositories bucket (store.RepoCache).
		repos, err := st.WatchRepos(ctx)
		if err != nil {
			return err
		}
		mux.Handle("POST /hooks/{provider}", &webhook.Handler{
			Providers: githosts.Webhooks(), Repos: repos, Queue: q, Logger: logger, IsNotFound: isNotFound, Deliveries: st,
			PullRequests: pullRequests{st, q}, Heads: resolver(hs), Traces: traces, Metrics: counts,
			Tags: tagDeleter{client: registry.Client{Transport: out.registry.Transport()},
				login: deleteLogin(reg.tokens, reg.addr, orgLogins(dir, liveKeys{st}))},
		})
	}
	apiServer := &api.Server{
		Repos: st, Builds: st, Queue: q, Seen: st, Resolve: resolver(hs), Heads: lister(hs), Checks: checks, Logger: logger, NotFound: isNotFound,
		Hosts: apiHosts(), AppToken: hs.appToken(), PublicURL: cfg.ExternalURL(), Tokens: dir, Orgs: dir, RegistryHost: reg.addr,
		Outbound: out.all, RegistryOutbound: out.registry, HTTP: out.hostAPI(),
		Secrets: &rotator{st: st, fromEnv: cfg.SecretKey != "", path: filepath.Join(dataDir, seal.FileName), shared: cfg.NATSURL != "",
			also: []func(context.Context, access.Sealer) (int, error){dir.Reseal, resealSigningKey(dir)}, logger: logger},
		Sealer: liveKeys{st}, Builders: bk.builders, Live: st, TagOwners: st, Registry: browser(reg, out),
		Images: imageReader{client: registry.Client{Transport: out.registry.Transport()},
			login: readLogin(reg.tokens, reg.addr, orgLogins(dir, liveKeys{st}))},
	}
	if r.api {
		apiServer.Register(mux)
		// The dashboard is a page of the API's: it calls nothing else.
		dash := dashboard.Handler()
		mux.Handle("GET /{$}", dash)
		mux.Handle("GET /ui/", dash)
	} else {
		apiServer.RegisterHealth(mux)
	}

	// A request has a minute to arrive (25 MB bodies on slow links) and its
	// answer a minute to leave; writeDeadlines spares streamed logs.
	srv := &http.Server{Handler: writeDeadlines(mux, time.Minute), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	// Leftover test containers go before /readyz answers: they belong to
	// builds this process may run again.
	var tester worker.Tester
	if r.workers {
		if tester, err = newTester(ctx, dataDir, bk.bk, logger); err != nil {
			return err
		}
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()
	logger.Info("slipway is serving", "http", ln.Addr().String(), "data_dir", dataDir, "buildkit", bkAddr, "workers", workerCount(r, cfg))

	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	var wg sync.WaitGroup
	if r.workers {
		if err := (parts{cfg: cfg, st: st, q: q, bk: bk.bk, tester: tester, hs: hs, out: out, reg: reg, dir: dir, dataDir: dataDir, logger: logger, traces: traces, metrics: counts}).startWorkers(ctx, runCtx, &wg); err != nil {
			return err
		}
	}

	select {
	case <-ctx.Done():
		logger.Info("shutting down", "grace", cfg.ShutdownGrace)
	case err := <-httpDone:
		logger.Error("http server stopped", "err", err)
	}
	// Workers stop taking jobs; running builds get the grace period, then
	// are cancelled and handed back un-acked, so nothing is lost. HTTP
	// stays up meanwhile: a running build fetches its registry tokens
	// from /v2/token here, and webhooks that arrive are still queued.
	draining.Store(true)
	cancelRun()
	wg.Wait()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	return nil
}

// newMetrics makes this process's metrics, served at /metrics: Prometheus
// scrapes every role on its HTTP port, without a token (the series carry
// hosts, states, reasons and daemon addresses, never a name or secret). A
// process with workers (daemons set) also reports the build queue and its
// BuildKit daemons, read when scraped.
func newMetrics(q *queue.Queue, daemons metrics.Daemons, logger *slog.Logger) (*metrics.Metrics, error) {
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil || daemons == nil {
		return m, err
	}
	if err := m.WatchQueue(queueState{q}, logger); err != nil {
		return nil, err
	}
	if err := m.WatchDaemons(daemons); err != nil {
		return nil, err
	}
	return m, nil
}

// queueState is the metrics' view of the build queue.
type queueState struct{ q *queue.Queue }

func (s queueState) BuildQueue(ctx context.Context) (metrics.QueueState, error) {
	b, err := s.q.BuildBacklog(ctx)
	return metrics.QueueState{Waiting: b.Waiting, Taken: b.Taken, Oldest: b.Oldest}, err
}

// parts are what serve started that the workers run on.
type parts struct {
	cfg     config.Config
	st      *store.Store
	dir     *access.Directory
	q       *queue.Queue
	bk      buildkit
	tester  worker.Tester
	hs      *hosts
	out     guards
	reg     regParts
	dataDir string
	logger  *slog.Logger
	traces  trace.TracerProvider // nil: tracing off
	metrics *metrics.Metrics
}

// startWorkers starts the build loops, the deploy-hook and status loops and
// the reconciler; they stop when runCtx ends.
func (p parts) startWorkers(ctx, runCtx context.Context, wg *sync.WaitGroup) error {
	if p.cfg.Workers == 0 {
		p.logger.Info("no workers in this process (SLIPWAY_WORKERS=0); builds stay queued")
		return nil
	}
	jobs, err := p.q.BuildJobs(ctx)
	if err != nil {
		return err
	}
	hooks, err := p.q.HookJobs(ctx)
	if err != nil {
		return err
	}
	statuses, err := p.q.StatusJobs(ctx)
	if err != nil {
		return err
	}
	regClient := registry.Client{Transport: p.out.registry.Transport()}
	var mirrors *source.Mirrors
	if p.cfg.MirrorMaxBytes > 0 {
		// go-git fetches (behind the guard in its transport); the git
		// command, where there is one, checks out: many times faster on
		// large trees (BENCHMARKS.md, section 3).
		_, lookErr := exec.LookPath("git")
		mirrors = &source.Mirrors{Dir: filepath.Join(p.dataDir, "mirrors"), MaxBytes: p.cfg.MirrorMaxBytes, CLI: lookErr == nil, Logger: p.logger}
	}
	w := &worker.Worker{
		Mirrors:  mirrors,
		Autotest: p.tester,
		Builds:   p.st, Repos: p.st, Tags: p.st, Slots: p.st, Queue: p.q,
		Jobs: jobs, Builder: p.bk, WorkDir: filepath.Join(p.dataDir, "work"), Logger: p.logger,
		// Each build tags with its own credentials (RegistryLogin).
		Tagger:      func(creds builder.Credentials) worker.Tagger { c := regClient; c.Credentials = creds; return c },
		Images:      func(creds builder.Credentials) worker.ImageReader { c := regClient; c.Credentials = creds; return c },
		Logs:        func(id string) io.WriteCloser { return p.st.NewLogWriter(id, 500*time.Millisecond) },
		Credentials: p.hs.credentials, Grace: p.cfg.ShutdownGrace, LogLimit: p.cfg.LogLimit, LogSize: p.st.LogSize,
		RegistryPing: regClient.Ping, RegistryRetry: p.cfg.RegistryRetry,
		RegistryLogin: registryLogin(p.reg.tokens, p.reg.addr, orgLogins(p.dir, liveKeys{p.st})),
		Traces:        p.traces,
		Metrics:       p.metrics,
	}
	n := &worker.Notifier{
		Builds: p.st, Repos: p.st, Jobs: hooks, Schedule: deploy.Schedule(p.cfg.HookSchedule), Sender: p.out.hooks(),
		PublicURL: p.cfg.ExternalURL(), Logger: p.logger, Traces: p.traces, Metrics: p.metrics,
	}
	rep := &worker.Reporter{
		Builds: p.st, Repos: p.st, Jobs: statuses, Forges: githosts.APIs(), Token: p.hs.token, PublicURL: p.cfg.ExternalURL(), Logger: p.logger,
		HTTP: p.out.hostAPI(), Traces: p.traces,
	}
	wg.Add(3)
	go func() { defer wg.Done(); w.Run(runCtx, p.cfg.Workers) }()
	go func() { defer wg.Done(); n.Run(runCtx, 2) }()
	go func() { defer wg.Done(); rep.Run(runCtx) }()
	if p.cfg.ReconcileInterval > 0 {
		rec := &worker.Reconciler{Repos: p.st, Refs: p.st, Queue: p.q, Interval: p.cfg.ReconcileInterval, Credentials: p.hs.credentials, Logger: p.logger}
		wg.Add(1)
		go func() { defer wg.Done(); rec.Run(runCtx) }()
	}
	return nil
}

// stack closes what serve started, last first.
type stack []func()

func (s *stack) push(f func()) { *s = append(*s, f) }

func (s *stack) close() {
	for i := len(*s) - 1; i >= 0; i-- {
		(*s)[i]()
	}
}

func startNATS(cfg config.Config, dataDir string, logger *slog.Logger, st *stack) (*nats.Conn, func(context.Context) error, error) {
	if cfg.NATSURL != "" {
		auth, err := natsd.ClientOptions(cfg.NATSCreds, cfg.NATSTLSCA)
		if err != nil {
			return nil, nil, fmt.Errorf("SLIPWAY_NATS_CREDS, SLIPWAY_NATS_TLS_CA: %w", err)
		}
		nc, err := nats.Connect(cfg.NATSURL, append(auth, nats.Name("slipway"), nats.MaxReconnects(-1))...)
		if err != nil {
			return nil, nil, fmt.Errorf("SLIPWAY_NATS_URL: connect %s: %w", redact.URL(cfg.NATSURL), err)
		}
		st.push(func() { _ = nc.Drain() })
		return nc, connReady(nc), nil
	}
	// Other Slipway processes connect with the seed in nats.nk
	// (SLIPWAY_NATS_CREDS); this one with a key it keeps in memory.
	emb, err := natsd.Start(natsd.Options{
		StoreDir: filepath.Join(dataDir, "nats"), Listen: cfg.NATSListen, Logger: logger,
		CredsFile: filepath.Join(dataDir, "nats.nk"), TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey,
	})
	if err != nil {
		return nil, nil, err
	}
	st.push(emb.Shutdown)
	nc, err := emb.Connect()
	if err != nil {
		return nil, nil, err
	}
	st.push(func() { _ = nc.Drain() })
	logger.Info("embedded nats started", "store", filepath.Join(dataDir, "nats"), "listen", emb.ClientURL(), "credentials", emb.CredsFile())
	return nc, connReady(nc), nil
}

func connReady(nc *nats.Conn) func(context.Context) error {
	return func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("nats: not connected")
		}
		return nc.FlushWithContext(ctx)
	}
}

func startBuildkit(ctx context.Context, cfg config.Config, dataDir string, logger *slog.Logger, st *stack) (string, error) {
	if cfg.BuildkitAddr != "" {
		logger.Warn("builds run on an external BuildKit whose network Slipway does not control: unless it fences them, RUN steps can reach this host and the cloud metadata service", "buildkit", cfg.BuildkitAddr)
		return cfg.BuildkitAddr, nil
	}
	network, err := buildNetwork(ctx, cfg, logger, st)
	if err != nil {
		return "", err
	}
	bin, err := builder.FindBinary("buildkitd")
	if err != nil {
		return "", err
	}
	runc, err := builder.FindBinary("runc")
	if err != nil {
		return "", err
	}
	logFile, err := os.OpenFile(filepath.Join(dataDir, "buildkitd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600) // #nosec G304 -- a fixed name in the operator's data dir
	if err != nil {
		return "", fmt.Errorf("buildkitd log: %w", err)
	}
	st.push(func() { _ = logFile.Close() })
	d, err := builder.StartDaemon(ctx, builder.DaemonOptions{
		Binary: bin, Runc: runc,
		Root:   filepath.Join(dataDir, "buildkit"),
		Socket: filepath.Join(dataDir, "buildkitd.sock"),
		Config: buildkitConfig(cfg, network),
		Log:    logFile, Logger: logger,
	})
	if err != nil {
		return "", fmt.Errorf("buildkitd (log in %s): %w", logFile.Name(), err)
	}
	st.push(d.Stop)
	logger.Info("buildkitd started", "addr", d.Addr(), "binary", bin, "log", logFile.Name())
	return d.Addr(), nil
}

// cniPoolSize is how many build network namespaces buildkitd keeps ready.
const cniPoolSize = 4

// buildNetwork fences off the bridge BuildKit attaches RUN steps to and
// returns the [worker.oci] settings that put them there. With
// SLIPWAY_BUILD_NETWORK=host they share the host's network instead, which
// is said at every start.
func buildNetwork(ctx context.Context, cfg config.Config, logger *slog.Logger, st *stack) (string, error) {
	if cfg.BuildNetwork == "host" {
		logger.Warn("SLIPWAY_BUILD_NETWORK=host: RUN steps share this host's network and can reach its API, registry, NATS and the cloud metadata service")
		return "  networkMode = \"host\"\n", nil
	}
	subnet, err := config.BuildSubnet(cfg.BuildSubnet)
	if err != nil {
		return "", fmt.Errorf("SLIPWAY_BUILD_SUBNET: %w", err)
	}
	n, err := buildnet.Setup(ctx, buildnet.Options{Bridge: cfg.BuildBridge, Subnet: subnet, PluginDir: cfg.CNIDir})
	if err != nil {
		return "", fmt.Errorf("SLIPWAY_BUILD_NETWORK: builds cannot get a network of their own: %w (SLIPWAY_BUILD_NETWORK=host builds on the host's network instead)", err)
	}
	// Pushed before buildkitd's Stop, so it runs after it: the fence
	// stays up while any build can still run.
	st.push(func() {
		if err := n.Close(); err != nil {
			logger.Warn("remove the build network's firewall", "bridge", n.Bridge, "err", err)
		}
	})
	logger.Info("build network fenced", "bridge", n.Bridge, "subnet", subnet, "cni_plugins", n.PluginDir, "dns_allowed", n.Nameservers)
	return fmt.Sprintf("  networkMode = \"bridge\"\n  bridgeName = %q\n  bridgeSubnet = %q\n  cniBinaryPath = %q\n  cniPoolSize = %d\n",
		n.Bridge, subnet, n.PluginDir, cniPoolSize), nil
}

// buildkitConfig keeps BuildKit's cache bounded, puts builds on their
// network and points Docker Hub pulls at a mirror when one is configured
// (machines without internet).
func buildkitConfig(cfg config.Config, network string) string {
	var b strings.Builder
	b.WriteString("[worker.oci]\n  gc = true\n")
	b.WriteString(network)
	if cfg.DockerHubMirror != "" {
		fmt.Fprintf(&b, "\n[registry.\"docker.io\"]\n  mirrors = [%q]\n", cfg.DockerHubMirror)
	}
	return b.String()
}

// minAPIToken is the shortest bootstrap token accepted: it opens every
// organization.
const minAPIToken = 32

// apiToken returns the configured token, or the one stored in the data
// dir, creating it on first start.
func apiToken(cfg config.Config, dataDir string, logger *slog.Logger) (string, error) {
	if cfg.APIToken != "" {
		if len(cfg.APIToken) < minAPIToken {
			return "", fmt.Errorf("SLIPWAY_API_TOKEN: want at least %d characters of random text (or leave it unset and Slipway generates one in the data dir)", minAPIToken)
		}
		return cfg.APIToken, nil
	}
	path := filepath.Join(dataDir, "api-token")
	if raw, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(raw))) > 0 { // #nosec G304 -- the token file in the operator's data dir
		logger.Info("API token read from the data dir", "file", path)
		return strings.TrimSpace(string(raw)), nil
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := "slp_" + hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("store API token: %w", err)
	}
	logger.Info("generated an API token; use it as 'Authorization: Bearer <token>'", "file", path)
	return token, nil
}

// resolver answers a ref's tip with the repository's own credentials.
func resolver(hs *hosts) api.Resolver {
	return func(ctx context.Context, repo model.Repo, ref string) (string, error) {
		var tip string
		err := withAuth(ctx, hs, repo, func(auth transport.AuthMethod) (err error) {
			tip, err = source.Resolve(ctx, repo.CloneURL, ref, auth)
			return err
		})
		return tip, err
	}
}

// lister answers a repository's branch tips with its own credentials.
func lister(hs *hosts) api.Lister {
	return func(ctx context.Context, repo model.Repo) (map[string]string, error) {
		var heads map[string]string
		err := withAuth(ctx, hs, repo, func(auth transport.AuthMethod) (err error) {
			heads, err = source.Heads(ctx, repo.CloneURL, auth)
			return err
		})
		return heads, err
	}
}

// withAuth calls fn with how to authenticate to the repository's remote.
func withAuth(ctx context.Context, hs *hosts, repo model.Repo, fn func(transport.AuthMethod) error) error {
	creds, err := hs.credentials(ctx, repo)
	if err != nil {
		return err
	}
	// An SSH key's known_hosts file needs a directory of its own.
	dir, err := os.MkdirTemp("", "slipway-remote-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	auth, err := creds.Auth(repo.CloneURL, dir)
	if err != nil {
		return err
	}
	return fn(auth)
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// newLogger writes lines of level and above to out, as key=value text or,
// with format "json", one JSON object a line.
func newLogger(level, format string, out io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler = slog.NewTextHandler(out, opts)
	if format == "json" {
		h = slog.NewJSONHandler(out, opts)
	}
	// Errors quote the URLs they failed on; the handler keeps their
	// credentials out of the server log.
	return slog.New(redact.NewHandler(h))
}

// newTester is the runner of compose tests. It first removes what test
// runs of a process that died left behind: their containers would run on.
func newTester(ctx context.Context, dataDir string, bk autotest.Exporter, logger *slog.Logger) (worker.Tester, error) {
	runc, err := builder.FindBinary("runc")
	if err != nil {
		// The default image's worker (no runc, not root) still builds;
		// only repositories with a docker-compose.test.yml need a worker
		// that can run containers.
		logger.Warn("this worker cannot run docker-compose.test.yml tests; builds that have one fail", "err", err)
		return noTester{why: err}, nil
	}
	r := &autotest.Runner{Runc: runc, Dir: filepath.Join(dataDir, "testruns"), Exporter: bk, Logger: logger}
	if err := r.Cleanup(ctx); err != nil {
		return nil, fmt.Errorf("remove leftover test runs: %w", err)
	}
	return r, nil
}

func workerCount(r role, cfg config.Config) int {
	if !r.workers {
		return 0
	}
	return cfg.Workers
}

// noTester is the Tester of a worker that cannot run containers: a build
// whose context holds docker-compose.test.yml fails saying why, rather
// than pushing an untested image.
type noTester struct{ why error }

func (n noTester) Run(context.Context, autotest.Run) error {
	return fmt.Errorf("this worker cannot run tests (%w): run the workers of repositories with tests where runc is, as root (slipway serve, the all-in-one image)", n.why)
}
