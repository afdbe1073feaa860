// Package registry holds Slipway's embedded OCI registry (so that `slipway
// serve` needs no other setup) and a small registry client, on
// go-containerregistry, that checks a registry is up and moves tags.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	distregistry "github.com/distribution/distribution/v3/registry"
	// The filesystem storage driver and the access controllers that
	// EmbeddedOptions.Auth can name register themselves with distribution.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/sirupsen/logrus"
)

// instanceHeader is added to every /v2/ response of an embedded registry. It
// carries a random value per instance, so that the readiness probe in
// StartEmbedded can tell our server from anything else that might answer on
// the same port.
const instanceHeader = "X-Slipway-Registry-Instance"

// CatalogPage is how many repositories a page of the embedded registry's
// catalog holds at most.
const CatalogPage = 1000

// startTimeout bounds how long StartEmbedded waits for the server to answer
// when ctx has no earlier deadline.
const startTimeout = 30 * time.Second

// Embedded is a distribution/distribution registry running inside this
// process, storing blobs and manifests on the local file system. Deletes are
// enabled; it has no authentication unless EmbeddedOptions.Auth asks for it.
type Embedded struct {
	addr   string
	reg    *distregistry.Registry
	logger *slog.Logger

	done     chan struct{} // closed when the serving goroutine returns
	serveErr error         // what ListenAndServe returned; read after done

	closeOnce sync.Once
	closeErr  error
}

// startMu serialises StartEmbedded: registry.NewRegistry mutates process-wide
// state (logrus settings, the OpenTelemetry globals) and we temporarily set an
// environment variable around it.
var startMu sync.Mutex

// StartEmbedded starts a registry storing its data under dir and serving
// plain HTTP on addr ("127.0.0.1:5000"; port 0 picks a free port, see Addr).
// It returns once the registry answers requests; a failure to listen (for
// example, the port is in use) is returned as an error naming addr.
//
// ctx bounds only the start-up: cancelling it later does not stop the
// registry, Close does.
//
// The registry's own logs (distribution logs through the process-wide logrus
// standard logger) are forwarded to logger at debug level, whatever their
// logrus level; nothing is written to stdout or stderr. A nil logger discards
// them. Unless OTEL_TRACES_EXPORTER is set, no traces are exported.
//
// Side effects on the whole process (from distribution): the logrus standard
// logger is redirected as described above, and the OpenTelemetry
// global tracer provider is replaced by the registry's.
func StartEmbedded(ctx context.Context, addr, dir string, logger *slog.Logger) (*Embedded, error) {
	return StartEmbeddedWith(ctx, EmbeddedOptions{Addr: addr, Dir: dir, Logger: logger})
}

// EmbeddedOptions configure StartEmbeddedWith.
type EmbeddedOptions struct {
	// Addr, Dir and Logger are StartEmbedded's addr, dir and logger.
	Addr   string
	Dir    string
	Logger *slog.Logger
	// Auth is distribution's "auth" configuration: "htpasswd" (realm,
	// path) or "token" (realm, service, issuer, rootcertbundle), with the
	// parameters of distribution's configuration file. nil means no
	// authentication, as Slipway's own registry runs.
	Auth configuration.Auth
}

// StartEmbeddedWith is StartEmbedded with options beyond address, storage
// directory and logger.
func StartEmbeddedWith(ctx context.Context, opts EmbeddedOptions) (*Embedded, error) {
	addr, dir, logger := opts.Addr, opts.Dir, opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if dir == "" {
		return nil, errors.New("embedded registry: no storage directory given")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded registry: storage directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("embedded registry: storage directory: %w", err)
	}

	// distribution's Registry opens its own listener from the configured
	// address (ListenAndServe takes no net.Listener), so bind once here to
	// fail early with a clear error and to learn the real port when addr asks
	// for port 0, then hand that exact address to distribution. The port is
	// free again for a moment in between; if something grabs it, the
	// ListenAndServe error below is returned, and the instance header makes
	// sure the readiness probe never mistakes another server for ours.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded registry: cannot listen on %s: %w", addr, err)
	}
	bindAddr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return nil, fmt.Errorf("embedded registry: releasing probe listener on %s: %w", bindAddr, err)
	}

	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("embedded registry: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("embedded registry: %w", err)
	}
	instance := hex.EncodeToString(nonce)

	cfg := &configuration.Configuration{
		Version: configuration.CurrentVersion,
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": root},
			"delete":     configuration.Parameters{"enabled": true},
			"cache":      configuration.Parameters{"blobdescriptor": "inmemory"},
		},
	}
	cfg.Auth = opts.Auth
	// The catalog pages (the API's registry browser) hold this many
	// repositories; distribution sets its default only when it reads a
	// YAML file, and 0 would answer every page empty.
	cfg.Catalog.MaxEntries = CatalogPage
	cfg.HTTP.Net = "tcp"
	cfg.HTTP.Addr = bindAddr
	// Upload session state is signed with this secret; a random one per
	// process only means uploads do not survive a restart, which is fine.
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	cfg.HTTP.Headers = http.Header{instanceHeader: []string{instance}}
	// DrainTimeout must stay 0: otherwise ListenAndServe installs its own
	// SIGINT/SIGTERM handler, which is not its business inside Slipway.
	cfg.HTTP.DrainTimeout = 0
	// The access log would go straight to os.Stdout.
	cfg.Log.AccessLog.Disabled = true
	// Applied to the global logrus logger by NewRegistry. Debug would add
	// distribution's OpenTelemetry span dumps (its stdouttrace exporter writes
	// every span to the logger at debug level), which are only noise.
	cfg.Log.Level = "info"
	cfg.Log.Formatter = "text"

	reg, err := newRegistry(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}

	e := &Embedded{
		addr:   dialAddr(bindAddr),
		reg:    reg,
		logger: logger,
		done:   make(chan struct{}),
	}
	go e.serve()

	if err := e.waitReady(ctx, instance); err != nil {
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = reg.Shutdown(shutCtx)
		select {
		case <-e.done:
		case <-shutCtx.Done():
		}
		return nil, err
	}
	logger.Info("embedded registry started", "addr", e.addr, "dir", root)
	return e, nil
}

