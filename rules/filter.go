package rules

import (
	"fmt"
	"regexp"
	"strings"
)

// Glob is a path pattern: "*" matches within one path segment, "**" across
// segments, "?" one character.
type Glob struct {
	src string
	re  *regexp.Regexp
}

// ParseGlob compiles a path pattern such as "docs/**" or "**/*.md".
func ParseGlob(p string) (Glob, error) {
	if p == "" {
		return Glob{}, fmt.Errorf("empty path pattern")
	}
	p = strings.TrimPrefix(p, "/") // paths are relative to the repository root
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return Glob{}, fmt.Errorf("path pattern %q: %w", p, err)
	}
	return Glob{src: p, re: re}, nil
}

// Match reports whether path (slash-separated, relative to the repository
// root) matches.
func (g Glob) Match(path string) bool { return g.re.MatchString(strings.TrimPrefix(path, "/")) }

// Filters are a rule's include and ignore patterns.
type Filters struct {
	Include []Glob
	Ignore  []Glob
}

// Empty reports whether the rule filters nothing.
func (f Filters) Empty() bool { return len(f.Include) == 0 && len(f.Ignore) == 0 }

// Pass applies Cloud Build's semantics to the changed files: a file matching
// an ignore pattern does not count; with include patterns, at least one
// counting file must match one. It returns why a push does not build.
func (f Filters) Pass(changed []string) (bool, string) {
	if f.Empty() {
		return true, ""
	}
	if len(changed) == 0 {
		return false, "the push changed no files"
	}
	var counting []string
	for _, p := range changed {
		if !anyMatch(f.Ignore, p) {
			counting = append(counting, p)
		}
	}
	if len(counting) == 0 {
		return false, fmt.Sprintf("all %d changed files match ignore_paths", len(changed))
	}
	if len(f.Include) == 0 {
		return true, ""
	}
	for _, p := range counting {
		if anyMatch(f.Include, p) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("none of %d changed files matches include_paths", len(counting))
}

func anyMatch(globs []Glob, path string) bool {
	for _, g := range globs {
		if g.Match(path) {
			return true
		}
	}
	return false
}

// skipMarkers are the commit-message markers that ask for no build.
var skipMarkers = []string{"[skip ci]", "[ci skip]", "[no ci]", "[skip build]", "[build skip]"}

var skipTrailer = regexp.MustCompile(`(?im)^skip-checks:[ \t]*true[ \t\r]*$`)

// SkipReason returns why a head commit message asks for no build, or "".
func SkipReason(message string) string {
	lower := strings.ToLower(message)
	for _, m := range skipMarkers {
		if strings.Contains(lower, m) {
			return "commit message contains " + m
		}
	}
	if skipTrailer.MatchString(message) {
		return "commit message has the trailer skip-checks: true"
	}
	return ""
}
