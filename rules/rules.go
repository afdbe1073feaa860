// Package rules decides which of a repository's build rules a pushed ref
// triggers and which tags the resulting image gets.
package rules

import (
	"fmt"
	"strings"

	"github.com/slipway-build/slipway/model"
)

// Match is one rule triggered by a ref.
type Match struct {
	Index int
	Rule  model.Rule
	Tags  []string
}

// Ref splits a full Git ref into its kind ("branch" or "tag") and short name.
func Ref(ref string) (kind, name string) {
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		return "branch", strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/tags/"):
		return "tag", strings.TrimPrefix(ref, "refs/tags/")
	}
	return "", ref
}

// Find returns the rules of repo that ref triggers, in rule order.
func Find(repo model.Repo, ref string) []Match {
	kind, name := Ref(ref)
	var out []Match
	for i, r := range repo.Rules {
		if r.SourceType != kind || r.Source != name {
			continue
		}
		out = append(out, Match{Index: i, Rule: withDefaults(r), Tags: r.Tags})
	}
	return out
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

// Validate checks a rule as the API receives it; the error names the field.
func Validate(i int, r model.Rule) error {
	switch r.SourceType {
	case "branch", "tag":
	default:
		return fmt.Errorf("rules[%d].source_type: want \"branch\" or \"tag\", got %q", i, r.SourceType)
	}
	if strings.TrimSpace(r.Source) == "" {
		return fmt.Errorf("rules[%d].source: must not be empty", i)
	}
	if len(r.Tags) == 0 {
		return fmt.Errorf("rules[%d].tags: at least one tag is needed", i)
	}
	for j, t := range r.Tags {
		if !validTag(t) {
			return fmt.Errorf("rules[%d].tags[%d]: %q is not a valid image tag", i, j, t)
		}
	}
	for _, p := range []struct{ field, v string }{{"dockerfile", r.Dockerfile}, {"context", r.Context}} {
		if strings.HasPrefix(p.v, "/") || strings.Contains("/"+p.v+"/", "/../") {
			return fmt.Errorf("rules[%d].%s: %q must be a path inside the repository", i, p.field, p.v)
		}
	}
	return nil
}

// validTag follows the OCI distribution spec: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
func validTag(t string) bool {
	if t == "" || len(t) > 128 || t[0] == '.' || t[0] == '-' {
		return false
	}
	for _, c := range t {
		ok := c == '_' || c == '.' || c == '-' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}
