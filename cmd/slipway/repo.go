package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/slipway-build/slipway/api"
)

const repoUsage = `usage: slipway repo <connect|list|disconnect> [flags] [args]

  connect PROVIDER OWNER/NAME --image REGISTRY/NAME [--token T | --installation-id N] [--api-url URL] [--org ORG] [--build]
        read the repository on its host (github, bitbucket, bitbucket-server,
        gitlab, gitea), create the push webhook there and register it with
        the default rules: default branch → latest, vX.Y.Z tags → X.Y.Z.
        Only pushes from now on build; --build also builds the branches'
        current tips at once
  list                                  registered repositories
  disconnect ID                         delete the webhook and the repository
`

// repoCmd is the CLI over the API's repository calls.
func repoCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", repoUsage)
	}
	fs := flag.NewFlagSet("repo "+args[0], flag.ContinueOnError)
	server := fs.String("server", envOr("SLIPWAY_URL", "http://localhost:8080"), "Slipway server URL")
	token := fs.String("token", "", "token for the Git host's API and clones")
	installation := fs.Int64("installation-id", 0, "GitHub App installation id instead of --token")
	apiURL := fs.String("api-url", "", "the host's API root (self-hosted GitLab, Gitea, Bitbucket Data Center, GitHub Enterprise)")
	image := fs.String("image", "", "image to push, e.g. registry.example.com/acme/demo")
	build := fs.Bool("build", false, "build the watched branches' current tips now")
	org := fs.String("org", "", "organization that owns the repository (default: the owner part of its full name)")
	pos, err := parseMixed(fs, args[1:])
	if err != nil {
		return err
	}
	apiToken, err := cliToken()
	if err != nil {
		return err
	}
	c := api.Client{BaseURL: *server, Token: apiToken}
	switch args[0] {
	case "connect":
		if len(pos) != 2 || *image == "" {
			return fmt.Errorf("repo connect: want PROVIDER OWNER/NAME --image ...\n\n%s", repoUsage)
		}
		repo, err := c.Connect(ctx, api.ConnectRequest{Provider: pos[0], FullName: pos[1], Org: *org, Token: *token,
			InstallationID: *installation, APIURL: *apiURL, Image: *image, BuildNow: *build})
		return printJSON(stdout, repo, err)
	case "list":
		repos, err := c.Repos(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPROVIDER\tREPOSITORY\tIMAGE\tRULES")
		for _, r := range repos {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", r.ID, r.Provider, r.FullName, r.Image, len(r.Rules))
		}
		return tw.Flush()
	case "disconnect":
		if len(pos) != 1 {
			return fmt.Errorf("repo disconnect: want one repository id")
		}
		if err := c.DeleteRepo(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "disconnected", pos[0])
		return nil
	}
	return fmt.Errorf("repo: unknown subcommand %q\n\n%s", args[0], repoUsage)
}

// parseMixed parses flags that may follow the positional arguments, as in
// the usage lines, and returns the positional ones.
func parseMixed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
}
