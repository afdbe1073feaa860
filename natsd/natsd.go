// Package natsd runs a NATS server with JetStream inside the Slipway
// process, for a single-machine install and for tests. It is a package of
// its own because both halves of Slipway's state live on it: package store
// (records) and package queue (work queues), and store's tests must not need
// queue, which is built on store.
package natsd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Server is a NATS server with JetStream running inside this process.
// Every client authenticates with an nkey: this process with one made at
// start and kept in memory, outside clients with the seed in CredsFile.
type Server struct {
	srv   *server.Server
	self  nkeys.KeyPair
	creds string
}

// Options configures Start.
type Options struct {
	// StoreDir holds JetStream's file storage; it survives restarts.
	StoreDir string
	// Listen is host:port for outside clients; empty means in-process only.
	// An address other machines can reach needs TLSCert and TLSKey.
	Listen string
	// CredsFile is the nkey seed outside clients authenticate with, made
	// (mode 0600) on first start when missing. Empty means nats.nk in
	// StoreDir. Unused without Listen.
	CredsFile string
	// TLSCert and TLSKey are PEM files; with them clients must use TLS.
	TLSCert, TLSKey string
	Logger          *slog.Logger
}

// Start starts a JetStream-enabled NATS server and waits until it accepts
// connections.
func Start(o Options) (*Server, error) {
	opts, e, err := serverOptions(o)
	if err != nil {
		return nil, err
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
	e.srv = srv
	return e, nil
}

// serverOptions checks o and turns it into the server's options, with the
// users that may connect.
func serverOptions(o Options) (*server.Options, *Server, error) {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, nil, errors.New("nats tls: give both the certificate and the key")
	}
	if err := CheckListen(o.Listen, o.TLSCert != ""); err != nil {
		return nil, nil, err
	}
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
	e := &Server{}
	var err error
	if e.self, err = nkeys.CreateUser(); err != nil {
		return nil, nil, fmt.Errorf("nats nkey: %w", err)
	}
	self, err := nkeyUser(e.self)
	if err != nil {
		return nil, nil, err
	}
	opts.Nkeys = []*server.NkeyUser{self}
	if o.Listen == "" {
		return opts, e, nil
	}
	if err := listenOptions(opts, o.Listen); err != nil {
		return nil, nil, err
	}
	if err := tlsOptions(opts, o.TLSCert, o.TLSKey); err != nil {
		return nil, nil, err
	}
	var outside *server.NkeyUser
	if e.creds, outside, err = outsideUser(o); err != nil {
		return nil, nil, err
	}
	opts.Nkeys = append(opts.Nkeys, outside)
	return opts, e, nil
}

// outsideUser is the user other processes connect as, and the seed file
// they prove it with.
func outsideUser(o Options) (string, *server.NkeyUser, error) {
	file := o.CredsFile
	if file == "" {
		file = filepath.Join(o.StoreDir, "nats.nk")
	}
	kp, err := clientSeed(file)
	if err != nil {
		return "", nil, err
	}
	u, err := nkeyUser(kp)
	return file, u, err
}

func listenOptions(opts *server.Options, listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("nats listen address %q: %w", listen, err)
	}
	opts.Host = host
	opts.Port, err = strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("nats listen address %q: bad port", listen)
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT // NATS reads 0 as its default, 4222
	}
	return nil
}

// tlsOptions makes clients connect over TLS when a certificate is given.
func tlsOptions(opts *server.Options, cert, key string) error {
	if cert == "" {
		return nil
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cert, KeyFile: key})
	if err != nil {
		return fmt.Errorf("nats tls: %w", err)
	}
	opts.TLS, opts.TLSConfig = true, tc
	return nil
}

// Connect opens a client connection to the embedded server.
func (e *Server) Connect() (*nats.Conn, error) {
	auth, err := nkeyOption(e.self)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect("", nats.InProcessServer(e.srv), nats.Name("slipway"), auth)
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

// CredsFile is the seed file outside clients authenticate with
// (SLIPWAY_NATS_CREDS), or "" when in-process only.
func (e *Server) CredsFile() string { return e.creds }

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
