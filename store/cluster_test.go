package store_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/slipway-build/slipway/store"
)

// startCluster runs a three-node JetStream cluster on loopback, for what
// only replicated streams do. StartEmbedded is single-node by design, so
// the nodes are started directly, as nats-server's own tests do.
func startCluster(t *testing.T) []*server.Server {
	t.Helper()
	// JetStream clustering needs the routes configured up front, so the
	// route ports are picked before the nodes start.
	var routes []*url.URL
	var ports []int
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		routes = append(routes, &url.URL{Scheme: "nats", Host: l.Addr().String()})
		l.Close()
	}
	var nodes []*server.Server
	for i, port := range ports {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("slipway-%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "slipway-test", Host: "127.0.0.1", Port: port},
			Routes:     routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		nodes = append(nodes, s)
	}
	for i, s := range nodes {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %d not ready", i)
		}
	}
	return nodes
}

// openReplicated opens a Store with three replicas through node, retrying
// while the cluster elects its JetStream leader.
func openReplicated(t *testing.T, node *server.Server) *store.Store {
	t.Helper()
	nc, err := nats.Connect(node.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s, err := store.Open(ctx, nc, store.Options{Replicas: 3, Keys: testKeys})
		cancel()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("Open with 3 replicas: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// On replicated streams a lost compare-and-set race comes back with error
// code 10164 rather than 10071; UpdateBuild must retry on both.
func TestUpdateBuildConcurrentWritersReplicated(t *testing.T) {
	nodes := startCluster(t)
	s0 := openReplicated(t, nodes[0])
	checkConcurrentUpdates(t, []*store.Store{s0, openReplicated(t, nodes[1]), openReplicated(t, nodes[2])})
}
