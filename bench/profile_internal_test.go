package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// A profile of three samples: 3 s in the handler's Enqueue, 1 s in NATS,
// summed by frame.
func TestProfileTable(t *testing.T) {
	fn := func(id uint64, name string) *profile.Function { return &profile.Function{ID: id, Name: name} }
	serve, enqueue, loop := fn(1, "net/http.(*conn).serve"), fn(2, "github.com/slipway-build/slipway/queue.(*Queue).Enqueue"), fn(3, "github.com/nats-io/nats-server/v2/server.(*stream).internalLoop")
	loc := func(id uint64, f *profile.Function) *profile.Location {
		return &profile.Location{ID: id, Line: []profile.Line{{Function: f}}}
	}
	lServe, lEnqueue, lLoop := loc(1, serve), loc(2, enqueue), loc(3, loop)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{lEnqueue, lServe}, Value: []int64{1, 2e9}},
			{Location: []*profile.Location{lEnqueue, lServe}, Value: []int64{1, 1e9}},
			{Location: []*profile.Location{lLoop}, Value: []int64{1, 1e9}},
		},
		Location: []*profile.Location{lServe, lEnqueue, lLoop},
		Function: []*profile.Function{serve, enqueue, loop},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := profileTable(buf.Bytes(), []cpuShare{
		{"serving", "net/http.(*conn).serve"}, {"storing", "queue.(*Queue).Enqueue"}, {"nats", "server.(*stream).internalLoop"}, {"gc", "runtime.gcBgMarkWorker"},
	}, "the test's")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| Where the test's CPU went (4.00 s of samples) | share |", "| serving | 75.0% |", "| storing | 75.0% |", "| nats | 25.0% |", "| gc | 0.0% |"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}
