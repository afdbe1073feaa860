package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
)

// #nosec G101 -- the usage text of the token command, not a credential
const tokenUsage = `usage: slipway token <create|list|revoke> [flags] [args]

  create --name NAME [--org ORG] [--account ACCOUNT] [--role read|write|admin] [--expires 720h]
                 issue a token; its text is printed once and never again
  list [--org ORG]
                 the tokens you may see: all of an organization for its admins
  revoke ID      revoke a token: it is refused from then on

Without --org and --account the token is your own, in your organization.
`

const orgUsage = `usage: slipway org <create|show|team|public|registry> [flags] [args]

  create NAME --owners alice,bob     (bootstrap admin) an organization and its owners team
  show NAME                          the organization and its teams
  team ORG TEAM --role ROLE --members alice,acme+ci
                                     create or replace a team
  public ORG IMAGE...                the images anyone may pull (none: make all private)
  registry ORG HOST --username U     store a registry login; the password is read from
                                     $SLIPWAY_REGISTRY_PASSWORD
`

// tokenCmd is the CLI over the API's token calls.
func tokenCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", tokenUsage)
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	server := fs.String("server", envOr("SLIPWAY_URL", "http://localhost:8080"), "Slipway server URL")
	name := fs.String("name", "", "what the token is for")
	org := fs.String("org", "", "organization")
	account := fs.String("account", "", "user or robot (org+name) the token acts as")
	role := fs.String("role", "read", "read, write or admin")
	expires := fs.String("expires", "", "lifetime such as 720h (default: never)")
	pos, err := parseMixed(fs, args[1:])
	if err != nil {
		return err
	}
	c, err := cliClient(*server)
	if err != nil {
		return err
	}
	switch args[0] {
	case "create":
		t, err := c.CreateToken(ctx, access.TokenRequest{Name: *name, Org: *org, Account: *account, Role: access.Role(*role), ExpiresIn: *expires})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n\ntoken %s for %s in %s, role %s: keep it now, it is not shown again\n", t.Secret, t.ID, t.Account, t.Org, t.Role)
		return nil
	case "list":
		list, err := c.Tokens(ctx, *org)
		if err != nil {
			return err
		}
		return printTokens(stdout, list)
	case "revoke":
		if len(pos) != 1 {
			return fmt.Errorf("token revoke: want one token id")
		}
		return c.RevokeToken(ctx, pos[0])
	}
	return fmt.Errorf("token: unknown subcommand %q\n\n%s", args[0], tokenUsage)
}

func printTokens(w io.Writer, list []access.Token) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tORG\tACCOUNT\tROLE\tEXPIRES\tLAST USED\tSTATE")
	for _, t := range list {
		state := "active"
		if t.RevokedAt != nil {
			state = "revoked"
		} else if !t.Live(time.Now()) {
			state = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Org, t.Account, t.Role, when(t.ExpiresAt), when(t.LastUsed), state)
	}
	return tw.Flush()
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format("2006-01-02 15:04")
}

func cliClient(server string) (api.Client, error) {
	token, err := cliToken()
	if err != nil {
		return api.Client{}, err
	}
	return api.Client{BaseURL: server, Token: token}, nil
}

// orgCmd is the CLI over the API's organization calls.
func orgCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", orgUsage)
	}
	fs := flag.NewFlagSet("org "+args[0], flag.ContinueOnError)
	server := fs.String("server", envOr("SLIPWAY_URL", "http://localhost:8080"), "Slipway server URL")
	owners := fs.String("owners", "", "comma-separated owners")
	role := fs.String("role", "read", "the team's role: read, write or admin")
	members := fs.String("members", "", "comma-separated members")
	username := fs.String("username", "", "registry user name")
	pos, err := parseMixed(fs, args[1:])
	if err != nil {
		return err
	}
	c, err := cliClient(*server)
	if err != nil {
		return err
	}
	want := func(n int) error {
		if len(pos) < n {
			return fmt.Errorf("org %s: missing arguments\n\n%s", args[0], orgUsage)
		}
		return nil
	}
	var o access.Org
	switch args[0] {
	case "create":
		if err = want(1); err == nil {
			o, err = c.CreateOrg(ctx, pos[0], list(*owners))
		}
	case "show":
		if err = want(1); err == nil {
			o, err = c.Org(ctx, pos[0])
		}
	case "team":
		if err = want(2); err == nil {
			o, err = c.SetTeam(ctx, pos[0], pos[1], access.Team{Role: access.Role(*role), Members: list(*members)})
		}
	case "public":
		if err = want(1); err == nil {
			o, err = c.SetPublicImages(ctx, pos[0], pos[1:])
		}
	case "registry":
		if err = want(2); err == nil {
			login := access.RegistryLogin{Username: *username, Password: envOr("SLIPWAY_REGISTRY_PASSWORD", "")}
			o, err = c.SetRegistryLogin(ctx, pos[0], pos[1], login)
		}
	default:
		return fmt.Errorf("org: unknown subcommand %q\n\n%s", args[0], orgUsage)
	}
	return printJSON(stdout, o, err)
}

// list splits a comma-separated flag.
func list(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
