package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrDaemonGone marks a build whose own daemon died under it. The pool as a
// whole may still answer Ping, so the worker cannot learn this by pinging:
// it must see this error to retry the job on another daemon.
var ErrDaemonGone = errors.New("buildkit daemon gone")

// DefaultAffinityMargin is how many more running builds the daemon that last
// built a repository may have than the least busy one and still be picked.
const DefaultAffinityMargin = 2

// Resolver answers a host name's addresses; net.Resolver.LookupHost fits.
type Resolver func(ctx context.Context, host string) ([]string, error)

// PoolOptions configures a Pool.
type PoolOptions struct {
	// Addrs is the comma-separated SLIPWAY_BUILDKIT_ADDR: a list of
	// addresses, or one dns+tcp://name:port.
	Addrs string
	// Margin is the affinity margin; negative means none (always the least
	// busy).
	Margin int
	// Resolve looks up a dns+tcp name; nil is the system resolver.
	Resolve Resolver
	Logger  *slog.Logger
}

// DaemonState is what the pool knows of one daemon.
type DaemonState struct {
	Addr           string `json:"addr"`
	Healthy        bool   `json:"healthy"`
	Running        int    `json:"running"`
	LastError      string `json:"last_error,omitempty"`
	LastBuiltRepos int    `json:"last_built_repos"`
}

// Pool builds on several BuildKit daemons: it prefers the daemon that last
// built the request's repository, whose local cache is warm, and skips
// daemons that stopped answering.
type Pool struct {
	margin  int
	addrs   func(ctx context.Context) ([]string, error)
	log     *slog.Logger
	timeout time.Duration

	mu       sync.Mutex
	daemons  map[string]*daemon
	current  []string          // the addresses of the last refresh
	affinity map[string]string // repository id → address
}

type daemon struct {
	healthy bool
	running int
	lastErr string
}

// NewPool makes a pool over opts.Addrs. Every daemon counts as healthy
// until a ping or a build says otherwise.
func NewPool(opts PoolOptions) (*Pool, error) {
	src, err := addrSource(opts.Addrs, opts.Resolve, 5*time.Second, time.Now)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Pool{margin: opts.Margin, addrs: src, log: log, timeout: 3 * time.Second,
		daemons: map[string]*daemon{}, affinity: map[string]string{}}
	// Known from the start, so that States lists them; a name that does
	// not resolve yet is asked again on the first pick.
	if _, err := p.refresh(context.Background()); err != nil {
		log.Warn("buildkit pool: list daemons", "err", err)
	}
	return p, nil
}

// addrSource turns SLIPWAY_BUILDKIT_ADDR into a function that lists the
// daemons: a fixed list, or a dns+tcp name resolved again once its cache of
// ttl is out of date, so that a headless Service's new pods are found.
func addrSource(spec string, resolve Resolver, ttl time.Duration, now func() time.Time) (func(context.Context) ([]string, error), error) {
	var list []string
	for _, a := range strings.Split(spec, ",") {
		if a = strings.TrimSpace(a); a != "" {
			list = append(list, a)
		}
	}
	if len(list) == 0 {
		return nil, errors.New("buildkit pool: no address")
	}
	rest, ok := strings.CutPrefix(list[0], "dns+tcp://")
	if !ok {
		return func(context.Context) ([]string, error) { return list, nil }, nil
	}
	if len(list) > 1 {
		return nil, fmt.Errorf("buildkit pool: a dns+tcp name must be the only address, got %q", spec)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return nil, fmt.Errorf("buildkit pool: %s: %w", list[0], err)
	}
	if resolve == nil {
		resolve = net.DefaultResolver.LookupHost
	}
	c := &dnsCache{host: host, port: port, resolve: resolve, ttl: ttl, now: now}
	return c.addrs, nil
}

