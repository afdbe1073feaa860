package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/autotest"
	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/config"
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

// newBuildkit makes the builder for addr and the /readyz checks that go
// with it. A pool is ready while any daemon is: its "buildkit" check pings
// them all (and marks each up or down), and each listed daemon is then
// reported as "buildkit <addr>" without failing /readyz alone.
func newBuildkit(ctx context.Context, cfg config.Config, addr string, logger *slog.Logger) (buildkit, api.Builders, []api.Check, error) {
	if !isPool(addr) {
		c := builder.Client{Addr: addr}
		return c, nil, []api.Check{{Name: "buildkit", Func: c.Ping}}, nil
	}
	p, err := builder.NewPool(builder.PoolOptions{Addrs: addr, Margin: cfg.BuildkitAffinityMargin, Logger: logger})
	if err != nil {
		return nil, nil, nil, err
	}
	go p.Watch(ctx, poolWatchInterval)
	checks := []api.Check{{Name: "buildkit", Func: p.Ping}}
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" && !strings.HasPrefix(a, "dns+tcp://") {
			checks = append(checks, api.Check{Name: "buildkit " + a, Func: daemonState(p, a), Soft: true})
		}
	}
	return p, poolStates{p}, checks, nil
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
