package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine is what BENCHMARKS.md says the figures were measured on.
type Machine struct {
	CPU      string // /proc/cpuinfo's model name
	Cores    int
	MemoryGB float64
	Kernel   string
	Go       string
	Commit   string // Slipway's, with +dirty for a dirty checkout
	BuildKit string // module versions from go.mod
	NATS     string
	Date     time.Time
}

// Markdown renders BENCHMARKS.md: the machine, then the sections in the
// order given, then the chart when there is one.
func Markdown(m Machine, sections []Section, chart string) string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by `make bench` (bench/, one run); every section says what was measured against what.\n\n")
	b.WriteString("| Machine | |\n|---|---|\n")
	fmt.Fprintf(&b, "| CPU | %s, %d cores |\n", m.CPU, m.Cores)
	fmt.Fprintf(&b, "| Memory | %.1f GB |\n", m.MemoryGB)
	fmt.Fprintf(&b, "| Kernel | %s |\n", m.Kernel)
	fmt.Fprintf(&b, "| Go | %s |\n", m.Go)
	fmt.Fprintf(&b, "| Slipway | %s |\n", m.Commit)
	fmt.Fprintf(&b, "| BuildKit | %s |\n", m.BuildKit)
	fmt.Fprintf(&b, "| nats-server | %s |\n", m.NATS)
	fmt.Fprintf(&b, "| Date | %s |\n", m.Date.UTC().Format("2006-01-02 15:04 MST"))
	if chart != "" {
		fmt.Fprintf(&b, "\n![overhead per stage and ingest](%s)\n", chart)
	}
	for _, s := range sections {
		fmt.Fprintf(&b, "\n## %d. %s\n\n%s\n", s.Order, s.Title, strings.TrimSpace(s.Body))
	}
	return b.String()
}

// ThisMachine reads the machine's facts; root is the module's directory.
// A fact that cannot be read says "unknown".
func ThisMachine(root string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now(), CPU: "unknown", Kernel: "unknown", Commit: "unknown"}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64)
		if err == nil {
			m.MemoryGB = kb / (1 << 20)
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	m.Commit = commit(root)
	if raw, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil { // #nosec G304 -- the module's own go.mod
		m.BuildKit = moduleVersion(string(raw), "github.com/moby/buildkit")
		m.NATS = moduleVersion(string(raw), "github.com/nats-io/nats-server/v2")
	}
	return m
}

// procField answers the first "key: value" line's value of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path) // #nosec G304 -- fixed /proc paths
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output() // #nosec G204 -- root is the module's directory
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if exec.Command("git", "-C", root, "diff", "--quiet", "HEAD").Run() != nil { // #nosec G204 -- as above
		c += "+dirty"
	}
	return c
}

// moduleVersion finds a module's version in go.mod's text.
func moduleVersion(gomod, module string) string {
	for _, line := range strings.Split(gomod, "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == module {
			return f[1]
		}
	}
	return "unknown"
}
