package rules

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Vars are the values a tag or build-arg template can use.
type Vars struct {
	Kind   string // "branch", "tag" or "pull_request"
	Name   string // branch or tag name; a pull request's base branch
	PR     int    // the pull request's number
	SHA    string
	Time   time.Time
	Groups []string // regex capture groups; Groups[0] is the whole match
}

// piece is a literal or a placeholder of a parsed template.
type piece struct {
	literal string
	name    string // placeholder name without braces; "" for a literal
	arg     string // the layout of {date:...}
}

// Template is a parsed tag or build-arg template.
type Template struct {
	src    string
	pieces []piece
	short  bool // uses {major}, {minor} or {patch}
}

var knownPlaceholders = map[string]bool{
	"sourceref": true, "branch": true, "tag": true, "sha": true, "short_sha": true,
	"date": true, "version": true, "major": true, "minor": true, "patch": true, "pr": true,
}

// ParseTemplate reads a template such as "{branch}-{short_sha}".
func ParseTemplate(src string) (Template, error) {
	t := Template{src: src}
	rest := src
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return t, fmt.Errorf("template %q: '}' without '{'", src)
			}
			t.pieces = append(t.pieces, piece{literal: rest})
			break
		}
		if strings.IndexByte(rest[:open], '}') >= 0 {
			return t, fmt.Errorf("template %q: '}' without '{'", src)
		}
		if open > 0 {
			t.pieces = append(t.pieces, piece{literal: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return t, fmt.Errorf("template %q: unclosed '{'", src)
		}
		p, err := parsePlaceholder(rest[open+1 : open+end])
		if err != nil {
			return t, fmt.Errorf("template %q: %w", src, err)
		}
		t.short = t.short || p.name == "major" || p.name == "minor" || p.name == "patch"
		t.pieces = append(t.pieces, p)
		rest = rest[open+end+1:]
	}
	return t, nil
}

func parsePlaceholder(body string) (piece, error) {
	name, arg, hasArg := strings.Cut(body, ":")
	if len(name) == 2 && name[0] == '\\' && name[1] >= '1' && name[1] <= '9' && !hasArg {
		return piece{name: name}, nil
	}
	if !knownPlaceholders[name] {
		return piece{}, fmt.Errorf("unknown placeholder {%s}", body)
	}
	if name == "date" {
		if !hasArg || arg == "" {
			return piece{}, fmt.Errorf("{date} needs a layout, e.g. {date:YYYYMMDD}")
		}
		return piece{name: name, arg: dateLayout(arg)}, nil
	}
	if hasArg {
		return piece{}, fmt.Errorf("{%s} takes no argument", name)
	}
	return piece{name: name}, nil
}

// dateLayout turns YYYY, MM, DD, HH, mm and ss into Go's layout; a Go
// layout such as 2006-01-02 passes through unchanged.
func dateLayout(s string) string {
	return strings.NewReplacer("YYYY", "2006", "MM", "01", "DD", "02", "HH", "15", "mm", "04", "ss", "05").Replace(s)
}

// Render fills in v. A placeholder without a value (the branch of a tag
// push, a missing group, a short version form of a pre-release) makes the
// whole template empty, so that it is dropped rather than pushed half-made.
func (t Template) Render(v Vars) string {
	var b strings.Builder
	for _, p := range t.pieces {
		if p.name == "" {
			b.WriteString(p.literal)
			continue
		}
		val := value(p, v)
		if val == "" {
			return ""
		}
		b.WriteString(val)
	}
	return b.String()
}

func value(p piece, v Vars) string {
	sv := parseSemver(v)
	switch p.name {
	case "sourceref":
		return v.Name
	case "branch":
		return when(v.Kind == "branch", v.Name)
	case "tag":
		return when(v.Kind == "tag", v.Name)
	case "sha":
		return v.SHA
	case "pr":
		return when(v.Kind == KindPullRequest && v.PR > 0, strconv.Itoa(v.PR))
	case "short_sha":
		return v.SHA[:min(7, len(v.SHA))]
	case "date":
		return v.Time.UTC().Format(p.arg)
	case "version":
		return sv.version
	case "major":
		return when(sv.pre == "", sv.major)
	case "minor":
		return when(sv.pre == "", sv.minor)
	case "patch":
		return when(sv.pre == "", sv.patch)
	}
	n, _ := strconv.Atoi(p.name[1:])
	if n < len(v.Groups) {
		return v.Groups[n]
	}
	return ""
}

func when(ok bool, s string) string {
	if ok {
		return s
	}
	return ""
}

type semver struct{ version, major, minor, patch, pre string }

var semverRE = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$`)

// parseSemver reads a tag name as a semantic version (a leading v allowed).
func parseSemver(v Vars) semver {
	if v.Kind != "tag" {
		return semver{}
	}
	m := semverRE.FindStringSubmatch(v.Name)
	if m == nil {
		return semver{}
	}
	return semver{version: strings.TrimPrefix(v.Name, "v"), major: m[1], minor: m[2], patch: m[3], pre: m[4]}
}

// IsPrerelease reports whether a tag push is a semantic-version pre-release.
func IsPrerelease(v Vars) bool { return parseSemver(v).pre != "" }

// SanitizeTag makes s a valid image tag: characters outside [A-Za-z0-9_.-]
// become '-', it may not start with '.' or '-', and it is at most 128
// characters.
func SanitizeTag(s string) string {
	b := make([]byte, 0, len(s))
	for _, c := range s { // per character, so "é" becomes one '-'
		ok := c == '_' || c == '.' || c == '-' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
		if !ok {
			c = '-'
		}
		b = append(b, byte(c))
	}
	out := strings.TrimLeft(string(b), ".-")
	if len(out) > 128 {
		out = out[:128]
	}
	return out
}
