package main

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/config"
)

func TestNewBuildkitOneAddressIsClient(t *testing.T) {
	bk, builders, checks, err := newBuildkit(t.Context(), config.Defaults(), "unix:///run/buildkit/buildkitd.sock", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := bk.(builder.Client); !ok || c.Addr != "unix:///run/buildkit/buildkitd.sock" {
		t.Errorf("builder = %#v, want builder.Client at the address", bk)
	}
	if builders != nil || len(checks) != 1 || checks[0].Name != "buildkit" || checks[0].Soft {
		t.Errorf("builders %v, checks %+v; want none and one hard \"buildkit\" check", builders, checks)
	}
}

// TestNewBuildkitPool: two daemons, neither listening: the pool's check
// fails, each daemon is reported down, softly.
func TestNewBuildkitPool(t *testing.T) {
	dir := t.TempDir()
	a, b := "unix://"+dir+"/a.sock", "unix://"+dir+"/b.sock"
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	bk, builders, checks, err := newBuildkit(ctx, config.Defaults(), a+", "+b, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := bk.(*builder.Pool); !ok {
		t.Fatalf("builder = %T, want *builder.Pool", bk)
	}
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
	states := builders.BuilderStates()
	if len(states) != 2 || states[0].Addr != a || states[1].Addr != b || states[0].Healthy || states[1].Healthy {
		t.Errorf("states %+v, want %s and %s down", states, a, b)
	}
}
