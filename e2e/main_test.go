package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipway-build/slipway/e2e/rig"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := rig.WriteReliability(filepath.Join("..", "RELIABILITY.md")); err != nil {
		fmt.Fprintln(os.Stderr, "write RELIABILITY.md:", err)
		code = 1
	}
	os.Exit(code)
}
