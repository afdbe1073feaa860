package main

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/metrics"
)

func TestNewBuildkitOneAddressIsClient(t *testing.T) {
	bk, err := newBuildkit(t.Context(), config.Defaults(), "unix:///run/buildkit/buildkitd.sock", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := bk.bk.(oneDaemon); !ok || c.Addr != "unix:///run/buildkit/buildkitd.sock" {
		t.Errorf("builder = %#v, want the one daemon's builder.Client at the address", bk.bk)
	}
	if bk.builders != nil || len(bk.checks) != 1 || bk.checks[0].Name != "buildkit" || bk.checks[0].Soft {
		t.Errorf("builders %v, checks %+v; want none and one hard \"buildkit\" check", bk.builders, bk.checks)
	}
}

// One daemon's state for /metrics: a ping where nothing listens says it
// is down, and each solve counts as running until it returns.
func TestOneDaemonReportsPingAndRunningSolves(t *testing.T) {
	addr := "unix://" + t.TempDir() + "/none.sock"
	bk, err := newBuildkit(t.Context(), config.Defaults(), addr, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d := bk.bk.(oneDaemon)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	done1, done2 := d.track(), d.track()
	if got, want := bk.daemons.Daemons(ctx), []metrics.Daemon{{Addr: addr, Up: false, Running: 2}}; !slices.Equal(got, want) {
		t.Errorf("daemons with two solves running = %+v, want %+v", got, want)
	}
	done1()
	done2()
	if _, err := d.Build(ctx, builder.Request{ContextDir: t.TempDir(), Dockerfile: "Dockerfile", Image: "127.0.0.1:5000/x/y"}, io.Discard); err == nil {
		t.Fatal("Build with no daemon listening succeeded")
	}
	if got, want := bk.daemons.Daemons(ctx), []metrics.Daemon{{Addr: addr, Up: false, Running: 0}}; !slices.Equal(got, want) {
		t.Errorf("daemons after the solves returned = %+v, want %+v", got, want)
	}
}

// TestNewBuildkitPool: two daemons, neither listening: the pool's check
// fails, each daemon is reported down, softly.
func TestNewBuildkitPool(t *testing.T) {
	dir := t.TempDir()
	a, b := "unix://"+dir+"/a.sock", "unix://"+dir+"/b.sock"
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	bk, err := newBuildkit(ctx, config.Defaults(), a+", "+b, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := bk.bk.(*builder.Pool); !ok {
		t.Fatalf("builder = %T, want *builder.Pool", bk.bk)
	}
	checks := bk.checks
	var names []string
	for _, c := range checks {
		names = append(names, c.Name)
		if err := c.Func(ctx); err == nil {
			t.Errorf("check %q passed with no daemon listening", c.Name)
		}
		if c.Soft != (c.Name != "buildkit") {
			t.Errorf("check %q soft = %v", c.Name, c.Soft)
		}
	}
	if want := []string{"buildkit", "buildkit " + a, "buildkit " + b}; !slices.Equal(names, want) {
		t.Errorf("checks %q, want %q", names, want)
	}
	states := bk.builders.BuilderStates()
	if len(states) != 2 || states[0].Addr != a || states[1].Addr != b || states[0].Healthy || states[1].Healthy {
		t.Errorf("states %+v, want %s and %s down", states, a, b)
	}
	if got, want := bk.daemons.Daemons(ctx), []metrics.Daemon{{Addr: a}, {Addr: b}}; !slices.Equal(got, want) {
		t.Errorf("daemons for /metrics %+v, want %+v (both down, nothing running)", got, want)
	}
}
