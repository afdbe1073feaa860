package autotest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/slipway-build/slipway/builder"
)

// Exporter builds an image and writes its filesystem into a directory.
type Exporter interface {
	Export(ctx context.Context, req builder.Request, dir string, log io.Writer) (builder.ImageConfig, error)
}

// Runner runs test plans in runc containers. Its state lives under Dir:
// runc's under Dir/runc, each run's bundles under Dir/runs/<id>, so that
// Cleanup finds whatever a killed process left.
type Runner struct {
	Runc     string
	Dir      string
	Exporter Exporter
	Logger   *slog.Logger
}

// Run is one test run of one build.
type Run struct {
	// ID is the build's id; it names the run's containers and namespace.
	ID   string
	Plan Plan
	// Base carries what every image build of the run shares: credentials,
	// the network setting.
	Base builder.Request
	Log  io.Writer
	// Logger takes what the run says about itself in the server log,
	// with the build's keys on it; nil is the Runner's, naming the build
	// by ID.
	Logger *slog.Logger
}

// Failed is a test that ran and failed: sut's exit code.
type Failed struct{ Code int }

func (f Failed) Error() string { return fmt.Sprintf("%s exited with code %d", Sut, f.Code) }

// Prefix names every container and network namespace of a test run.
const Prefix = "slipway-test-"

// Run builds the plan's images, starts the services, runs sut and removes
// everything the run made, whatever happens. A failing test is Failed.
func (r *Runner) Run(ctx context.Context, run Run) error {
	if !idRE.MatchString(run.ID) {
		return fmt.Errorf("test run id %q", run.ID)
	}
	// An earlier attempt of this build that died may have left its run
	// behind under the same names: start clean.
	r.remove(run.ID, containerIDs(run), run.Logger)
	dir := filepath.Join(r.runsDir(), run.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("test run dir: %w", err)
	}
	defer r.remove(run.ID, containerIDs(run), run.Logger)
	bundles, err := r.prepare(ctx, run, dir)
	if err != nil {
		return err
	}
	if err := netnsAdd(ctx, Prefix+run.ID); err != nil {
		return err
	}
	return r.start(ctx, run, bundles)
}

// prepare exports every service's filesystem and writes its bundle.
func (r *Runner) prepare(ctx context.Context, run Run, dir string) ([]string, error) {
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, hostsFile(run.Plan), 0o644); err != nil { // #nosec G306 -- /etc/hosts of the test's containers: every user there reads it
		return nil, fmt.Errorf("hosts file: %w", err)
	}
	var bundles []string
	for _, s := range run.Plan.Services {
		bundle := filepath.Join(dir, s.Name)
		fmt.Fprintf(run.Log, "==> test: image of service %q\n", s.Name)
		cfg, err := r.export(ctx, run.Base, s, bundle, run.Log)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", s.Name, err)
		}
		if err := r.writeSpec(ctx, bundle, specFor(s, cfg, hosts, netnsPath(Prefix+run.ID))); err != nil {
			return nil, fmt.Errorf("service %q: %w", s.Name, err)
		}
		bundles = append(bundles, bundle)
	}
	return bundles, nil
}

// export builds a service's image, or a one-line FROM of its image, into
// bundle/rootfs.
func (r *Runner) export(ctx context.Context, base builder.Request, s Service, bundle string, log io.Writer) (builder.ImageConfig, error) {
	req := base
	req.Refs, req.Image, req.Push, req.CacheRef = nil, "", false, ""
	req.Labels, req.Annotations, req.Provenance, req.Platforms = nil, nil, false, nil
	if s.Build != nil {
		req.ContextDir, req.Dockerfile, req.Target, req.BuildArgs = s.Build.Context, s.Build.Dockerfile, s.Build.Target, s.Build.Args
	} else {
		src := filepath.Join(bundle, "from")
		if err := os.MkdirAll(src, 0o700); err != nil {
			return builder.ImageConfig{}, fmt.Errorf("image dir: %w", err)
		}
		if err := os.WriteFile(filepath.Join(src, "Dockerfile"), []byte("FROM "+s.Image+"\n"), 0o600); err != nil {
			return builder.ImageConfig{}, fmt.Errorf("image dir: %w", err)
		}
		req.ContextDir, req.Dockerfile, req.Target, req.BuildArgs = src, filepath.Join(src, "Dockerfile"), "", nil
	}
	cfg, err := r.Exporter.Export(ctx, req, filepath.Join(bundle, "rootfs"), log)
	if err != nil {
		return builder.ImageConfig{}, fmt.Errorf("build: %w", err)
	}
	return cfg, nil
}