// dnsCache resolves a name at most once per ttl; when a lookup fails it
// keeps the last answer, since the daemons themselves may well be up.
type dnsCache struct {
	host, port string
	resolve    Resolver
	ttl        time.Duration
	now        func() time.Time

	mu   sync.Mutex
	at   time.Time
	last []string
}

func (c *dnsCache) addrs(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil && c.now().Sub(c.at) < c.ttl {
		return c.last, nil
	}
	ips, err := c.resolve(ctx, c.host)
	if err != nil || len(ips) == 0 {
		if c.last != nil {
			return c.last, nil
		}
		return nil, fmt.Errorf("resolve buildkit name %s: %w", c.host, errors.Join(err, errNoRecords(ips)))
	}
	sort.Strings(ips)
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = "tcp://" + net.JoinHostPort(ip, c.port)
	}
	c.at, c.last = c.now(), out
	return out, nil
}

func errNoRecords(ips []string) error {
	if len(ips) == 0 {
		return errors.New("no records")
	}
	return nil
}

// candidate is a healthy daemon as pick sees it.
type candidate struct {
	Addr    string
	Running int
}

// pick chooses among healthy daemons, given in address order: the
// preferred one (it last built the repository) unless it runs more than
// margin builds over the least busy; else the least busy, the first in
// address order on a tie.
func pick(healthy []candidate, preferred string, margin int) (string, bool) {
	if len(healthy) == 0 {
		return "", false
	}
	least := healthy[0]
	for _, c := range healthy[1:] {
		if c.Running < least.Running {
			least = c
		}
	}
	for _, c := range healthy {
		if c.Addr == preferred && margin >= 0 && c.Running-least.Running <= margin {
			return c.Addr, true
		}
	}
	return least.Addr, true
}

