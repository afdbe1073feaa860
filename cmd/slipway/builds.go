package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/model"
)

// buildsCmd lists builds; its subcommands are the old spellings of the
// build commands (`builds show` is now `build show`, `builds log` is
// `logs`), kept for scripts, with their JSON output.
func buildsCmd(c *cli) *cobra.Command {
	cmd := buildListCmd(c, "builds [--repo ID] [--status STATUS] [--limit N]")
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return unknownCommand(cmd, args[0])
		}
		return nil
	}
	old := []*cobra.Command{buildShowCmd(c, "json"), triggerCmd(c, "json"), cancelCmd(c, "json"), rebuildCmd(c, "json")}
	for _, o := range old {
		o.Hidden = true
		o.Short = "old spelling: " + o.Short
	}
	log := logsCmd(c)
	log.Use, log.Hidden = "log BUILD [-f]", true
	list := buildListCmd(c, "list [--repo ID] [--status STATUS] [--limit N]")
	list.Short = "the same list as `slipway builds`"
	cmd.AddCommand(append(old, log, list)...)
	return cmd
}

func buildListCmd(c *cli, use string) *cobra.Command {
	var q api.BuildQuery
	cmd := &cobra.Command{
		Use:   use,
		Short: "list builds, newest first",
		Example: `  slipway builds --repo 0f3c… --status failed
  slipway builds -o json | jq -r '.[0].id'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			list, err := client.ListBuilds(cmd.Context(), q)
			if err != nil {
				return notFound(explain(err, client.BaseURL), "repository", "slipway repo list")
			}
			if c.format("table") == "json" {
				return writeJSON(c.stdout, list)
			}
			return printBuilds(c.stdout, list)
		},
	}
	cmd.Flags().StringVar(&q.Repo, "repo", "", "only this repository's builds (its id)")
	cmd.Flags().StringVar(&q.Status, "status", "", "only builds with this status: queued, running, succeeded, failed, cancelled or skipped")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "at most this many (default: all)")
	return cmd
}

func printBuilds(w io.Writer, list []model.Build) error {
	rows := make([][]string, 0, len(list))
	for _, b := range list {
		rows = append(rows, []string{b.ID, b.Status, b.Ref, short(b.Commit), orDash(strings.Join(b.Tags, ",")),
			stamp(b.CreatedAt), took(b)})
	}
	return table(w, "ID\tSTATUS\tREF\tCOMMIT\tTAGS\tCREATED\tTOOK", rows)
}

func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

// took is how long a finished build ran, "-" for one that did not.
func took(b model.Build) string {
	if b.StartedAt == nil || b.FinishedAt == nil {
		return "-"
	}
	return b.FinishedAt.Sub(*b.StartedAt).Round(time.Second).String()
}

func buildCmd(c *cli) *cobra.Command {
	return group("build", "one build: show", buildShowCmd(c, "table"))
}

func buildShowCmd(c *cli, def string) *cobra.Command {
	return &cobra.Command{
		Use:   "show BUILD",
		Short: "one build: status, commit, image, tags, error",
		Args:  exactArgs("BUILD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			b, err := client.Build(cmd.Context(), args[0])
			if err != nil {
				return notFound(explain(err, client.BaseURL), "build", "slipway builds")
			}
			if c.format(def) == "json" {
				return writeJSON(c.stdout, b)
			}
			return printBuild(c.stdout, b)
		},
	}
}

func printBuild(w io.Writer, b model.Build) error {
	var started, finished string
	if b.StartedAt != nil {
		started = stamp(*b.StartedAt)
	}
	if b.FinishedAt != nil {
		finished = stamp(*b.FinishedAt) + " (took " + took(b) + ")"
	}
	var deliveries []string
	for _, d := range b.Deliveries {
		deliveries = append(deliveries, model.HookEvent(d.Event)+" "+d.Status)
	}
	return fields(w,
		"build", b.ID,
		"repository", b.RepoID,
		"status", b.Status,
		"ref", b.Ref,
		"commit", b.Commit,
		"trigger", b.Trigger,
		"image", b.Image,
		"tags", strings.Join(b.Tags, ", "),
		"digest", b.Digest,
		"created", stamp(b.CreatedAt),
		"started", started,
		"finished", finished,
		"reason", b.Reason,
		"error", b.Error,
		"deliveries", strings.Join(deliveries, ", "),
	)
}

func triggerCmd(c *cli, def string) *cobra.Command {
	var repo, ref, commit, branch, tag string
	var follow bool
	cmd := &cobra.Command{
		Use:   "trigger REPO (--branch NAME | --tag NAME | --ref REF | --commit SHA) [-f]",
		Short: "build a ref's tip, or a commit, now",
		Long: `Build a branch's or tag's current tip (--branch main, --tag v1.2.3, or the
full --ref refs/heads/main), or a commit (--commit, a full hash; without a
branch or tag it is built by the default branch's rules). -f follows the
build's log to its end.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				repo = args[0]
			}
			if repo == "" {
				return usageErr("trigger: which repository? Give its id (see `slipway repo list`)")
			}
			switch {
			case branch != "" && tag != "", (branch != "" || tag != "") && ref != "":
				return usageErr("trigger: give one of --branch, --tag and --ref")
			case branch != "":
				ref = "refs/heads/" + branch
			case tag != "":
				ref = "refs/tags/" + tag
			}
			if ref == "" && commit == "" {
				return usageErr("trigger: what to build? Give --branch, --tag, --ref or --commit")
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			b, err := client.Trigger(cmd.Context(), repo, ref, commit)
			if err != nil {
				return notFound(explain(err, client.BaseURL), "repository", "slipway repo list")
			}
			if follow {
				return c.follow(cmd.Context(), client, b.ID)
			}
			if c.format(def) == "json" {
				return writeJSON(c.stdout, b)
			}
			_, err = fmt.Fprintf(c.stdout, "build %s %s: %s at %s\nfollow it with: slipway logs -f %s\n", b.ID, b.Status, b.Ref, short(b.Commit), b.ID)
			return err
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "the repository's id (or give it as the argument)")
	cmd.Flags().StringVar(&ref, "ref", "", "full ref, e.g. refs/heads/main or refs/tags/v1.2.3")
	cmd.Flags().StringVar(&branch, "branch", "", "a branch: the same as --ref refs/heads/NAME")
	cmd.Flags().StringVar(&tag, "tag", "", "a tag: the same as --ref refs/tags/NAME")
	cmd.Flags().StringVar(&commit, "commit", "", "commit hash (all 40 characters)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the build's log until it ends; exit 1 unless it succeeds")
	return cmd
}

func cancelCmd(c *cli, def string) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel BUILD",
		Short: "cancel a queued or running build",
		Args:  exactArgs("BUILD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			b, err := client.Cancel(cmd.Context(), args[0])
			if err != nil {
				return notFound(explain(err, client.BaseURL), "build", "slipway builds")
			}
			if c.format(def) == "json" {
				return writeJSON(c.stdout, b)
			}
			state := b.Status
			if b.CancelRequested && !model.Terminal(b.Status) {
				state = "cancelling"
			}
			_, err = fmt.Fprintf(c.stdout, "build %s %s\n", b.ID, state)
			return err
		},
	}
}

