package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/model"
)

func repoCmd(c *cli) *cobra.Command {
	return group("repo", "register, connect, list, show and remove repositories",
		repoAddCmd(c), repoConnectCmd(c), repoListCmd(c), repoShowCmd(c), repoRmCmd(c))
}

func repoAddCmd(c *cli) *cobra.Command {
	var req api.RegisterRequest
	var file, branch string
	cmd := &cobra.Command{
		Use:   "add OWNER/NAME --clone-url URL --image REGISTRY/NAME [flags] | add -f repo.json",
		Short: "register a repository whose webhook you point at Slipway yourself",
		Long: `Register a repository with the default rules (--branch, default main, builds
latest; vX.Y.Z tags build X.Y.Z), or the API's whole repository object from a
JSON file (-f). Slipway generates the webhook secret unless given; it is
printed once, with the URL to point the Git host's webhook at.`,
		Example: `  slipway repo add acme/demo --clone-url https://git.example.com/acme/demo.git --image 127.0.0.1:5000/acme/demo
  slipway repo add -f repo.json --build`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fillRegister(&req, file, branch, args); err != nil {
				return err
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			reg, err := client.Register(cmd.Context(), req)
			if err != nil {
				return explain(err, client.BaseURL)
			}
			if c.format("table") == "json" {
				return writeJSON(c.stdout, reg)
			}
			return printRegistered(c.stdout, client.BaseURL, reg)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "the repository as the API's JSON (POST /api/v1/repos); flags given too override it")
	f.StringVar(&req.Provider, "provider", "github", "the Git host: github, gitlab, gitea, bitbucket or bitbucket-server")
	f.StringVar(&req.CloneURL, "clone-url", "", "where builds clone from (default: what the host's API says)")
	f.StringVar(&req.Image, "image", "", "the image to push, e.g. 127.0.0.1:5000/acme/demo")
	f.StringVar(&req.Org, "org", "", "organization (default: the owner part of OWNER/NAME)")
	f.StringVar(&req.WebhookSecret, "webhook-secret", "", "the webhook's secret (default: generated and printed once)")
	f.StringVar(&req.Token, "git-token", "", "token for clones and commit statuses on the Git host")
	f.StringVar(&req.APIURL, "api-url", "", "the host's API root (self-hosted hosts)")
	f.StringVar(&branch, "branch", "main", "the default branch: it builds latest, vX.Y.Z tags build X.Y.Z")
	f.BoolVar(&req.BuildNow, "build", false, "build the watched branches' current tips now")
	return cmd
}

// fillRegister completes a registration from the file and the arguments.
func fillRegister(req *api.RegisterRequest, file, branch string, args []string) error {
	if file != "" {
		var fromFile api.RegisterRequest
		raw, err := os.ReadFile(file) // #nosec G304 -- a file the user names
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &fromFile); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		mergeRegister(&fromFile, *req)
		*req = fromFile
	}
	if len(args) == 1 {
		req.FullName = args[0]
	}
	if req.FullName == "" || req.Image == "" {
		return usageErr("repo add: want OWNER/NAME and --image (or -f FILE that has full_name and image)")
	}
	if len(req.Rules) == 0 {
		req.Rules = api.DefaultRules(branch)
		req.DefaultBranch = branch
	}
	return nil
}

// mergeRegister sets in dst what the flags gave (non-empty in flags).
func mergeRegister(dst *api.RegisterRequest, flags api.RegisterRequest) {
	for _, f := range []struct{ to, from *string }{
		{&dst.CloneURL, &flags.CloneURL}, {&dst.Image, &flags.Image}, {&dst.Org, &flags.Org},
		{&dst.WebhookSecret, &flags.WebhookSecret}, {&dst.Token, &flags.Token}, {&dst.APIURL, &flags.APIURL},
	} {
		if *f.from != "" {
			*f.to = *f.from
		}
	}
	if dst.Provider == "" {
		dst.Provider = flags.Provider
	}
	dst.BuildNow = dst.BuildNow || flags.BuildNow
}

func printRegistered(w io.Writer, server string, reg api.Registered) error {
	secret := "(yours)"
	if reg.WebhookSecret != "" {
		secret = reg.WebhookSecret + " (shown this once)"
	}
	fmt.Fprintf(w, "registered %s as %s\n", reg.FullName, reg.ID)
	return fields(w,
		"image", reg.Image,
		"clone url", reg.CloneURL,
		"webhook url", server+"/hooks/"+hookPath(reg.Provider),
		"webhook secret", secret,
		"rules", ruleSummary(reg.Rules),
		"builds", strings.Join(reg.Builds, ", "),
	)
}

// hookPath is the webhook endpoint of a provider: both Bitbucket
// flavours share one.
func hookPath(provider string) string {
	if provider == "bitbucket-server" {
		return "bitbucket"
	}
	return provider
}

