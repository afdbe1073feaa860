// Package natsd runs a NATS server with JetStream inside the Slipway
// process, for a single-machine install and for tests. It is a package of
// its own because both halves of Slipway's state live on it: package store
// (records) and package queue (work queues), and store's tests must not need
// queue, which is built on store.
package natsd

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is a NATS server with JetStream running inside this process.
type Server struct {
	srv *server.Server
}

// Options configures Start.
type Options struct {
	// StoreDir holds JetStream's file storage; it survives restarts.
	StoreDir string
	// Listen is host:port for outside clients; empty means in-process only.
	Listen string
	Logger *slog.Logger
}

// Start starts a JetStream-enabled NATS server and waits until it accepts
// connections.
func Start(o Options) (*Server, error) {
	opts := &server.Options{
		ServerName: "slipway",
		JetStream:  true,
		StoreDir:   o.StoreDir,
		DontListen: o.Listen == "",
		NoSigs:     true,
		// A build log line can be long; the default 1 MB is plenty, but be
		// explicit so a bigger payload fails loudly in tests rather than here.
		MaxPayload: 8 << 20,
	}
	if o.Listen != "" {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", o.Listen, err)
		}
		opts.Host = host
		opts.Port, err = strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: bad port", o.Listen)
		}
		if opts.Port == 0 {
			opts.Port = server.RANDOM_PORT // NATS reads 0 as its default, 4222
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	if o.Logger != nil {
		srv.SetLoggerV2(slogAdapter{o.Logger}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats server in %s not ready after 30s", o.StoreDir)
	}
	return &Server{srv: srv}, nil
}

// Connect opens a client connection to the embedded server.
func (e *Server) Connect() (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(e.srv), nats.Name("slipway"))
	if err != nil {
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	return nc, nil
}

// ClientURL is the address outside clients use, or "" when in-process only.
func (e *Server) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Shutdown stops the server and waits for it; JetStream data is flushed.
func (e *Server) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Ready reports whether the server still accepts connections.
func (e *Server) Ready() bool { return e.srv.Running() && e.srv.JetStreamEnabled() }

// slogAdapter routes the NATS server's own log lines into slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) {
	a.l.Debug(fmt.Sprintf(format, v...), "component", "nats")
}
func (a slogAdapter) Warnf(format string, v ...any) {
	a.l.Warn(fmt.Sprintf(format, v...), "component", "nats")
}
func (a slogAdapter) Fatalf(format string, v ...any) {
	a.l.Error(fmt.Sprintf(format, v...), "component", "nats")
}
func (a slogAdapter) Errorf(format string, v ...any) {
	a.l.Error(fmt.Sprintf(format, v...), "component", "nats")
}
func (a slogAdapter) Debugf(format string, v ...any) {}
func (a slogAdapter) Tracef(format string, v ...any) {}