func rebuildCmd(c *cli, def string) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "rebuild BUILD [-f]",
		Short: "run a finished build again: same commit and tags",
		Args:  exactArgs("BUILD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			b, err := client.Rebuild(cmd.Context(), args[0])
			if err != nil {
				return notFound(explain(err, client.BaseURL), "build", "slipway builds")
			}
			if follow {
				return c.follow(cmd.Context(), client, b.ID)
			}
			if c.format(def) == "json" {
				return writeJSON(c.stdout, b)
			}
			_, err = fmt.Fprintf(c.stdout, "build %s %s: rebuild of %s\nfollow it with: slipway logs -f %s\n", b.ID, b.Status, args[0], b.ID)
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the build's log until it ends; exit 1 unless it succeeds")
	return cmd
}

func logsCmd(c *cli) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs BUILD [-f]",
		Short: "a build's log; -f follows a running build to its end",
		Long: `Print a build's log so far. With -f, follow it live until the build ends,
then exit 0 when it succeeded and 1 when it failed or was cancelled (its
error is the last line, on stderr). On a terminal a progress line shows
while the build waits or is quiet.`,
		Args: exactArgs("BUILD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			if follow {
				return c.follow(cmd.Context(), client, args[0])
			}
			log, err := client.Log(cmd.Context(), args[0])
			if err != nil {
				return notFound(explain(err, client.BaseURL), "build", "slipway builds")
			}
			_, err = c.stdout.Write(log)
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the build ends; exit 1 unless it succeeds")
	return cmd
}

// atoi reads a non-negative index argument.
func atoi(s, what string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, usageErr("%s: want a number from 0, got %q", what, s)
	}
	return n, nil
}
