package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipway-build/slipway/redact"
)

// traceEnv are the standard OpenTelemetry variables that turn tracing on:
// without an endpoint there is nowhere to send spans, and nothing is made.
var traceEnv = []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"}

// noTraces is the shutdown of a process that makes no spans.
func noTraces(context.Context) error { return nil }

// newTraces is the process's tracer provider: spans batched to an OTLP
// endpoint when the OpenTelemetry environment names one, nil (no spans at
// all) otherwise. The exporter reads its own variables (endpoint,
// headers, timeout, certificates, OTEL_EXPORTER_OTLP_*), the provider its
// sampler and batching (OTEL_TRACES_SAMPLER, OTEL_BSP_*), the resource
// OTEL_SERVICE_NAME ("slipway" when unset) and OTEL_RESOURCE_ATTRIBUTES.
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none keep it off.
//
// The exporter does not dial through the outbound guard: the endpoint is
// the operator's own collector, set like SLIPWAY_NATS_URL, and most often
// on loopback or a private network (a sidecar, a node agent), exactly what
// the guard refuses; nothing a repository or a webhook sends can name it.
//
// shutdown sends what is still batched; call it once the work is done.
func newTraces(ctx context.Context, getenv func(string) string, role string, logger *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	endpoint := firstSet(getenv, traceEnv...)
	if endpoint == "" || strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return nil, noTraces, nil
	}
	protocol := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		protocol = "http/protobuf"
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: want http/protobuf or grpc, got %q", protocol)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		// Listed before the environment's, which win.
		resource.WithAttributes(semconv.ServiceName("slipway"), semconv.ServiceVersion(version), attribute.String("slipway.role", role)),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	logger.Info("traces are exported over OTLP", "endpoint", redact.URL(endpoint), "protocol", protocol)
	return tp, tp.Shutdown, nil
}

// firstSet is the value of the first of keys that is set.
func firstSet(getenv func(string) string, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
	}
	return ""
}
