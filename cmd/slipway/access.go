package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
)

func tokenCmd(c *cli) *cobra.Command {
	return group("token", "create, list and revoke API tokens",
		tokenCreateCmd(c), tokenListCmd(c), tokenRevokeCmd(c))
}

func tokenCreateCmd(c *cli) *cobra.Command {
	var req access.TokenRequest
	var role string
	cmd := &cobra.Command{
		Use:   "create --name NAME [--org ORG] [--account ACCOUNT] [--role read|write|admin] [--expires 720h]",
		Short: "issue a token; its text is printed once and never again",
		Long: `Issue a token. Its text is the first line of the output, printed once and
never again. Without --org and --account the token is your own, in your
organization; an organization's admins issue tokens for its members.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.Role = access.Role(role)
			client, err := c.client()
			if err != nil {
				return err
			}
			t, err := client.CreateToken(cmd.Context(), req)
			if err != nil {
				return explain(err, client.BaseURL)
			}
			if c.format("table") == "json" {
				return writeJSON(c.stdout, t)
			}
			_, err = fmt.Fprintf(c.stdout, "%s\n\ntoken %s for %s in %s, role %s: keep it now, it is not shown again\n", t.Secret, t.ID, t.Account, t.Org, t.Role)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "what the token is for")
	f.StringVar(&req.Org, "org", "", "organization")
	f.StringVar(&req.Account, "account", "", "user or robot (org+name) the token acts as")
	f.StringVar(&role, "role", "read", "read, write or admin")
	f.StringVar(&req.ExpiresIn, "expires", "", "lifetime such as 720h (default: never)")
	return cmd
}

func tokenListCmd(c *cli) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:     "list [--org ORG]",
		Aliases: []string{"ls"},
		Short:   "the tokens you may see: all of an organization for its admins",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			list, err := client.Tokens(cmd.Context(), org)
			if err != nil {
				return explain(err, client.BaseURL)
			}
			if c.format("table") == "json" {
				return writeJSON(c.stdout, list)
			}
			return printTokens(c.stdout, list, time.Now())
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organization")
	return cmd
}

func tokenRevokeCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "revoke a token: it is refused from then on",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			if err := client.RevokeToken(cmd.Context(), args[0]); err != nil {
				return notFound(explain(err, client.BaseURL), "token", "slipway token list")
			}
			_, err = fmt.Fprintln(c.stdout, "revoked", args[0])
			return err
		},
	}
}

func printTokens(w io.Writer, list []access.Token, now time.Time) error {
	rows := make([][]string, 0, len(list))
	for _, t := range list {
		state := "active"
		if t.RevokedAt != nil {
			state = "revoked"
		} else if !t.Live(now) {
			state = "expired"
		}
		rows = append(rows, []string{t.ID, t.Name, t.Org, t.Account, string(t.Role), when(t.ExpiresAt), when(t.LastUsed), state})
	}
	return table(w, "ID\tNAME\tORG\tACCOUNT\tROLE\tEXPIRES\tLAST USED\tSTATE", rows)
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// orgCmd manages organizations; it prints the organization as JSON, as it
// always has.
func orgCmd(c *cli) *cobra.Command {
	var owners, role, members, username string
	orgCall := func(use, short string, args cobra.PositionalArgs, call func(cmd *cobra.Command, client api.Client, args []string) (access.Org, error)) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: args,
			RunE: func(cmd *cobra.Command, args []string) error {
				client, err := c.client()
				if err != nil {
					return err
				}
				o, err := call(cmd, client, args)
				if err != nil {
					return explain(err, client.BaseURL)
				}
				return writeJSON(c.stdout, o)
			},
		}
	}
	create := orgCall("create NAME --owners alice,bob", "(bootstrap admin) an organization and its owners team", exactArgs("NAME"),
		func(cmd *cobra.Command, client api.Client, args []string) (access.Org, error) {
			return client.CreateOrg(cmd.Context(), args[0], list(owners))
		})
	create.Flags().StringVar(&owners, "owners", "", "comma-separated owners")
	show := orgCall("show NAME", "the organization and its teams", exactArgs("NAME"),
		func(cmd *cobra.Command, client api.Client, args []string) (access.Org, error) {
			return client.Org(cmd.Context(), args[0])
		})
	team := orgCall("team ORG TEAM --role ROLE --members alice,acme+ci", "create or replace a team", exactArgs("ORG", "TEAM"),
		func(cmd *cobra.Command, client api.Client, args []string) (access.Org, error) {
			return client.SetTeam(cmd.Context(), args[0], args[1], access.Team{Role: access.Role(role), Members: list(members)})
		})
	team.Flags().StringVar(&role, "role", "read", "the team's role: read, write or admin")
	team.Flags().StringVar(&members, "members", "", "comma-separated members")
	public := orgCall("public ORG [IMAGE...]", "the images anyone may pull (none: make all private)", minArgs(1, "ORG [IMAGE...]"),
		func(cmd *cobra.Command, client api.Client, args []string) (access.Org, error) {
			return client.SetPublicImages(cmd.Context(), args[0], args[1:])
		})
	registry := orgCall("registry ORG HOST --username U", "store a registry login; the password is read from $SLIPWAY_REGISTRY_PASSWORD", exactArgs("ORG", "HOST"),
		func(cmd *cobra.Command, client api.Client, args []string) (access.Org, error) {
			login := access.RegistryLogin{Username: username, Password: c.getenv("SLIPWAY_REGISTRY_PASSWORD")}
			return client.SetRegistryLogin(cmd.Context(), args[0], args[1], login)
		})
	registry.Flags().StringVar(&username, "username", "", "registry user name")
	return group("org", "create organizations, manage their teams, public images and registry logins",
		create, show, team, public, registry)
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