func ruleSummary(rules []model.Rule) string {
	parts := make([]string, 0, len(rules))
	for _, r := range rules {
		parts = append(parts, fmt.Sprintf("%s %s → %s", r.SourceType, r.Source, strings.Join(r.Tags, ",")))
	}
	return strings.Join(parts, "; ")
}

func repoConnectCmd(c *cli) *cobra.Command {
	var req api.ConnectRequest
	cmd := &cobra.Command{
		Use:   "connect PROVIDER OWNER/NAME --image REGISTRY/NAME [--token T | --installation-id N] [--api-url URL] [--org ORG] [--build]",
		Short: "register a repository and create its webhook on the Git host",
		Long: `Read the repository on its host (github, bitbucket, bitbucket-server, gitlab,
gitea), create the push webhook there and register it with the default rules:
default branch → latest, vX.Y.Z tags → X.Y.Z. Only pushes from now on build;
--build also builds the branches' current tips at once. Prints the stored
repository as JSON (-o table for a summary). Here --token is the Git host's
token; the API token comes from the login or $SLIPWAY_API_TOKEN.`,
		Args: exactArgs("PROVIDER", "OWNER/NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Image == "" {
				return usageErr("repo connect: --image is required: the image its builds push, e.g. registry.example.com/%s", args[1])
			}
			req.Provider, req.FullName = args[0], args[1]
			client, err := c.client()
			if err != nil {
				return err
			}
			reg, err := client.Connect(cmd.Context(), req)
			if err != nil {
				return explain(err, client.BaseURL)
			}
			if c.format("json") == "json" {
				return writeJSON(c.stdout, reg)
			}
			return printRegistered(c.stdout, client.BaseURL, reg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Token, "token", "", "token for the Git host's API and clones")
	f.StringVar(&req.Token, "git-token", "", "the same as --token")
	f.Int64Var(&req.InstallationID, "installation-id", 0, "GitHub App installation id instead of --token")
	f.StringVar(&req.APIURL, "api-url", "", "the host's API root (self-hosted GitLab, Gitea, Bitbucket Data Center, GitHub Enterprise)")
	f.StringVar(&req.Image, "image", "", "image to push, e.g. registry.example.com/acme/demo")
	f.BoolVar(&req.BuildNow, "build", false, "build the watched branches' current tips now")
	f.StringVar(&req.Org, "org", "", "organization that owns the repository (default: the owner part of its full name)")
	return cmd
}

func repoListCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "the repositories you may see",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			repos, err := client.Repos(cmd.Context())
			if err != nil {
				return explain(err, client.BaseURL)
			}
			if c.format("table") == "json" {
				return writeJSON(c.stdout, repos)
			}
			return printRepos(c.stdout, repos)
		},
	}
}

func printRepos(w io.Writer, repos []model.Repo) error {
	rows := make([][]string, 0, len(repos))
	for _, r := range repos {
		rows = append(rows, []string{r.ID, r.Provider, r.FullName, r.Image, fmt.Sprint(len(r.Rules))})
	}
	return table(w, "ID\tPROVIDER\tREPOSITORY\tIMAGE\tRULES", rows)
}

func repoShowCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "show REPO",
		Short: "one repository and its rules",
		Args:  exactArgs("REPO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			r, err := client.Repo(cmd.Context(), args[0])
			if err != nil {
				return notFound(explain(err, client.BaseURL), "repository", "slipway repo list")
			}
			if c.format("table") == "json" {
				return writeJSON(c.stdout, r)
			}
			return printRepo(c.stdout, r)
		},
	}
}

func printRepo(w io.Writer, r model.Repo) error {
	public := ""
	if r.PublicImage {
		public = "yes: anyone may pull the image"
	}
	if err := fields(w,
		"repository", r.FullName,
		"id", r.ID,
		"provider", r.Provider,
		"organization", r.Organization(),
		"clone url", r.CloneURL,
		"image", r.Image,
		"public", public,
		"default branch", r.DefaultBranch,
		"created", stamp(r.CreatedAt),
	); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return printRules(w, r.Rules)
}

func repoRmCmd(c *cli) *cobra.Command {
	var opts api.DeleteRepoOptions
	cmd := &cobra.Command{
		Use:     "rm REPO [--keep-hook]",
		Aliases: []string{"disconnect", "remove"},
		Short:   "remove a repository and the webhook Slipway created for it",
		Args:    exactArgs("REPO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			if err := client.DeleteRepo(cmd.Context(), args[0], opts); err != nil {
				return notFound(explain(err, client.BaseURL), "repository", "slipway repo list")
			}
			_, err = fmt.Fprintln(c.stdout, "disconnected", args[0])
			return err
		},
	}
	cmd.Flags().BoolVar(&opts.KeepHook, "keep-hook", false, "leave the webhook on the Git host (a host that is gone)")
	return cmd
}
