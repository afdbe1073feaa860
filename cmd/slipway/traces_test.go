package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/telemetry"
)

// clearTraceEnv unsets every OpenTelemetry variable newTraces or the
// exporter reads, so that the machine's own cannot leak into a test.
func clearTraceEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
			_ = os.Unsetenv(k)
		}
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Without an OTLP endpoint there is no provider: every part gets nil and
// makes no-op spans, which record nothing and carry no trace context
// (so no traceparent goes into any NATS message).
func TestTracesOffWithoutAnOTLPEndpoint(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"no endpoint":                    {"OTEL_SERVICE_NAME": "slipway-eu"},
		"OTEL_SDK_DISABLED=true":         {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
		"OTEL_TRACES_EXPORTER=none":      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces", "OTEL_TRACES_EXPORTER": "none"},
		"endpoint of blanks is no value": {"OTEL_EXPORTER_OTLP_ENDPOINT": "  "},
	} {
		t.Run(name, func(t *testing.T) {
			clearTraceEnv(t)
			for k, v := range env {
				t.Setenv(k, v)
			}
			tp, shutdown, err := newTraces(t.Context(), os.Getenv, "serve", quiet())
			if err != nil {
				t.Fatal(err)
			}
			if tp != nil {
				t.Fatalf("provider %T; want none (nil), so that nothing is exported", tp)
			}
			if err := shutdown(t.Context()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			_, span := telemetry.Tracer(tp).Start(context.Background(), "webhook")
			defer span.End()
			if span.IsRecording() || span.SpanContext().IsValid() {
				t.Errorf("a span of the nil provider records (%v) or has a trace id (%v); want neither",
					span.IsRecording(), span.SpanContext().TraceID())
			}
		})
	}
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, spans go over OTLP/HTTP to that
// endpoint, from service "slipway" with the role, and the batch still
// waiting is sent at shutdown.
func TestTracesExportedToTheOTLPEndpoint(t *testing.T) {
	recv := rig.StartOTLPReceiver(t)
	clearTraceEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "60000") // only the shutdown sends
	tp, shutdown, err := newTraces(t.Context(), os.Getenv, "worker", quiet())
	if err != nil {
		t.Fatal(err)
	}
	if tp == nil {
		t.Fatal("no provider although OTEL_EXPORTER_OTLP_ENDPOINT is set")
	}
	b := telemetry.Build{ID: "0123456789abcdef0123", Repo: "acme/demo", Org: "acme"}
	ctx, span := telemetry.Tracer(tp).Start(telemetry.With(t.Context(), b), "build", trace.WithAttributes(b.Attrs()...))
	_, child := telemetry.Start(ctx, telemetry.Tracer(tp), "clone")
	child.End()
	span.End()
	if got := recv.Spans(); len(got) != 0 {
		t.Fatalf("%d spans sent before shutdown with a minute's batch delay", len(got))
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	got := recv.Spans()
	if len(got) != 2 {
		t.Fatalf("received %d spans, want 2: %+v", len(got), got)
	}
	for _, s := range got {
		if s.Service != "slipway" || s.Resource["slipway.role"] != "worker" || s.Scope != "github.com/slipway-build/slipway" {
			t.Errorf("span %s from service %q, role %q, scope %q; want slipway, worker, github.com/slipway-build/slipway",
				s.Name, s.Service, s.Resource["slipway.role"], s.Scope)
		}
		if s.Attrs["slipway.build.id"] != "0123456789abcdef0123" || s.Attrs["slipway.repository"] != "acme/demo" || s.Attrs["slipway.organization"] != "acme" {
			t.Errorf("span %s attributes %v; want the build's id, repository and organization", s.Name, s.Attrs)
		}
	}
	if got[0].Name != "clone" || got[1].Name != "build" || got[0].ParentID != got[1].SpanID || got[0].TraceID != got[1].TraceID {
		t.Errorf("spans %+v; want clone, then its parent build, in one trace", got)
	}
}

// OTEL_SERVICE_NAME names the service instead of "slipway".
func TestTracesServiceNameFromTheEnvironment(t *testing.T) {
	recv := rig.StartOTLPReceiver(t)
	clearTraceEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", recv.URL+"/v1/traces")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "slipway-eu")
	tp, shutdown, err := newTraces(t.Context(), os.Getenv, "serve", quiet())
	if err != nil {
		t.Fatal(err)
	}
	_, span := telemetry.Tracer(tp).Start(t.Context(), "webhook")
	span.End()
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := recv.Spans(); len(got) != 1 || got[0].Service != "slipway-eu" || got[0].Name != "webhook" {
		t.Errorf("received %+v; want one webhook span from service slipway-eu", got)
	}
}

// A protocol Slipway cannot export with stops start-up, naming the key.
func TestTracesRefuseAnUnknownProtocol(t *testing.T) {
	clearTraceEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	_, _, err := newTraces(t.Context(), os.Getenv, "serve", quiet())
	want := `OTEL_EXPORTER_OTLP_PROTOCOL: want http/protobuf or grpc, got "http/json"`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// SLIPWAY_LOG_FORMAT=json writes one JSON object a line, as redacted as
// the text lines.
func TestJSONLogLines(t *testing.T) {
	var out strings.Builder
	log := newLogger("info", "json", &out).With("role", "worker")
	log.Info("clone failed", "build", "b1", "err", "fetch https://x-access-token:ghs_secret@github.com/acme/demo.git: 404")
	log.Debug("not at info")
	want := `"msg":"clone failed","role":"worker","build":"b1","err":"fetch https://github.com/acme/demo.git: 404"}`
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `{"time":"`) || !strings.Contains(lines[0], `"level":"INFO"`) || !strings.HasSuffix(lines[0], want) {
		t.Errorf("log:\n%s\nwant one JSON line ending %s", out.String(), want)
	}
}
