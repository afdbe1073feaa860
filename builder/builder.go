// Package builder drives BuildKit: it builds a Dockerfile from a checked-out
// context with the built-in dockerfile.v0 frontend, pushes the image and
// streams BuildKit's progress as a plain-text log.
package builder

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/docker/cli/cli/config/types"
	bk "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/tonistiigi/fsutil"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
)

// Request is one image build.
type Request struct {
	// ContextDir is the build context on local disk.
	ContextDir string
	// ContextKey names a context directory that is kept across builds
	// (source.WorkTree.Key): BuildKit keeps the last context it received
	// under that name and then receives only the files whose size, mode
	// or modification time changed. "" shares BuildKit's one default.
	ContextKey string
	// Dockerfile is the Dockerfile's path on local disk.
	Dockerfile string
	// Refs are the full image references to push, e.g. host/acme/demo:latest.
	Refs []string
	// Image, when set instead of Refs, is pushed by digest only, so that
	// the caller decides which tags may move.
	Image     string
	Labels    map[string]string
	BuildArgs map[string]string
	Target    string
	Platforms []string
	// Annotations go on the manifests (and the index of a multi-platform
	// image).
	Annotations map[string]string
	// CacheRef is a registry reference for BuildKit's layer cache
	// (mode=max); empty means no shared cache.
	CacheRef string
	// CacheLater has Build read the cache at CacheRef but not write it:
	// the caller writes it with ExportCache once the image is announced,
	// so the export's push is off the path to the deploy hook.
	CacheLater bool
	Provenance bool
	// Push sends the image to its registry; without it the build is only
	// checked.
	Push bool
	// NoNetwork gives every RUN step no network but loopback, whatever
	// the Dockerfile asks for.
	NoNetwork bool
	// Credentials are this build's registry logins, for pulls and the
	// push alike; nil is anonymous. They belong to the request, not the
	// Client, so that one build's credentials never reach another's
	// BuildKit session.
	Credentials Credentials
	// Repo is the repository's id; a pool prefers the daemon that last
	// built it, whose local cache is warm.
	Repo string
}

// Result is what a finished build produced.
type Result struct {
	Digest string
	// Steps are the solve's steps and how many came from the cache.
	Steps Steps
}

// Steps counts the vertices of one solve that completed (Dockerfile
// instructions, and BuildKit's own: loading the context, metadata,
// exporting) and how many of them BuildKit took from its cache, as the
// progress log marks CACHED.
type Steps struct {
	Total, Cached int
}

// stepCount remembers each completed vertex, by digest, and whether it
// was cached: BuildKit reports a vertex again with every change.
type stepCount map[string]bool

func (s stepCount) add(st *bk.SolveStatus) {
	for _, v := range st.Vertexes {
		if v.Completed != nil {
			s[string(v.Digest)] = v.Cached
		}
	}
}

func (s stepCount) steps() Steps {
	out := Steps{Total: len(s)}
	for _, cached := range s {
		if cached {
			out.Cached++
		}
	}
	return out
}

// Credentials gives registry logins by host; an empty answer is anonymous.
type Credentials func(host string) (username, secret string)

// Client builds images on one BuildKit daemon.
type Client struct {
	Addr string
}

// Build runs req on BuildKit and writes its progress to log. Cancelling ctx
// cancels the build.
func (c Client) Build(ctx context.Context, req Request, log io.Writer) (Result, error) {
	if len(req.Refs) == 0 && req.Image == "" {
		return Result{}, fmt.Errorf("build: no image reference to push")
	}
	solve, err := solveOpt(req, auth(req.Credentials))
	if err != nil {
		return Result{}, err
	}
	resp, steps, err := c.solve(ctx, solve, log)
	if err != nil {
		return Result{}, err
	}
	return Result{Digest: resp.ExporterResponse["containerimage.digest"], Steps: steps}, nil
}

// Test builds req's Target stage and keeps nothing: no image is exported or
// pushed and no cache is written, so a test stage can fail without leaving
// anything behind. The layer cache is still read, so the stages the image
// shares with the test are built once. Refs, Image and Push are ignored.
func (c Client) Test(ctx context.Context, req Request, log io.Writer) error {
	if req.Target == "" {
		return fmt.Errorf("test: no target stage")
	}
	solve, err := solveOpt(req, auth(req.Credentials))
	if err != nil {
		return err
	}
	solve.Exports, solve.CacheExports = nil, nil
	_, _, err = c.solve(ctx, solve, log)
	return err
}

