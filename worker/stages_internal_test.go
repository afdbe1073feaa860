package worker

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The stages line names each stage once, in the order they first ended,
// with a stage ended twice added up.
func TestStagesLine(t *testing.T) {
	st := newStages()
	st.done("clone")
	time.Sleep(2 * time.Millisecond)
	st.done("build")
	st.done("clone")
	var log strings.Builder
	st.write(&log)
	re := regexp.MustCompile(`^==> stages: clone (\d+\.\d)ms build (\d+\.\d)ms\n$`)
	m := re.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("stages line %q, want clone then build, each once", log.String())
	}
	if ms, _ := strconv.ParseFloat(m[2], 64); ms < 2 {
		t.Errorf("build took %sms, want at least the 2ms slept", m[2])
	}
}

// An attempt that ended before any stage writes no stages line.
func TestStagesLineEmpty(t *testing.T) {
	var log strings.Builder
	newStages().write(&log)
	if log.Len() != 0 {
		t.Errorf("stages line %q, want none", log.String())
	}
}
