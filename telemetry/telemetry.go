// Package telemetry names what Slipway's traces and logs say about a
// build: the attributes every span about a build carries, the keys every
// log line about a build carries, and the tracer of a provider that may be
// absent. Packages take a trace.TracerProvider in their option structs;
// cmd/slipway makes the one provider (or none: tracing is off by default),
// so there is no global one to find.
package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/redact"
)

// Scope is the instrumentation scope of every Slipway span.
const Scope = "github.com/slipway-build/slipway"

// Span attributes.
const (
	// BuildID is on every span about one build.
	BuildID = attribute.Key("slipway.build.id")
	// BuildIDs are the builds a webhook queued.
	BuildIDs = attribute.Key("slipway.build.ids")
	// Repository is the repository's full name ("acme/demo").
	Repository = attribute.Key("slipway.repository")
	// Organization owns the repository and its builds.
	Organization = attribute.Key("slipway.organization")
	// Host is the Git host a webhook came from (the provider: github, ...).
	Host = attribute.Key("slipway.host")
	// Delivery is the Git host's id of a webhook delivery.
	Delivery = attribute.Key("slipway.delivery")
)

// Tracer is the tracer of tp; nil (tracing off) is a no-op tracer.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(Scope)
}

// Build names a build in spans and logs.
type Build struct {
	ID   string
	Repo string // the repository's full name
	Org  string
}

// Of names b, whose repository is repo. The organization is the build's
// own (recorded when it was made), else the repository's.
func Of(b model.Build, repo model.Repo) Build {
	org := b.Org
	if org == "" && repo.FullName != "" {
		org = repo.Organization()
	}
	return Build{ID: b.ID, Repo: repo.FullName, Org: org}
}

// Attrs are the span attributes of b.
func (b Build) Attrs() []attribute.KeyValue {
	return []attribute.KeyValue{BuildID.String(b.ID), Repository.String(b.Repo), Organization.String(b.Org)}
}

// Log is l with b's keys, build, repo and org, on every line: derived once
// per build, not written at each call.
func (b Build) Log(l *slog.Logger) *slog.Logger {
	return l.With("build", b.ID, "repo", b.Repo, "org", b.Org)
}

// buildKey is the context key of the build that work under a context is
// about.
type buildKey struct{}

// With is ctx about build b: the spans Start makes under it name b.
func With(ctx context.Context, b Build) context.Context {
	return context.WithValue(ctx, buildKey{}, b)
}

// From is the build ctx is about, if any.
func From(ctx context.Context) (Build, bool) {
	b, ok := ctx.Value(buildKey{}).(Build)
	return b, ok
}

// Start starts a span under ctx's span, with the attributes of the build
// ctx is about (With): the parts of a build's work make their spans
// without being handed its names.
func Start(ctx context.Context, t trace.Tracer, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if b, ok := From(ctx); ok {
		opts = append(opts, trace.WithAttributes(b.Attrs()...))
	}
	return t.Start(ctx, name, opts...)
}

// End ends span, marked failed with err's message when err is not nil.
// The message is redacted: an error may quote a URL with credentials, and
// spans leave the process.
func End(span trace.Span, err error) {
	Fail(span, err)
	span.End()
}

// Fail marks span failed with err's redacted message; a nil err leaves it.
func Fail(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, redact.Text(err.Error()))
	}
}