// solve runs one solve and streams its progress to log as plain text.
func (c Client) solve(ctx context.Context, solve bk.SolveOpt, log io.Writer) (*bk.SolveResponse, Steps, error) {
	return c.stream(ctx, log, func(ctx context.Context, cl *bk.Client, ch chan *bk.SolveStatus) (*bk.SolveResponse, error) {
		return cl.Solve(ctx, nil, solve, ch)
	})
}

// untraced is ctx without its span. BuildKit's client traces itself (its
// gRPC calls, the session's callbacks, registry logins) with the provider
// of the span it finds in ctx; the callbacks would come out in traces of
// buildkitd's own, which Slipway does not export, parentless. The worker's
// span of the solve stands for all of it.
func untraced(ctx context.Context) context.Context {
	return trace.ContextWithSpanContext(ctx, trace.SpanContext{})
}

// solver is one call to BuildKit that reports progress on ch.
type solver func(ctx context.Context, cl *bk.Client, ch chan *bk.SolveStatus) (*bk.SolveResponse, error)

// stream connects, runs do and writes its progress to log, counting the
// steps on the way.
func (c Client) stream(ctx context.Context, log io.Writer, do solver) (*bk.SolveResponse, Steps, error) {
	ctx = untraced(ctx)
	cl, err := bk.New(ctx, c.Addr)
	if err != nil {
		return nil, Steps{}, fmt.Errorf("connect to buildkit at %s: %w", c.Addr, err)
	}
	defer cl.Close()

	display, err := progressui.NewDisplay(log, progressui.PlainMode)
	if err != nil {
		return nil, Steps{}, fmt.Errorf("progress display: %w", err)
	}
	ch, shown := make(chan *bk.SolveStatus), make(chan *bk.SolveStatus)
	var resp *bk.SolveResponse
	steps := stepCount{}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		resp, err = do(gctx, cl, ch)
		return err
	})
	g.Go(func() error {
		// The display reads until shown closes, so this never blocks
		// Solve for long.
		defer close(shown)
		for st := range ch {
			steps.add(st)
			shown <- st
		}
		return nil
	})
	g.Go(func() error {
		// The status channel must be drained until it closes, or Solve blocks.
		_, err := display.UpdateFrom(context.WithoutCancel(gctx), shown)
		return err
	})
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, Steps{}, stopped(ctx)
		}
		return nil, Steps{}, err
	}
	return resp, steps.steps(), nil
}

// stopped is the error of a build whose ctx ended. BuildKit reports a
// cancelled solve as its own gRPC error ("failed to solve: Canceled"), which
// matches neither ctx.Err() nor the cause the caller gave; callers need
// both to tell a cancel from a timeout from a failed Dockerfile.
func stopped(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == err {
		return fmt.Errorf("build stopped: %w", err)
	}
	return fmt.Errorf("build stopped: %w: %w", cause, err)
}

func solveOpt(req Request, auth session.Attachable) (bk.SolveOpt, error) {
	ctxFS, err := fsutil.NewFS(req.ContextDir)
	if err != nil {
		return bk.SolveOpt{}, fmt.Errorf("build context %s: %w", req.ContextDir, err)
	}
	if _, err := os.Stat(req.Dockerfile); err != nil {
		return bk.SolveOpt{}, fmt.Errorf("dockerfile: %w", err)
	}
	dfFS, err := fsutil.NewFS(filepath.Dir(req.Dockerfile))
	if err != nil {
		return bk.SolveOpt{}, fmt.Errorf("dockerfile dir: %w", err)
	}
	attrs := map[string]string{"filename": filepath.Base(req.Dockerfile)}
	if req.Target != "" {
		attrs["target"] = req.Target
	}
	if len(req.Platforms) > 0 {
		attrs["platform"] = strings.Join(req.Platforms, ",")
	}
	for _, k := range sortedKeys(req.Labels) {
		attrs["label:"+k] = req.Labels[k]
	}
	for _, k := range sortedKeys(req.BuildArgs) {
		attrs["build-arg:"+k] = req.BuildArgs[k]
	}
	if req.Provenance {
		attrs["attest:provenance"] = "mode=max"
	}
	if req.NoNetwork {
		// The dockerfile frontend's default for every RUN; a RUN's own
		// --network=default keeps it, and =host needs an entitlement
		// Slipway never grants.
		attrs["force-network-mode"] = "none"
	}
	opt := bk.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS},
		Exports:       []bk.ExportEntry{{Type: bk.ExporterImage, Attrs: exportAttrs(req)}},
		Session:       []session.Attachable{auth},
		SharedKey:     req.ContextKey,
	}
	if req.CacheRef != "" {
		opt.CacheImports = []bk.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": req.CacheRef}}}
		if !req.CacheLater {
			opt.CacheExports = cacheExport(req)
		}
	}
	return opt, nil
}