// newRegistry calls registry.NewRegistry with the process-wide side effects
// under control and turns its panics (distribution panics on bad storage
// configuration) into errors.
func newRegistry(ctx context.Context, cfg *configuration.Configuration, logger *slog.Logger) (reg *distregistry.Registry, err error) {
	startMu.Lock()
	defer startMu.Unlock()

	routeLogrus(logger)

	// NewRegistry always initialises OpenTelemetry with the autoexport span
	// exporter, which defaults to OTLP on localhost:4318 and keeps retrying
	// there. distribution documents OTEL_TRACES_EXPORTER=none as the way to
	// turn that off (docs/content/about/configuration.md, "Disable traces
	// export"; its own Dockerfile sets it). The exporter reads the variable
	// only while it is created, so it is set just around NewRegistry and then
	// restored, which keeps it out of the environment of child processes
	// (buildkitd). A non-empty value the user set is left alone (autoexport
	// treats an empty value like an unset one).
	//
	// NewRegistry also installs its tracer provider, propagator and error
	// handler as the process-wide OpenTelemetry globals; that cannot be
	// turned off short of not calling it. With the exporter "none" the
	// provider's only other exporter writes spans to logrus at debug level,
	// which the "info" log level drops.
	const otelEnv = "OTEL_TRACES_EXPORTER"
	if prev, had := os.LookupEnv(otelEnv); prev == "" {
		if err := os.Setenv(otelEnv, "none"); err != nil {
			return nil, fmt.Errorf("embedded registry: %w", err)
		}
		defer func() {
			if had {
				_ = os.Setenv(otelEnv, prev)
			} else {
				_ = os.Unsetenv(otelEnv)
			}
		}()
	}

	defer func() {
		if p := recover(); p != nil {
			reg, err = nil, fmt.Errorf("embedded registry: %v", p)
		}
	}()
	// The registry outlives the start-up context.
	reg, err = distregistry.NewRegistry(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded registry: %w", err)
	}
	return reg, nil
}

func (e *Embedded) serve() {
	defer close(e.done)
	err := e.reg.ListenAndServe()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		e.serveErr = err
		e.logger.Error("embedded registry stopped serving", "addr", e.addr, "err", err)
	}
}

// waitReady polls GET /v2/ until our instance answers (200, or 401 with
// authentication configured), ListenAndServe fails
// or the deadline passes.
func (e *Embedded) waitReady(ctx context.Context, instance string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	probe := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		Timeout:   2 * time.Second,
	}
	url := "http://" + e.addr + "/v2/"
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("embedded registry: %w", err)
		}
		if resp, err := probe.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			// 401: the registry is up and wants authentication (opts.Auth).
			ok := resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
			if ok && resp.Header.Get(instanceHeader) == instance {
				return nil
			}
		}
		select {
		case <-e.done:
			err := e.serveErr
			if err == nil {
				err = errors.New("server stopped")
			}
			return fmt.Errorf("embedded registry: cannot listen on %s: %w", e.addr, err)
		case <-ctx.Done():
			return fmt.Errorf("embedded registry on %s did not become ready: %w", e.addr, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// Addr returns the host:port the registry serves on, with the real port when
// port 0 was asked for. An unspecified listen host (":0", "0.0.0.0:0",
// "[::]:0") is reported as 127.0.0.1, so the result can be dialled and used in
// image references such as Addr()+"/myapp:latest".
func (e *Embedded) Addr() string { return e.addr }

// Close stops the registry: it stops accepting connections, waits for active
// requests to finish (bounded by ctx) and stops its background work. Calling
// it again returns the first result.
func (e *Embedded) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		err := e.reg.Shutdown(ctx)
		select {
		case <-e.done:
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
		}
		if err != nil {
			e.closeErr = fmt.Errorf("embedded registry: close: %w", err)
		}
	})
	return e.closeErr
}

// dialAddr turns a listener address into one a client can dial.
func dialAddr(bound string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Logging. distribution logs only through the logrus standard logger
// (internal/dcontext wraps logrus.StandardLogger() and cannot be handed
// another logger from outside), and NewRegistry sets that logger's level and
// formatter. So the standard logger's output is discarded and a hook forwards
// every entry to the slog logger of the most recently started Embedded, at
// debug level, with the original logrus level as the "registry_level"
// attribute. This is process-wide: any other user of the logrus standard
// logger in this process is forwarded the same way.

var (
	logTarget   atomic.Pointer[slog.Logger]
	logHookOnce sync.Once
)

func routeLogrus(logger *slog.Logger) {
	logTarget.Store(logger)
	logHookOnce.Do(func() {
		std := logrus.StandardLogger()
		std.SetOutput(io.Discard)
		std.AddHook(slogHook{})
	})
}

type slogHook struct{}

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (slogHook) Fire(entry *logrus.Entry) error {
	logger := logTarget.Load()
	ctx := context.Background()
	if logger == nil || !logger.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	keys := make([]string, 0, len(entry.Data))
	for k := range entry.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys)+2)
	attrs = append(attrs,
		slog.String("component", "registry"),
		slog.String("registry_level", entry.Level.String()))
	for _, k := range keys {
		v := entry.Data[k]
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		attrs = append(attrs, slog.Any(k, v))
	}
	logger.LogAttrs(ctx, slog.LevelDebug, entry.Message, attrs...)
	return nil
}
