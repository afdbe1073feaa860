package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-build/slipway/model"
)

func ruleCmd(c *cli) *cobra.Command {
	return group("rule", "list, add and remove a repository's build rules",
		ruleListCmd(c), ruleAddCmd(c), ruleRmCmd(c))
}

func ruleListCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "list REPO",
		Aliases: []string{"ls"},
		Short:   "a repository's rules, by index",
		Args:    exactArgs("REPO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			r, err := client.Repo(cmd.Context(), args[0])
			if err != nil {
				return notFound(explain(err, client.BaseURL), "repository", "slipway repo list")
			}
			return c.showRules(r.Rules)
		},
	}
}

func (c *cli) showRules(rules []model.Rule) error {
	if c.format("table") == "json" {
		return writeJSON(c.stdout, rules)
	}
	return printRules(c.stdout, rules)
}

// printRules numbers rules from 0, as the API's errors do ("rules[1]").
func printRules(w io.Writer, rules []model.Rule) error {
	rows := make([][]string, 0, len(rules))
	for i, r := range rules {
		enabled := "yes"
		if r.Enabled != nil && !*r.Enabled {
			enabled = "no"
		}
		rows = append(rows, []string{fmt.Sprint(i), r.SourceType, r.Source, strings.Join(r.Tags, ","),
			orDash(r.Dockerfile), orDash(r.Context), orDash(r.Platforms), enabled})
	}
	return table(w, "INDEX\tTYPE\tSOURCE\tTAGS\tDOCKERFILE\tCONTEXT\tPLATFORMS\tENABLED", rows)
}

func ruleAddCmd(c *cli) *cobra.Command {
	var r model.Rule
	var args []string
	var test string
	cmd := &cobra.Command{
		Use:   "add REPO --type branch|tag|pull_request --source NAME|/REGEX/ --tag TEMPLATE... [flags]",
		Short: "add a build rule",
		Example: `  slipway rule add 0f3c… --type tag --source '/^v([0-9.]+)$/' --tag '{version}' --tag '{major}.{minor}'
  slipway rule add 0f3c… --type branch --source '/.*/' --tag '{branch}' --platforms linux/amd64,linux/arm64`,
		Args: exactArgs("REPO"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if r.SourceType == "" || r.Source == "" || len(r.Tags) == 0 {
				return usageErr("rule add: want --type, --source and at least one --tag")
			}
			if len(args) > 0 {
				r.BuildArgs = map[string]string{}
				for _, a := range args {
					k, v, ok := strings.Cut(a, "=")
					if !ok {
						return usageErr("--build-arg %q: want NAME=VALUE", a)
					}
					r.BuildArgs[k] = v
				}
			}
			if test != "" {
				r.Test = &model.Test{Target: test}
			}
			return c.editRules(cmd.Context(), pos[0], func(rules []model.Rule) ([]model.Rule, error) {
				return append(rules, r), nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.SourceType, "type", "", "branch, tag or pull_request")
	f.StringVar(&r.Source, "source", "", "an exact name, or an RE2 expression written /…/")
	f.StringArrayVar(&r.Tags, "tag", nil, "a tag template such as latest, {short_sha} or {version} (repeat for more)")
	f.StringVar(&r.Dockerfile, "dockerfile", "", "path of the Dockerfile (default Dockerfile)")
	f.StringVar(&r.Context, "context", "", "build context directory (default .)")
	f.StringVar(&r.Target, "target", "", "build stage")
	f.StringVar(&r.Platforms, "platforms", "", "e.g. linux/amd64,linux/arm64 (default: the daemon's)")
	f.StringArrayVar(&args, "build-arg", nil, "NAME=VALUE, templated like tags (repeat for more)")
	f.StringVar(&test, "test", "", "a Dockerfile stage built before the image; if it fails nothing is pushed")
	return cmd
}

func ruleRmCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "rm REPO INDEX",
		Short: "remove a rule by its index (see `slipway rule list`)",
		Args:  exactArgs("REPO", "INDEX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			i, err := atoi(args[1], "INDEX")
			if err != nil {
				return err
			}
			return c.editRules(cmd.Context(), args[0], func(rules []model.Rule) ([]model.Rule, error) {
				if i >= len(rules) {
					return nil, usageErr("rule rm: the repository has %d rules (0 to %d); see `slipway rule list %s`", len(rules), len(rules)-1, args[0])
				}
				return append(rules[:i:i], rules[i+1:]...), nil
			})
		},
	}
}

// editRules reads a repository's rules, changes them and writes them
// back, then shows the result. Two edits at once may lose one: the API
// replaces the whole list.
func (c *cli) editRules(ctx context.Context, id string, edit func([]model.Rule) ([]model.Rule, error)) error {
	client, err := c.client()
	if err != nil {
		return err
	}
	r, err := client.Repo(ctx, id)
	if err != nil {
		return notFound(explain(err, client.BaseURL), "repository", "slipway repo list")
	}
	rules, err := edit(r.Rules)
	if err != nil {
		return err
	}
	r, err = client.SetRules(ctx, id, rules)
	if err != nil {
		return explain(err, client.BaseURL)
	}
	return c.showRules(r.Rules)
}
