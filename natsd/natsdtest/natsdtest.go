// Package natsdtest starts the embedded NATS server for tests: a real
// JetStream server in a temp dir, and a client connection to it, both
// closed when the test ends.
package natsdtest

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/slipway-build/slipway/natsd"
)

// Start runs an embedded NATS with JetStream in a temp dir and connects to
// it in-process.
func Start(t testing.TB) (*natsd.Server, *nats.Conn) {
	t.Helper()
	e, err := natsd.Start(natsd.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("natsd.Start: %v", err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	if err != nil {
		t.Fatalf("connect to the embedded nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return e, nc
}
