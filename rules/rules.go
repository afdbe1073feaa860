// Package rules decides which of a repository's build rules a push
// triggers, which tags and build arguments each build gets, and which pushes
// build nothing (skip markers, path filters).
package rules

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/slipway-build/slipway/model"
)

// Ref splits a full Git ref into its kind ("branch" or "tag") and short name.
func Ref(ref string) (kind, name string) {
	switch {
	case strings.HasPrefix(ref, "refs/heads/") && len(ref) > len("refs/heads/"):
		return "branch", strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/tags/") && len(ref) > len("refs/tags/"):
		return "tag", strings.TrimPrefix(ref, "refs/tags/")
	}
	return "", ref
}

// Compiled is a rule with its pattern, templates and filters parsed.
type Compiled struct {
	Rule    model.Rule // with defaults applied
	source  *regexp.Regexp
	tags    []Template
	args    map[string]Template
	Filters Filters
}

// Compile checks and parses rule i; errors name the field, e.g.
// "rules[2].source: ...".
func Compile(i int, r model.Rule) (*Compiled, error) {
	r = withDefaults(r)
	c := &Compiled{Rule: r, args: map[string]Template{}}
	field := func(name string, err error) error { return fmt.Errorf("rules[%d].%s: %w", i, name, err) }
	if err := checkKind(r); err != nil {
		return nil, field(err.field, err.err)
	}
	if strings.TrimSpace(r.Source) == "" {
		return nil, field("source", fmt.Errorf("must not be empty"))
	}
	if pattern, ok := regexSource(r.Source); ok {
		re, err := regexp.Compile("^(?:" + pattern + ")$")
		if err != nil {
			return nil, field("source", fmt.Errorf("regular expression %s does not compile: %v", r.Source, err))
		}
		c.source = re
	}
	if len(r.Tags) == 0 {
		return nil, field("tags", fmt.Errorf("at least one tag template is needed"))
	}
	for j, src := range r.Tags {
		t, err := ParseTemplate(src)
		if err != nil {
			return nil, field(fmt.Sprintf("tags[%d]", j), err)
		}
		c.tags = append(c.tags, t)
	}
	for k, src := range r.BuildArgs {
		if !argNameRE.MatchString(k) {
			return nil, field("build_args", fmt.Errorf("%q is not a valid build argument name", k))
		}
		t, err := ParseTemplate(src)
		if err != nil {
			return nil, field("build_args."+k, err)
		}
		c.args[k] = t
	}
	if err := checkPaths(r); err != nil {
		return nil, field(err.field, err.err)
	}
	if err := checkPlatforms(r.Platforms); err != nil {
		return nil, field("platforms", err)
	}
	if err := checkTest(r.Test); err != nil {
		return nil, field("test.target", err)
	}
	if err := checkSizeWarn(r.SizeWarnIncrease); err != nil {
		return nil, field("size_warn_increase", err)
	}
	var err error
	if c.Filters.Include, err = globs(r.IncludePaths); err != nil {
		return nil, field("include_paths", err)
	}
	if c.Filters.Ignore, err = globs(r.IgnorePaths); err != nil {
		return nil, field("ignore_paths", err)
	}
	return c, nil
}

