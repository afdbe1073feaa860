package source

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// checkoutCLI checks c.Commit out with the git command. It reads only
// c.Dir and, through its alternates, the mirror: no network, so the
// outbound guard has nothing to judge.
func checkoutCLI(ctx context.Context, c Checkout) error {
	var stderr bytes.Buffer
	// #nosec G204 -- fixed subcommand; c.Commit is checked to be a full hash and c.Dir is Slipway's own work dir.
	cmd := exec.CommandContext(ctx, "git", "-C", c.Dir, "-c", "core.hooksPath="+os.DevNull,
		"checkout", "--quiet", "--force", "--detach", c.Commit, "--")
	cmd.Env = cliEnv()
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git checkout %s: %w: %s", c.Commit, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// cliEnv keeps the machine's and the user's git configuration (hooks,
// filters, credential helpers) out of Slipway's git commands.
func cliEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.DevNull,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
	}
}
