package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMarkdownHasTheMachineThenSectionsInOrder(t *testing.T) {
	m := Machine{CPU: "AMD EPYC", Cores: 2, MemoryGB: 23.5, Kernel: "6.18.44", Go: "go1.26.0",
		Commit: "a906030+dirty", BuildKit: "v0.34.2", NATS: "v2.15.3", Date: time.Date(2026, 12, 4, 20, 50, 0, 0, time.UTC)}
	got := Markdown(m, []Section{
		{Order: 4, Title: "Ingest", Body: "| c | req/s |\n|---|---|\n| 64 | 4000 |\n"},
		{Order: 5, Title: "Queue latency", Body: "p50 12 ms"},
	}, "bench/chart.png")
	want := `# Benchmarks

Written by ` + "`make bench`" + ` (bench/, one run); every section says what was measured against what.

| Machine | |
|---|---|
| CPU | AMD EPYC, 2 cores |
| Memory | 23.5 GB |
| Kernel | 6.18.44 |
| Go | go1.26.0 |
| Slipway | a906030+dirty |
| BuildKit | v0.34.2 |
| nats-server | v2.15.3 |
| Date | 2026-12-04 20:50 UTC |

![overhead per stage and ingest](bench/chart.png)

## 4. Ingest

| c | req/s |
|---|---|
| 64 | 4000 |

## 5. Queue latency

p50 12 ms
`
	if got != want {
		t.Errorf("Markdown:\n%s\nwant:\n%s", got, want)
	}
}

func TestRecordedSectionsComeInOrder(t *testing.T) {
	mu.Lock()
	saved := sections
	sections = nil
	mu.Unlock()
	defer func() { mu.Lock(); sections = saved; mu.Unlock() }()
	Record(Section{Order: 7, Title: "Memory"})
	Record(Section{Order: 4, Title: "Ingest"})
	got, _ := recorded()
	if len(got) != 2 || got[0].Title != "Ingest" || got[1].Title != "Memory" {
		t.Errorf("recorded sections %+v, want Ingest then Memory", got)
	}
}

func TestWriteReportWritesBothFiles(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n\nrequire (\n\tgithub.com/moby/buildkit v0.34.2\n\tgithub.com/nats-io/nats-server/v2 v2.15.3 // indirect\n)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "bench"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := writeReport(root); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(root, "BENCHMARKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"| BuildKit | v0.34.2 |", "| nats-server | v2.15.3 |", "![overhead per stage and ingest](bench/chart.png)"} {
		if !strings.Contains(string(md), line+"\n") {
			t.Errorf("BENCHMARKS.md lacks %q:\n%s", line, md)
		}
	}
	png, err := os.ReadFile(filepath.Join(root, "bench", "chart.png"))
	if err != nil {
		t.Fatal(err)
	}
	decode(t, png)
}