var (
	argNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	platformRE = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)
	// stageRE is a Dockerfile stage name as BuildKit accepts one after
	// `AS`.
	stageRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,127}$`)
)

// checkTest checks a rule's test: when there is one, it must name a stage.
func checkTest(t *model.Test) error {
	if t == nil {
		return nil
	}
	if t.Target == "" {
		return fmt.Errorf("must not be empty: name the Dockerfile stage to test")
	}
	if !stageRE.MatchString(t.Target) {
		return fmt.Errorf("%q is not a Dockerfile stage name (a letter, then letters, digits, '_', '.', '-')", t.Target)
	}
	return nil
}

// regexSource reports whether a source is written /.../ and returns the
// pattern inside.
func regexSource(s string) (string, bool) {
	if len(s) >= 2 && strings.HasPrefix(s, "/") && strings.HasSuffix(s, "/") {
		return s[1 : len(s)-1], true
	}
	return "", false
}

type pathError struct {
	field string
	err   error
}

func checkPaths(r model.Rule) *pathError {
	for _, p := range []struct{ field, v string }{{"dockerfile", r.Dockerfile}, {"context", r.Context}} {
		if strings.HasPrefix(p.v, "/") || strings.Contains("/"+p.v+"/", "/../") {
			return &pathError{p.field, fmt.Errorf("%q must be a path inside the repository", p.v)}
		}
	}
	return nil
}

// KindPullRequest is the source_type of rules that build pull requests;
// their source matches the base branch.
const KindPullRequest = "pull_request"

// checkKind checks the source type and what only pull request rules may
// use: {pr} names nothing on a push, and a push has nothing to delete.
// checkKind runs before the templates are parsed, so it reads them as text.
func checkKind(r model.Rule) *pathError {
	switch r.SourceType {
	case "branch", "tag", KindPullRequest:
	default:
		return &pathError{"source_type", fmt.Errorf("want \"branch\", \"tag\" or %q, got %q", KindPullRequest, r.SourceType)}
	}
	if r.SourceType == KindPullRequest {
		// Every tag names its pull request, so that no pull request moves
		// latest, a branch's tag or another pull request's.
		for j, t := range r.Tags {
			if !strings.Contains(t, "{pr}") {
				return &pathError{fmt.Sprintf("tags[%d]", j), fmt.Errorf("a %s rule's tags must contain {pr}, e.g. pr-{pr}", KindPullRequest)}
			}
		}
		return nil
	}
	if r.DeleteOnClose {
		return &pathError{"delete_on_close", fmt.Errorf("only a %s rule has tags to delete on close", KindPullRequest)}
	}
	for j, t := range r.Tags {
		if strings.Contains(t, "{pr}") {
			return &pathError{fmt.Sprintf("tags[%d]", j), fmt.Errorf("{pr} is only known to %s rules", KindPullRequest)}
		}
	}
	return nil
}

func checkPlatforms(s string) error {
	if s == "" {
		return nil
	}
	for _, p := range strings.Split(s, ",") {
		if !platformRE.MatchString(strings.TrimSpace(p)) {
			return fmt.Errorf("%q is not os/arch[/variant]", strings.TrimSpace(p))
		}
	}
	return nil
}

func globs(patterns []string) ([]Glob, error) {
	var out []Glob
	for _, p := range patterns {
		g, err := ParseGlob(p)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// Validate checks rule i as the API receives it.
func Validate(i int, r model.Rule) error {
	_, err := Compile(i, r)
	return err
}

func withDefaults(r model.Rule) model.Rule {
	if r.Dockerfile == "" {
		r.Dockerfile = "Dockerfile"
	}
	if r.Context == "" {
		r.Context = "."
	}
	return r
}

// match reports whether the rule builds a ref of this kind and name, with
// the regex groups.
func (c *Compiled) match(kind, name string) ([]string, bool) {
	if c.Rule.SourceType != kind {
		return nil, false
	}
	if c.source == nil {
		return []string{name}, c.Rule.Source == name
	}
	m := c.source.FindStringSubmatch(name)
	return m, m != nil
}

// Push is what the rules are evaluated against.
type Push struct {
	Ref     string
	Commit  string
	Message string
	// DefaultBranch is what the Git host reports; the repository's own
	// setting wins.
	DefaultBranch string
	Time          time.Time
	Files         []string
	FilesComplete bool
}

// Plan is one build a push asks for.
type Plan struct {
	Rules     []int
	Rule      model.Rule
	Tags      []string
	BuildArgs map[string]string
	// Skip explains why this plan builds nothing; it is recorded as a
	// skipped build.
	Skip string
	// NeedsDiff says the host did not list every changed file, so the
	// worker must diff before and after to apply the path filters.
	NeedsDiff bool
}

// Plans returns the builds a push asks for, in rule order. Matching rules
// that would build the same image share one plan with the union of their
// tags.
func Plans(repo model.Repo, p Push) ([]Plan, error) {
	kind, name := Ref(p.Ref)
	if kind == "" {
		return nil, nil
	}
	vars := Vars{Kind: kind, Name: name, SHA: p.Commit, Time: p.Time}
	skip := SkipReason(p.Message)
	return plans(repo, vars, func(c *Compiled, v Vars) Plan {
		plan := Plan{Rule: c.Rule, Tags: c.renderTags(v, latestToo(repo, p, kind, name)), BuildArgs: c.renderArgs(v), Skip: skip}
		if plan.Skip == "" && !c.Filters.Empty() {
			if p.FilesComplete {
				if ok, why := c.Filters.Pass(p.Files); !ok {
					plan.Skip = why
				}
			} else {
				plan.NeedsDiff = true
			}
		}
		return plan
	})
}

// PullRequest is a pull request's head as the rules see it.
type PullRequest struct {
	Number int
	Head   string // the head commit
	Base   string // the branch it merges into
	Time   time.Time
}

// PullRequestPlans returns the builds a pull request asks for: only
// pull_request rules whose source matches its base branch apply, so a pull
// request never moves a branch's tags, and it never gets "latest". Path
// filters and skip markers are a push's: a pull request's head is built
// whole.
func PullRequestPlans(repo model.Repo, pr PullRequest) ([]Plan, error) {
	vars := Vars{Kind: KindPullRequest, Name: pr.Base, PR: pr.Number, SHA: pr.Head, Time: pr.Time}
	return plans(repo, vars, func(c *Compiled, v Vars) Plan {
		return Plan{Rule: c.Rule, Tags: c.renderTags(v, false), BuildArgs: c.renderArgs(v)}
	})
}

// plans runs every enabled rule matching vars' kind and name through plan,
// merging plans that build the same image.
func plans(repo model.Repo, vars Vars, plan func(c *Compiled, v Vars) Plan) ([]Plan, error) {
	var out []Plan
	for i, r := range repo.Rules {
		c, err := Compile(i, r)
		if err != nil {
			return nil, err
		}
		if !model.On(r.Enabled, true) {
			continue
		}
		groups, ok := c.match(vars.Kind, vars.Name)
		if !ok {
			continue
		}
		v := vars
		v.Groups = groups
		p := plan(c, v)
		p.Rules = []int{i}
		out = merge(out, p)
	}
	return out, nil
}

func latestToo(repo model.Repo, p Push, kind, name string) bool {
	if kind != "branch" || !model.On(repo.LatestForDefaultBranch, true) {
		return false
	}
	return name == DefaultBranch(repo, p.DefaultBranch)
}

// DefaultBranch is the repository's setting, else what the host reports,
// else "main".
func DefaultBranch(repo model.Repo, hostDefault string) string {
	switch {
	case repo.DefaultBranch != "":
		return repo.DefaultBranch
	case hostDefault != "":
		return hostDefault
	}
	return "main"
}

// renderTags renders, sanitises and de-duplicates the rule's tags. A
// pre-release never gets "latest"; if nothing is left, the short commit is
// the tag.
func (c *Compiled) renderTags(v Vars, latest bool) []string {
	var out []string
	seen := map[string]bool{}
	add := func(tag string) {
		tag = SanitizeTag(tag)
		if tag == "" || seen[tag] || (tag == "latest" && IsPrerelease(v)) {
			return
		}
		seen[tag] = true
		out = append(out, tag)
	}
	for _, t := range c.tags {
		add(t.Render(v))
	}
	if len(out) == 0 {
		add(v.SHA[:min(7, len(v.SHA))])
	}
	if latest {
		add("latest")
	}
	return out
}

func (c *Compiled) renderArgs(v Vars) map[string]string {
	if len(c.args) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, t := range c.args {
		out[k] = t.Render(v)
	}
	return out
}

// merge adds p to plans, folding it into an earlier plan that builds the
// same image.
func merge(plans []Plan, p Plan) []Plan {
	for i := range plans {
		if plans[i].Skip == p.Skip && sameBuild(plans[i], p) {
			plans[i].Rules = append(plans[i].Rules, p.Rules...)
			plans[i].Rule.SizeWarnIncrease = strictestSizeWarn(plans[i].Rule.SizeWarnIncrease, p.Rule.SizeWarnIncrease)
			for _, t := range p.Tags {
				if !contains(plans[i].Tags, t) {
					plans[i].Tags = append(plans[i].Tags, t)
				}
			}
			return plans
		}
	}
	return append(plans, p)
}

func sameBuild(a, b Plan) bool {
	return a.Rule.Dockerfile == b.Rule.Dockerfile && a.Rule.Context == b.Rule.Context &&
		a.Rule.Target == b.Rule.Target && a.Rule.Platforms == b.Rule.Platforms && testTarget(a.Rule) == testTarget(b.Rule) &&
		model.On(a.Rule.Cache, true) == model.On(b.Rule.Cache, true) && a.Rule.Provenance == b.Rule.Provenance &&
		a.NeedsDiff == b.NeedsDiff && sameArgs(a.BuildArgs, b.BuildArgs) &&
		strings.Join(a.Rule.IncludePaths, "\x00") == strings.Join(b.Rule.IncludePaths, "\x00") &&
		strings.Join(a.Rule.IgnorePaths, "\x00") == strings.Join(b.Rule.IgnorePaths, "\x00")
}

// testTarget is the stage a rule tests, "" for none.
func testTarget(r model.Rule) string {
	if r.Test == nil {
		return ""
	}
	return r.Test.Target
}

func sameArgs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if bv, ok := b[k]; !ok || bv != a[k] {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
