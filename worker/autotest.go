package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipway-build/slipway/autotest"
	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/telemetry"
)

// DefaultTestTimeout bounds a compose test run when the repository sets no
// test_timeout.
const DefaultTestTimeout = 20 * time.Minute

var errTestTimedOut = errors.New("tests timed out")

// autotest runs the docker-compose.test.yml of the rule's context, when
// there is one, before the image is pushed; any failure of it fails the
// build.
func (w *Worker) autotest(ctx context.Context, repo model.Repo, b model.Build, dir string, req builder.Request, logw io.Writer, log *slog.Logger) (err error) {
	if w.Autotest == nil {
		return nil
	}
	file, ok, err := composeFile(dir, req.ContextDir)
	if err != nil || !ok {
		return err
	}
	ctx, span := telemetry.Start(ctx, w.tracer(), "test", trace.WithAttributes(attribute.String("slipway.test", "compose")))
	defer func() { telemetry.End(span, err) }()
	plan, err := autotest.Load(ctx, file, dir)
	if err != nil {
		return err
	}
	limit := testTimeout(repo)
	tctx, cancel := context.WithTimeoutCause(ctx, limit, errTestTimedOut)
	defer cancel()
	fmt.Fprintf(logw, "==> test %s (%d services, up to %s)\n", autotest.File, len(plan.Services), limit)
	err = w.Autotest.Run(tctx, autotest.Run{ID: b.ID, Plan: plan, Base: req, Log: logw, Logger: log})
	var failed autotest.Failed
	switch {
	case err == nil:
		fmt.Fprintf(logw, "==> test %s passed\n", autotest.File)
		return nil
	case ctx.Err() != nil:
		return err
	case errors.Is(context.Cause(tctx), errTestTimedOut):
		return TestFailure(fmt.Errorf("test %s: timed out after %s", autotest.File, limit))
	case errors.As(err, &failed):
		return TestFailure(fmt.Errorf("test %q failed: exit code %d", autotest.Sut, failed.Code))
	}
	return fmt.Errorf("test %s: %w", autotest.File, err)
}

// composeFile finds docker-compose.test.yml in the build's context; a link
// is followed, but only within the checkout.
func composeFile(dir, ctxDir string) (string, bool, error) {
	path := filepath.Join(ctxDir, autotest.File)
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", autotest.File, err)
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", false, fmt.Errorf("checkout: %w", err)
	}
	if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false, fmt.Errorf("%s resolves outside the repository", autotest.File)
	}
	return real, true, nil
}

// testTimeout is the repository's test_timeout, validated when stored.
func testTimeout(repo model.Repo) time.Duration {
	if d, err := time.ParseDuration(repo.TestTimeout); err == nil && d > 0 {
		return d
	}
	return DefaultTestTimeout
}