// start runs the dependencies, then sut; when sut ends or ctx does, every
// container is killed.
func (r *Runner) start(ctx context.Context, run Run, bundles []string) error {
	out := &lockedWriter{w: run.Log}
	var wg sync.WaitGroup
	ids := containerIDs(run)
	last := len(run.Plan.Services) - 1
	for i, s := range run.Plan.Services[:last] {
		fmt.Fprintf(out, "==> test: start %s\n", s.Name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := r.runContainer(ids[i], bundles[i], prefixed(out, s.Name))
			fmt.Fprintf(out, "==> test: %s ended (exit code %d, %v)\n", s.Name, code, err)
		}()
	}
	stop := context.AfterFunc(ctx, func() { r.kill(ids) })
	defer stop()
	fmt.Fprintf(out, "==> test: run %s\n", Sut)
	code, err := r.runContainer(ids[last], bundles[last], prefixed(out, Sut))
	r.kill(ids)
	wg.Wait()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("test stopped: %w", context.Cause(ctx))
	case err != nil:
		return err
	case code != 0:
		return Failed{Code: code}
	}
	return nil
}

// containerIDs names the run's containers, in plan order.
func containerIDs(run Run) []string {
	ids := make([]string, len(run.Plan.Services))
	for i, s := range run.Plan.Services {
		ids[i] = Prefix + run.ID + "-" + s.Name
	}
	return ids
}

func (r *Runner) runsDir() string  { return filepath.Join(r.Dir, "runs") }
func (r *Runner) runcRoot() string { return filepath.Join(r.Dir, "runc") }

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

// remove deletes a run's containers, namespace and files. It runs with a
// context of its own: a cancelled build must still be cleaned up.
func (r *Runner) remove(id string, containers []string, log *slog.Logger) {
	if log == nil {
		log = r.logger().With("build", id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range containers {
		r.deleteContainer(ctx, c)
	}
	if err := netnsDelete(ctx, Prefix+id); err != nil {
		log.Debug("remove test network namespace", "err", err)
	}
	if err := os.RemoveAll(filepath.Join(r.runsDir(), id)); err != nil {
		log.Warn("remove test run files", "err", err)
	}
}

// Cleanup removes what test runs of an earlier process left behind: its
// containers (runc state under Dir), namespaces and files.
func (r *Runner) Cleanup(ctx context.Context) error {
	ids, err := r.list(ctx)
	if err != nil {
		return err
	}
	for _, c := range ids {
		r.logger().Info("removing a leftover test container", "container", c)
		r.deleteContainer(ctx, c)
	}
	runs, err := os.ReadDir(r.runsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("test runs: %w", err)
	}
	for _, e := range runs {
		if idRE.MatchString(e.Name()) {
			r.logger().Info("removing a leftover test run", "build", e.Name())
			r.remove(e.Name(), nil, nil)
		}
	}
	return nil
}

// lockedWriter lets the services' output share the build log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// lineWriter writes each line as "<service> | line"; Close flushes.
type lineWriter struct {
	pw   *io.PipeWriter
	done chan struct{}
}

func (l *lineWriter) Write(p []byte) (int, error) { return l.pw.Write(p) }

func (l *lineWriter) Close() error {
	err := l.pw.Close()
	<-l.done
	return err
}

func prefixed(w io.Writer, name string) *lineWriter {
	pr, pw := io.Pipe()
	l := &lineWriter{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintf(w, "%s | %s\n", name, sc.Text())
		}
		// A line too long to scan ends the copy; the rest is drained.
		_, _ = io.Copy(io.Discard, pr)
	}()
	return l
}
