package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipway-build/slipway/e2e/rig"
)

// reliabilityEnv opts a run into rewriting RELIABILITY.md. Only `make chaos`
// sets it, so that the committed figures come from that one deliberate run
// and not from whichever e2e run happened last.
const reliabilityEnv = "SLIPWAY_WRITE_RELIABILITY"

func TestMain(m *testing.M) {
	code := m.Run()
	if os.Getenv(reliabilityEnv) != "1" {
		os.Exit(code)
	}
	if err := rig.WriteReliability(filepath.Join("..", "RELIABILITY.md")); err != nil {
		fmt.Fprintln(os.Stderr, "write RELIABILITY.md:", err)
		code = 1
	}
	os.Exit(code)
}
