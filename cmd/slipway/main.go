// Command slipway is the Slipway build service: `slipway serve` runs
// everything in one process.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `usage: slipway <command> [flags]

commands:
  serve     run webhooks, API, workers, NATS, registry and BuildKit in one process
  webhook   run only the webhook receivers (needs SLIPWAY_NATS_URL)
  api       run only the REST API (needs SLIPWAY_NATS_URL)
  worker    run only builds, deploy hooks, statuses and reconciliation
            (needs SLIPWAY_NATS_URL; its own SLIPWAY_BUILDKIT_ADDR or an embedded buildkitd)
  registry  run only the image registry and its token service on SLIPWAY_REGISTRY_LISTEN
            (needs SLIPWAY_NATS_URL); SLIPWAY_REGISTRY_ADDR is the name images use
            Roles join with commas: "slipway webhook,api" runs both in one process.
  builds    list, show, trigger, cancel and rebuild builds, print their logs
  repo      connect a repository on its Git host, list, disconnect
  token     create, list and revoke API tokens
  org       create organizations, manage their teams, public images and registry logins
  secrets   rotate the key sealing secrets at rest, seal a secret, make a key
  version   print the version and the commit it was built from
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "repo":
		err = repoCmd(ctx, os.Args[2:], os.Stdout)
	case "builds":
		err = builds(ctx, os.Args[2:], os.Stdout)
	case "token":
		err = tokenCmd(ctx, os.Args[2:], os.Stdout)
	case "org":
		err = orgCmd(ctx, os.Args[2:], os.Stdout)
	case "secrets":
		err = secretsCmd(ctx, os.Args[2:], os.Stdin, os.Stdout)
	case "version":
		fmt.Println(versionLine(debug.ReadBuildInfo()))
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		r, ok := parseRole(os.Args[1])
		if !ok {
			fmt.Fprintf(os.Stderr, "slipway: unknown command %q\n\n%s", os.Args[1], usage)
			os.Exit(2)
		}
		err = run(ctx, r, os.Args[2:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway:", err)
		os.Exit(1)
	}
}
