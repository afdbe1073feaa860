package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/slipway-build/slipway/api"
)

const buildsUsage = `usage: slipway builds <list|show|trigger|cancel|rebuild|log> [flags] [args]

  list [--repo ID]                      builds, newest first
  show BUILD                            one build as JSON
  trigger --repo ID [--ref REF] [--commit SHA]
                                        build a ref's tip or a commit
  cancel BUILD                          cancel a queued or running build
  rebuild BUILD                         run a finished build again
  log BUILD                             the build's log so far

The server is $SLIPWAY_URL (default http://localhost:8080); the token is
$SLIPWAY_API_TOKEN, else ./data/api-token.
`

// builds is the CLI over the API's build calls.
func builds(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", buildsUsage)
	}
	fs := flag.NewFlagSet("builds "+args[0], flag.ContinueOnError)
	server := fs.String("server", envOr("SLIPWAY_URL", "http://localhost:8080"), "Slipway server URL")
	repo := fs.String("repo", "", "repository id")
	ref := fs.String("ref", "", "full ref, e.g. refs/heads/main or refs/tags/v1.2.3")
	commit := fs.String("commit", "", "commit hash")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	token, err := cliToken()
	if err != nil {
		return err
	}
	c := api.Client{BaseURL: *server, Token: token}
	arg := func() (string, error) {
		if fs.NArg() != 1 {
			return "", fmt.Errorf("builds %s: want one build id", args[0])
		}
		return fs.Arg(0), nil
	}
	switch args[0] {
	case "list":
		list, err := c.Builds(ctx, *repo)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tREF\tCOMMIT\tTAGS\tCREATED")
		for _, b := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.7s\t%s\t%s\n", b.ID, b.Status, b.Ref, b.Commit, strings.Join(b.Tags, ","), b.CreatedAt.Format("2006-01-02 15:04:05"))
		}
		return tw.Flush()
	case "trigger":
		if *repo == "" {
			return fmt.Errorf("builds trigger: --repo is required")
		}
		b, err := c.Trigger(ctx, *repo, *ref, *commit)
		return printJSON(stdout, b, err)
	case "show", "cancel", "rebuild", "log":
		id, err := arg()
		if err != nil {
			return err
		}
		switch args[0] {
		case "show":
			b, err := c.Build(ctx, id)
			return printJSON(stdout, b, err)
		case "cancel":
			b, err := c.Cancel(ctx, id)
			return printJSON(stdout, b, err)
		case "rebuild":
			b, err := c.Rebuild(ctx, id)
			return printJSON(stdout, b, err)
		}
		log, err := c.Log(ctx, id)
		if err != nil {
			return err
		}
		_, err = stdout.Write(log)
		return err
	}
	return fmt.Errorf("builds: unknown subcommand %q\n\n%s", args[0], buildsUsage)
}

func printJSON(w io.Writer, v any, err error) error {
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cliToken() (string, error) {
	if t := os.Getenv("SLIPWAY_API_TOKEN"); t != "" {
		return t, nil
	}
	path := filepath.Join(envOr("SLIPWAY_DATA_DIR", "./data"), "api-token")
	raw, err := os.ReadFile(path) // #nosec G304 -- the token file in the operator's data dir
	if err != nil {
		return "", fmt.Errorf("no API token: set SLIPWAY_API_TOKEN or run next to the data dir (%v)", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
