package bench

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/google/pprof/profile"
)

// cpuShare is one line of a profile's summary: the share of CPU samples
// with a frame whose function name contains match (cumulative, so lines
// nest and overlap).
type cpuShare struct {
	what, match string
}

// ingestShares are the parts of the webhook path a missed ingest target
// is explained by.
var ingestShares = []cpuShare{
	{"HTTP serving (net/http), the handler included", "net/http.(*conn).serve"},
	{"the webhook handler", "webhook.(*Handler).ServeHTTP"},
	{"— decoding the payload (encoding/json)", "encoding/json.Unmarshal"},
	{"— the build's record and index entry (store.CreateBuild)", "store.(*Store).CreateBuild"},
	{"— the job and pending status (queue.SubmitBuild)", "queue.(*Queue).SubmitBuild"},
	{"— the ref's newest push (store.Supersede)", "store.(*Store).Supersede"},
	{"— looking the delivery up (store.SeenDelivery)", "store.(*Store).SeenDelivery"},
	{"— recording the delivery (store.RecordDelivery)", "store.(*Store).RecordDelivery"},
	{"NATS JetStream storing messages", "server.(*stream).internalLoop"},
	{"— the file store's write system calls (pwrite, one per message)", "syscall.pwrite"},
	{"NATS reading its client connections", "server.(*client).readLoop"},
	{"memory allocation (runtime.mallocgc)", "runtime.mallocgc"},
	{"garbage collection (runtime.gcBgMarkWorker)", "runtime.gcBgMarkWorker"},
}

// profileTable sums a CPU profile of whose (a process, named in the
// heading) into shares: what the CPU was spent on, as a Markdown table.
func profileTable(raw []byte, shares []cpuShare, whose string) (string, error) {
	p, err := profile.Parse(bytes.NewReader(raw))
	if err != nil {
		return "", fmt.Errorf("parse CPU profile: %w", err)
	}
	cpu := len(p.SampleType) - 1 // nanoseconds of CPU, after the count
	sums := make([]int64, len(shares))
	var total int64
	for _, s := range p.Sample {
		v := s.Value[cpu]
		total += v
		for i, sh := range shares {
			if hasFrame(s, sh.match) {
				sums[i] += v
			}
		}
	}
	if total == 0 {
		return "", fmt.Errorf("CPU profile has no samples")
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "| Where %s CPU went (%.2f s of samples) | share |\n|---|---|\n", whose, float64(total)/1e9)
	for i, sh := range shares {
		fmt.Fprintf(&sb, "| %s | %.1f%% |\n", sh.what, 100*float64(sums[i])/float64(total))
	}
	return sb.String(), nil
}

func hasFrame(s *profile.Sample, match string) bool {
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil && strings.Contains(line.Function.Name, match) {
				return true
			}
		}
	}
	return false
}
