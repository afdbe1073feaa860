package rig

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/registry"
)

// StartNATS runs one JetStream server on a loopback port, for roles that
// share it; it stops when the test ends. Clients authenticate with the
// nkey seed in creds (Options.NATSCreds), as against `slipway serve`'s.
func StartNATS(t testing.TB) (url, creds string, stop func()) {
	t.Helper()
	e, err := natsd.Start(natsd.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e.ClientURL(), e.CredsFile(), e.Shutdown
}

// Cluster is a JetStream cluster on loopback, as nats-server's own tests
// run one.
type Cluster struct {
	Servers []*server.Server
	URLs    []string
}

// StartNATSCluster runs n clustered JetStream servers and waits for a meta
// leader.
func StartNATSCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	routes := make([]string, n)
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i])
	}
	c := &Cluster{}
	for i := 0; i < n; i++ {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: filepath.Join(t.TempDir(), "js"), NoSigs: true,
			Cluster: server.ClusterOpts{Name: "slipway", Host: "127.0.0.1", Port: ports[i]},
		}
		opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		t.Cleanup(srv.Shutdown)
		c.Servers = append(c.Servers, srv)
	}
	for i, srv := range c.Servers {
		if !srv.ReadyForConnections(30 * time.Second) {
			t.Fatalf("nats node %d not ready", i+1)
		}
		c.URLs = append(c.URLs, srv.ClientURL())
	}
	deadline := time.Now().Add(30 * time.Second)
	for !c.hasLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader after 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

func (c *Cluster) hasLeader() bool {
	for _, s := range c.Servers {
		if s.Running() && s.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// URL lists every node, as clients are given it.
func (c *Cluster) URL() string { return strings.Join(c.URLs, ",") }

func freePort(t testing.TB) int { return pickPort(t) }

// StartBuildkitd runs a buildkitd of the test's own, for worker processes
// that share it, and returns its address.
func StartBuildkitd(t testing.TB) string {
	t.Helper()
	return NewBuildkitd(t).Addr
}

// Registry is a registry the test can take down and bring back on the same
// address, to play an outage.
type Registry struct {
	Addr string
	dir  string
	reg  *registry.Embedded
	t    testing.TB
}

// StartRegistry runs a real distribution registry on loopback.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	r := &Registry{dir: t.TempDir(), t: t}
	r.start(FreeAddr(t))
	t.Cleanup(r.Stop)
	return r
}

func (r *Registry) start(addr string) {
	reg, err := registry.StartEmbedded(r.t.Context(), addr, r.dir, nil)
	if err != nil {
		r.t.Fatalf("registry: %v", err)
	}
	r.reg, r.Addr = reg, reg.Addr()
}

// Stop takes the registry down.
func (r *Registry) Stop() {
	if r.reg != nil {
		_ = r.reg.Close(context.Background())
		r.reg = nil
	}
}

// Start brings it back on the same address and storage.
func (r *Registry) Start() { r.start(r.Addr) }
