// Command slipway is the Slipway build service: `slipway serve` runs
// everything in one process, and the same binary is the command-line
// client of a running Slipway (`slipway login`, `repo`, `builds`, `logs`).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	c := &cli{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv,
		terminal:      term.IsTerminal(int(os.Stdout.Fd())), // #nosec G115 -- a file descriptor fits an int
		stdinTerminal: term.IsTerminal(int(os.Stdin.Fd())),  // #nosec G115 -- a file descriptor fits an int
	}
	code := execute(ctx, c, os.Args[1:])
	stop()
	os.Exit(code)
}
