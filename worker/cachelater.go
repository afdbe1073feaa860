package worker

import (
	"context"
	"io"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/telemetry"
)

// cacheExporter is a Builder that can write a build's registry cache after
// the build (builder.Client and builder.Pool): the worker then builds with
// CacheLater and exports the cache once the deploy hooks are queued, so
// the export's upload is not on the path to them.
type cacheExporter interface {
	ExportCache(ctx context.Context, req builder.Request, log io.Writer) error
}

// deferredExport is a pushed build's registry cache export, and the
// removal of the checkout it needs.
type deferredExport struct {
	req     builder.Request
	cleanup func()
}

// afterFinish runs d once the build's end is stored: the cache export
// when export says the build pushed and was recorded, then the checkout's
// removal in any case. A failed export is only logged: the image is
// pushed and announced, and the next build on this daemon finds its local
// cache all the same.
func (w *Worker) afterFinish(ctx context.Context, d *deferredExport, export bool, timeout time.Duration, log *slog.Logger) {
	if d == nil {
		return
	}
	defer d.cleanup()
	ce, ok := w.Builder.(cacheExporter)
	if !export || !ok || ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx, span := telemetry.Start(ctx, w.tracer(), "cache", trace.WithAttributes(attribute.String("slipway.cache.ref", d.req.CacheRef)))
	defer span.End()
	start := time.Now()
	if err := ce.ExportCache(ctx, d.req, io.Discard); err != nil {
		telemetry.Fail(span, err)
		log.Warn("export the registry cache after the build; the next build may miss it on another daemon", "ref", d.req.CacheRef, "err", err)
		return
	}
	log.Debug("registry cache exported", "ref", d.req.CacheRef, "took", time.Since(start))
}
