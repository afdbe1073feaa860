package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/autotest"
	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/metrics"
	"github.com/slipway-build/slipway/worker"
)

// buildkit is what the workers and the test runner build on: one
// builder.Client, or a builder.Pool over several daemons.
type buildkit interface {
	worker.Builder
	autotest.Exporter
}

// poolWatchInterval is how often a pool pings its daemons that are down.
const poolWatchInterval = 5 * time.Second

// isPool tells whether addr names several daemons: a list, or a dns+tcp
// name. One address keeps the plain Client, as before pools.
func isPool(addr string) bool {
	return strings.Contains(addr, ",") || strings.HasPrefix(strings.TrimSpace(addr), "dns+tcp://")
}

// bkParts are the builder for an address and what reports on it.
type bkParts struct {
	bk buildkit
	// builders answers GET /api/v1/builders: a pool's daemons, nil for
	// one daemon.
	builders api.Builders
	// daemons are the daemons /metrics reports.
	daemons metrics.Daemons
	checks  []api.Check
}

// newBuildkit makes the builder for addr and the /readyz checks that go
// with it. A pool is ready while any daemon is: its "buildkit" check pings
// them all (and marks each up or down), and each listed daemon is then
// reported as "buildkit <addr>" without failing /readyz alone.
func newBuildkit(ctx context.Context, cfg config.Config, addr string, logger *slog.Logger) (bkParts, error) {
	if !isPool(addr) {
		c := oneDaemon{Client: builder.Client{Addr: addr}, running: new(atomic.Int64)}
		return bkParts{bk: c, daemons: c, checks: []api.Check{{Name: "buildkit", Func: c.Ping}}}, nil
	}
	p, err := builder.NewPool(builder.PoolOptions{Addrs: addr, Margin: cfg.BuildkitAffinityMargin, Logger: logger})
	if err != nil {
		return bkParts{}, err
	}
	go p.Watch(ctx, poolWatchInterval)
	checks := []api.Check{{Name: "buildkit", Func: p.Ping}}
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" && !strings.HasPrefix(a, "dns+tcp://") {
			checks = append(checks, api.Check{Name: "buildkit " + a, Func: daemonState(p, a), Soft: true})
		}
	}
	return bkParts{bk: p, builders: poolStates{p}, daemons: poolStates{p}, checks: checks}, nil
}

// daemonState answers what the pool last learnt of addr; the "buildkit"
// check before it has just pinged every daemon.
func daemonState(p *builder.Pool, addr string) func(context.Context) error {
	return func(context.Context) error {
		for _, s := range p.States() {
			if s.Addr == addr && !s.Healthy {
				return fmt.Errorf("down: %s", s.LastError)
			}
		}
		return nil
	}
}

// poolStates is the API's view of a pool.
type poolStates struct{ p *builder.Pool }

func (s poolStates) BuilderStates() []api.BuilderState {
	states := s.p.States()
	out := make([]api.BuilderState, len(states))
	for i, d := range states {
		out[i] = api.BuilderState{Addr: d.Addr, Healthy: d.Healthy, Running: d.Running, LastError: d.LastError, LastBuiltRepos: d.LastBuiltRepos}
	}
	return out
}

// Daemons are the pool's daemons as it last learnt of them, as GET
// /api/v1/builders lists them.
func (s poolStates) Daemons(context.Context) []metrics.Daemon {
	states := s.p.States()
	out := make([]metrics.Daemon, len(states))
	for i, d := range states {
		out[i] = metrics.Daemon{Addr: d.Addr, Up: d.Healthy, Running: d.Running}
	}
	return out
}

// oneDaemon is one BuildKit daemon without a pool: a builder.Client that
// counts the solves running on it, as a pool counts its daemons', for
// /metrics.
type oneDaemon struct {
	builder.Client
	running *atomic.Int64
}

// track counts a solve until the returned func is called.
func (d oneDaemon) track() (done func()) {
	d.running.Add(1)
	return func() { d.running.Add(-1) }
}

func (d oneDaemon) Build(ctx context.Context, req builder.Request, log io.Writer) (builder.Result, error) {
	defer d.track()()
	return d.Client.Build(ctx, req, log)
}

func (d oneDaemon) Test(ctx context.Context, req builder.Request, log io.Writer) error {
	defer d.track()()
	return d.Client.Test(ctx, req, log)
}

func (d oneDaemon) ExportCache(ctx context.Context, req builder.Request, log io.Writer) error {
	defer d.track()()
	return d.Client.ExportCache(ctx, req, log)
}

func (d oneDaemon) Export(ctx context.Context, req builder.Request, dir string, log io.Writer) (builder.ImageConfig, error) {
	defer d.track()()
	return d.Client.Export(ctx, req, dir, log)
}

// Daemons pings the daemon: without a pool nothing else keeps its state.
func (d oneDaemon) Daemons(ctx context.Context) []metrics.Daemon {
	return []metrics.Daemon{{Addr: d.Addr, Up: d.Ping(ctx) == nil, Running: int(d.running.Load())}}
}
