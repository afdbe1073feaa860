package rig

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// The fault tests write what they measured to RELIABILITY.md: one section
// per test, replaced on every `make chaos` run (e2e's TestMain decides), the
// others kept.
var reliability = struct {
	sync.Mutex
	sections map[string][]string
}{sections: map[string][]string{}}

// Report records a fault test's figures under its heading.
func Report(heading string, lines ...string) {
	reliability.Lock()
	defer reliability.Unlock()
	reliability.sections[heading] = lines
}

const reliabilityHeader = "# Reliability\n\nWritten by the fault tests in `e2e/chaos_test.go` and `e2e/chaos_load_test.go` (written only by `make chaos`) on real processes: slipway roles, NATS JetStream, buildkitd, a distribution registry, git http-backend. Each section is replaced when its test runs again.\n"

// WriteReliability merges the recorded sections into the file at path.
func WriteReliability(path string) error {
	reliability.Lock()
	defer reliability.Unlock()
	if len(reliability.sections) == 0 {
		return nil
	}
	sections := map[string]string{}
	if raw, err := os.ReadFile(path); err == nil {
		for _, part := range strings.Split(string(raw), "\n## ")[1:] {
			heading, body, _ := strings.Cut(part, "\n")
			sections[heading] = body
		}
	}
	stamp := time.Now().UTC().Format("2006-01-02 15:04 UTC")
	for heading, lines := range reliability.sections {
		sections[heading] = fmt.Sprintf("\n_Run %s._\n\n%s\n", stamp, strings.Join(lines, "\n"))
	}
	headings := make([]string, 0, len(sections))
	for h := range sections {
		headings = append(headings, h)
	}
	// Headings start with the fault's number: order by it, not as text.
	sort.Slice(headings, func(i, j int) bool { return number(headings[i]) < number(headings[j]) })
	var b strings.Builder
	b.WriteString(reliabilityHeader)
	for _, h := range headings {
		fmt.Fprintf(&b, "\n## %s\n%s", h, strings.TrimRight(sections[h], "\n")+"\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func number(heading string) int {
	n := 0
	for _, c := range heading {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
