package rig

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// OTLPReceiver is an OpenTelemetry collector's OTLP/HTTP trace endpoint
// on loopback: it decodes every ExportTraceServiceRequest (protobuf,
// gzipped or not) posted to /v1/traces and keeps its spans.
type OTLPReceiver struct {
	// URL is what OTEL_EXPORTER_OTLP_ENDPOINT names: the exporter posts to
	// URL/v1/traces.
	URL   string
	mu    sync.Mutex
	spans []Span
	bad   []string
}

// Span is one received span, its ids in hex and its attribute values as
// text (a list as its items joined with commas).
type Span struct {
	Service  string // the resource's service.name
	Resource map[string]string
	Scope    string
	Name     string
	TraceID  string
	SpanID   string
	ParentID string // "" for a root span
	Kind     string // SPAN_KIND_SERVER, ...
	Attrs    map[string]string
	Error    string // the status message of a span whose status is error
}

// StartOTLPReceiver serves an OTLP/HTTP trace endpoint until the test ends.
func StartOTLPReceiver(t testing.TB) *OTLPReceiver {
	r := &OTLPReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if bad := r.Bad(); len(bad) > 0 {
			t.Errorf("OTLP receiver got requests it could not read: %v", bad)
		}
	})
	r.URL = srv.URL
	return r
}

func (r *OTLPReceiver) serve(w http.ResponseWriter, req *http.Request) {
	req2, err := r.decode(req)
	if err != nil {
		r.mu.Lock()
		r.bad = append(r.bad, err.Error())
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range req2.GetResourceSpans() {
		res := attrText(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{
					Service: res["service.name"], Resource: res, Scope: ss.GetScope().GetName(), Name: s.GetName(),
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					Kind: s.GetKind().String(), Attrs: attrText(s.GetAttributes()),
				}
				if len(s.GetParentSpanId()) > 0 {
					sp.ParentID = hex.EncodeToString(s.GetParentSpanId())
				}
				if s.GetStatus().GetCode().String() == "STATUS_CODE_ERROR" {
					sp.Error = s.GetStatus().GetMessage()
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	raw, _ := proto.Marshal(&collector.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(raw)
}

func (r *OTLPReceiver) decode(req *http.Request) (*collector.ExportTraceServiceRequest, error) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		return nil, fmt.Errorf("%s %s: want POST /v1/traces", req.Method, req.URL.Path)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		return nil, fmt.Errorf("content type %q: want application/x-protobuf", ct)
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	}
	raw, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		return nil, err
	}
	var out collector.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode ExportTraceServiceRequest: %w", err)
	}
	return &out, nil
}

// attrText is attributes as text.
func attrText(kvs []*common.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		out[kv.GetKey()] = valueText(kv.GetValue())
	}
	return out
}

func valueText(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *common.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *common.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *common.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, valueText(e))
		}
		return strings.Join(parts, ",")
	}
	return v.String()
}

// Spans are the spans received so far.
func (r *OTLPReceiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Bad are the requests that could not be read, as errors.
func (r *OTLPReceiver) Bad() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// WaitSpans waits up to limit until done says the spans received are
// enough, and answers them; the test fails with what came otherwise.
func (r *OTLPReceiver) WaitSpans(t testing.TB, limit time.Duration, done func([]Span) bool) []Span {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		spans := r.Spans()
		if done(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.Name)
			}
			t.Fatalf("spans received within %s: %v", limit, names)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