// refresh brings the daemon table in line with the current address list.
func (p *Pool) refresh(ctx context.Context) ([]string, error) {
	addrs, err := p.addrs(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range addrs {
		if p.daemons[a] == nil {
			p.daemons[a] = &daemon{healthy: true}
		}
	}
	// A daemon gone from DNS keeps its entry (its running builds still
	// count down) but is no longer listed.
	p.current = addrs
	return addrs, nil
}

// acquire picks a daemon for repo and counts the build on it.
func (p *Pool) acquire(ctx context.Context, repo string) (string, error) {
	addrs, err := p.refresh(ctx)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var healthy []candidate
	for _, a := range addrs {
		if d := p.daemons[a]; d.healthy {
			healthy = append(healthy, candidate{Addr: a, Running: d.running})
		}
	}
	addr, ok := pick(healthy, p.affinity[repo], p.margin)
	if !ok {
		return "", fmt.Errorf("no healthy buildkit daemon of %d: %w", len(addrs), ErrDaemonGone)
	}
	p.daemons[addr].running++
	return addr, nil
}

// release uncounts a build and, when it succeeded, remembers where repo
// was built.
func (p *Pool) release(addr, repo string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.daemons[addr].running--
	if ok && repo != "" {
		p.affinity[repo] = addr
	}
}

func (p *Pool) setHealth(addr string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.daemons[addr]
	if d == nil {
		return
	}
	if err != nil {
		if d.healthy {
			p.log.Warn("buildkit daemon down", "buildkit", addr, "err", strings.SplitN(err.Error(), "\n", 2)[0])
		}
		// BuildKit's errors carry a stack trace after the first line.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		d.healthy, d.lastErr = false, msg
		return
	}
	if !d.healthy {
		p.log.Info("buildkit daemon back", "buildkit", addr)
	}
	d.healthy = true
}

// Build runs req on a daemon the pool picks. When that daemon died under
// the build, the error wraps ErrDaemonGone and the daemon is skipped until
// it answers again.
func (p *Pool) Build(ctx context.Context, req Request, log io.Writer) (Result, error) {
	var res Result
	err := p.run(ctx, req.Repo, log, func(c Client) error {
		var err error
		res, err = c.Build(ctx, req, log)
		return err
	})
	return res, err
}

// Test runs req's test stage on a daemon the pool picks, as Client.Test.
func (p *Pool) Test(ctx context.Context, req Request, log io.Writer) error {
	return p.run(ctx, req.Repo, log, func(c Client) error { return c.Test(ctx, req, log) })
}

// ExportCache writes req's layer cache, as Client.ExportCache, on the
// daemon the pool prefers for req.Repo: the one that just built it.
func (p *Pool) ExportCache(ctx context.Context, req Request, log io.Writer) error {
	return p.run(ctx, req.Repo, log, func(c Client) error { return c.ExportCache(ctx, req, log) })
}

// Export builds req and writes its filesystem to dir, as Client.Export, on
// a daemon the pool picks.
func (p *Pool) Export(ctx context.Context, req Request, dir string, log io.Writer) (ImageConfig, error) {
	var cfg ImageConfig
	err := p.run(ctx, req.Repo, log, func(c Client) error {
		var err error
		cfg, err = c.Export(ctx, req, dir, log)
		return err
	})
	return cfg, err
}

func (p *Pool) run(ctx context.Context, repo string, log io.Writer, do func(Client) error) error {
	addr, err := p.acquire(ctx, repo)
	if err != nil {
		return err
	}
	// The log names the daemon: a failure, or a slow build, is then traced
	// to one machine.
	if log != nil {
		_, _ = fmt.Fprintf(log, "==> buildkit %s\n", addr)
	}
	err = do(Client{Addr: addr})
	p.release(addr, repo, err == nil)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if gone := p.gone(addr, err); gone != nil {
		p.setHealth(addr, gone)
		return fmt.Errorf("%w: %s: %w", ErrDaemonGone, addr, err)
	}
	return err
}

// gone tells whether a failed build's daemon is gone: the error is a lost
// connection, or the daemon does not answer a ping now.
func (p *Pool) gone(addr string, err error) error {
	if status.Code(err) == codes.Unavailable {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	return Client{Addr: addr}.Ping(ctx)
}

// Ping pings every daemon, marks each up or down, and answers nil when at
// least one is healthy: the pool can build.
func (p *Pool) Ping(ctx context.Context) error {
	addrs, err := p.refresh(ctx)
	if err != nil {
		return err
	}
	errs := p.pingAll(ctx, addrs)
	if len(errs) < len(addrs) {
		return nil
	}
	return fmt.Errorf("no healthy buildkit daemon: %w", errors.Join(errs...))
}

func (p *Pool) pingAll(ctx context.Context, addrs []string) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, p.timeout)
			defer cancel()
			err := Client{Addr: a}.Ping(pctx)
			p.setHealth(a, err)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// PingAddr pings one daemon of the pool and records the answer; /readyz
// reports each daemon through it.
func (p *Pool) PingAddr(ctx context.Context, addr string) error {
	err := Client{Addr: addr}.Ping(ctx)
	p.setHealth(addr, err)
	return err
}

// Watch pings the daemons that are down every interval until ctx ends,
// and brings back those that answer.
func (p *Pool) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		addrs, err := p.refresh(ctx)
		if err != nil {
			p.log.Warn("buildkit pool: list daemons", "err", err)
			continue
		}
		p.pingAll(ctx, p.down(addrs))
	}
}

func (p *Pool) down(addrs []string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, a := range addrs {
		if !p.daemons[a].healthy {
			out = append(out, a)
		}
	}
	return out
}

// States reports the daemons of the last address list, sorted by address.
func (p *Pool) States() []DaemonState {
	p.mu.Lock()
	defer p.mu.Unlock()
	repos := map[string]int{}
	for _, a := range p.affinity {
		repos[a]++
	}
	out := make([]DaemonState, 0, len(p.current))
	for _, a := range p.current {
		d := p.daemons[a]
		out = append(out, DaemonState{Addr: a, Healthy: d.healthy, Running: d.running, LastError: d.lastErr, LastBuiltRepos: repos[a]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}