// cacheExport writes every step's cache (mode=max) to req.CacheRef.
func cacheExport(req Request) []bk.CacheOptionsEntry {
	return []bk.CacheOptionsEntry{{Type: "registry", Attrs: map[string]string{"ref": req.CacheRef, "mode": "max"}}}
}

// exportCacheOpt solves req again with no image and only the cache
// export: right after Build on the same daemon every step is in its local
// cache, so this walks the cache and uploads it, nothing is rebuilt.
func exportCacheOpt(req Request) (bk.SolveOpt, error) {
	if req.CacheRef == "" {
		return bk.SolveOpt{}, fmt.Errorf("export cache: no cache reference")
	}
	opt, err := solveOpt(req, auth(req.Credentials))
	if err != nil {
		return bk.SolveOpt{}, err
	}
	opt.Exports, opt.CacheImports, opt.CacheExports = nil, nil, cacheExport(req)
	return opt, nil
}

// ExportCache writes req's layer cache to req.CacheRef, after a Build of
// req with CacheLater.
func (c Client) ExportCache(ctx context.Context, req Request, log io.Writer) error {
	opt, err := exportCacheOpt(req)
	if err != nil {
		return err
	}
	_, _, err = c.solve(ctx, opt, log)
	return err
}

func exportAttrs(req Request) map[string]string {
	attrs := map[string]string{"push": fmt.Sprint(req.Push), "oci-mediatypes": "true"}
	if req.Image != "" {
		attrs["name"] = req.Image
		attrs["push-by-digest"] = "true"
	} else {
		attrs["name"] = strings.Join(req.Refs, ",")
	}
	for _, k := range sortedKeys(req.Annotations) {
		attrs["annotation."+k] = req.Annotations[k]
		if len(req.Platforms) > 1 {
			attrs["annotation-index."+k] = req.Annotations[k]
		}
	}
	return attrs
}

// auth answers BuildKit's requests for registry logins with creds.
func auth(creds Credentials) session.Attachable {
	return authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: func(_ context.Context, host string, _ []string, _ authprovider.ExpireCachedAuthCheck) (types.AuthConfig, error) {
			if creds == nil {
				return types.AuthConfig{}, nil
			}
			user, secret := creds(host)
			return types.AuthConfig{ServerAddress: host, Username: user, Password: secret}, nil
		},
	})
}

// Ping checks that the daemon answers and has a worker.
func (c Client) Ping(ctx context.Context) error {
	ctx = untraced(ctx)
	cl, err := bk.New(ctx, c.Addr)
	if err != nil {
		return fmt.Errorf("connect to buildkit at %s: %w", c.Addr, err)
	}
	defer cl.Close()
	ws, err := cl.ListWorkers(ctx)
	if err != nil {
		return fmt.Errorf("buildkit at %s: %w", c.Addr, err)
	}
	if len(ws) == 0 {
		return fmt.Errorf("buildkit at %s has no workers", c.Addr)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Prune empties BuildKit's local cache, as `buildctl prune --all` does.
func (c Client) Prune(ctx context.Context) error {
	ctx = untraced(ctx)
	cl, err := bk.New(ctx, c.Addr)
	if err != nil {
		return fmt.Errorf("connect to buildkit at %s: %w", c.Addr, err)
	}
	defer cl.Close()
	if err := cl.Prune(ctx, nil, bk.PruneAll); err != nil {
		return fmt.Errorf("prune buildkit cache: %w", err)
	}
	return nil
}
