package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// cli is what every command shares: the process's streams and
// environment, and the root's flags. Tests make their own.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// terminal says stdout is a terminal: long waits draw a progress
	// line there. stdinTerminal lets login ask for the token.
	terminal, stdinTerminal bool

	// The root's flags.
	server, token, output string
}

// Exit codes: 0 done, 1 failed (a failed build, a refused call), 2 the
// command line was wrong.
const (
	exitFailed = 1
	exitUsage  = 2
)

// exitError ends the process with code, printing err when there is one.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// usageErr is a mistake on the command line: exit code 2.
func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// execute runs the command line args and answers the exit code.
func execute(ctx context.Context, c *cli, args []string) int {
	root := newRoot(c)
	root.SetArgs(args)
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := exitFailed
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
		err = ee.err
	}
	fmt.Fprintln(c.stderr, "slipway:", err)
	return code
}

const rootLong = `Slipway turns every git push into a container image.

The server: serve runs everything in one process; webhook, api, worker and
registry run one part each against a shared NATS (SLIPWAY_NATS_URL), and
roles joined by commas ("slipway webhook,api") run together.

The client: log in once (slipway login --server URL), then manage
repositories, rules, builds, logs, tokens and images of that server.
Tables by default, -o json for scripts.`

func newRoot(c *cli) *cobra.Command {
	var configFile string
	root := &cobra.Command{
		Use:   "slipway",
		Short: "Slipway builds container images from git pushes",
		Long:  rootLong,
		// An unknown first word may be roles joined by commas.
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch c.output {
			case "", "table", "json":
				return nil
			}
			return usageErr("-o %s: want table or json", c.output)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return helpExit(cmd)
			}
			r, ok := parseRole(args[0])
			if !ok || len(args) > 1 {
				return unknownCommand(cmd, args[0])
			}
			return runRole(cmd.Context(), r, configFile)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: exitUsage, err: err} })
	pf := root.PersistentFlags()
	pf.StringVar(&c.server, "server", "", "Slipway server URL (default $SLIPWAY_URL, the login's, else http://localhost:8080)")
	pf.StringVar(&c.token, "token", "", "API token (default $SLIPWAY_API_TOKEN, else the login's)")
	pf.StringVarP(&c.output, "output", "o", "", "output format: table or json")
	root.Flags().StringVar(&configFile, "config", "", "with roles joined by commas: YAML config file")
	_ = root.Flags().MarkHidden("config")

	root.AddGroup(&cobra.Group{ID: "server", Title: "Server commands:"}, &cobra.Group{ID: "client", Title: "Client commands:"})
	for _, name := range []string{"serve", "webhook", "api", "worker", "registry"} {
		root.AddCommand(roleCmd(roles[name]))
	}
	root.AddCommand(healthcheckCmd(c), versionCmd(c))
	root.AddCommand(loginCmd(c), logoutCmd(c), whoamiCmd(c), repoCmd(c), ruleCmd(c), buildsCmd(c), buildCmd(c),
		logsCmd(c), triggerCmd(c, "table"), cancelCmd(c, "table"), rebuildCmd(c, "table"), tokenCmd(c), orgCmd(c), imageCmd(c), secretsCmd(c))
	for _, cmd := range root.Commands() {
		if cmd.GroupID == "" {
			cmd.GroupID = "client"
		}
	}
	root.SetHelpCommandGroupID("client")
	root.SetCompletionCommandGroupID("client")
	return root
}

// roleDoc says what each role runs.
var roleDoc = map[string]string{
	"serve":    "run webhooks, API, workers, NATS, registry and BuildKit in one process",
	"webhook":  "run only the webhook receivers (needs SLIPWAY_NATS_URL)",
	"api":      "run only the REST API (needs SLIPWAY_NATS_URL)",
	"worker":   "run only builds, deploy hooks, statuses and reconciliation (needs SLIPWAY_NATS_URL)",
	"registry": "run only the image registry and its token service on SLIPWAY_REGISTRY_LISTEN (needs SLIPWAY_NATS_URL)",
}

func roleCmd(r role) *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:     r.name,
		Short:   roleDoc[r.name],
		GroupID: "server",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRole(cmd.Context(), r, configFile)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "YAML config file (environment variables override it)")
	return cmd
}

func healthcheckCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "healthcheck",
		Short:   "exit 0 when the Slipway on this host answers /healthz on SLIPWAY_HTTP_ADDR's port, else 1",
		GroupID: "server",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return healthcheck(cmd.Context(), c.getenv)
		},
	}
}

func versionCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "print the version and the commit it was built from",
		GroupID: "server",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(c.stdout, versionLine(debug.ReadBuildInfo()))
			return err
		},
	}
}

// group is a command whose subcommands do the work: alone it prints its
// help and exits 2, with an unknown word it says so.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return helpExit(cmd)
			}
			return unknownCommand(cmd, args[0])
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

func helpExit(cmd *cobra.Command) error {
	cmd.SetOut(cmd.ErrOrStderr())
	_ = cmd.Help()
	return &exitError{code: exitUsage}
}

func unknownCommand(cmd *cobra.Command, word string) error {
	hint := ""
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(word); len(s) > 0 {
		hint = "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageErr("unknown command %q for %q%s (see %s --help)", word, cmd.CommandPath(), hint, cmd.CommandPath())
}

// noArgs, exactArgs and rangeArgs are cobra's checks as usage errors
// that name what is missing.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

func exactArgs(what ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(what) {
			return usageErr("%s: want %s (see %s --help)", cmd.CommandPath(), strings.Join(what, " "), cmd.CommandPath())
		}
		return nil
	}
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErr("%s: want %s (see %s --help)", cmd.CommandPath(), what, cmd.CommandPath())
		}
		return nil
	}
}
