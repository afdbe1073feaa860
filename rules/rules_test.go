package rules

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
)

const (
	testSHA   = "0123456789abcdef0123456789abcdef01234567"
	testShort = "0123456"
)

// testTime is 2024-03-05 23:30:15 at UTC-5, i.e. 2024-03-06 04:30:15 UTC, so
// a {date} that forgot to convert to UTC shows the wrong day.
var testTime = time.Date(2024, 3, 5, 23, 30, 15, 0, time.FixedZone("EST", -5*60*60))

func ptr(b bool) *bool { return &b }

func TestRef(t *testing.T) {
	tests := []struct {
		ref, kind, name string
	}{
		{"refs/heads/main", "branch", "main"},
		{"refs/heads/feature/login", "branch", "feature/login"},
		{"refs/heads/refs/tags/x", "branch", "refs/tags/x"},
		{"refs/tags/v1.2.3", "tag", "v1.2.3"},
		{"refs/tags/release/2024-03", "tag", "release/2024-03"},
		{"refs/tags/refs/heads/x", "tag", "refs/heads/x"},
		// Anything else has no kind; the name is not specified.
		{"refs/pull/42/head", "", ""},
		{"refs/notes/commits", "", ""},
		{"main", "", ""},
		{"refs/heads/", "", ""},
		{"refs/tags/", "", ""},
		{"refs/heads", "", ""},
		{"heads/main", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			kind, name := Ref(tt.ref)
			if kind != tt.kind {
				t.Errorf("Ref(%q) kind = %q, want %q", tt.ref, kind, tt.kind)
			}
			if tt.kind != "" && name != tt.name {
				t.Errorf("Ref(%q) name = %q, want %q", tt.ref, name, tt.name)
			}
		})
	}
}

func TestParseTemplateErrors(t *testing.T) {
	tests := []struct {
		src, want string // want: a substring of the error
	}{
		{"{nope}", "unknown placeholder"},
		{"v-{Branch}", "unknown placeholder"},
		{"{}", "unknown placeholder"},
		{"{\\0}", "unknown placeholder"},
		{"{\\10}", "unknown placeholder"},
		{"{\\a}", "unknown placeholder"},
		{"{branch", "unclosed"},
		{"x-{sha", "unclosed"},
		{"{branch}-{", "unclosed"},
		{"branch}", "'}' without '{'"},
		{"a}{branch}", "'}' without '{'"},
		{"{date}", "{date} needs a layout"},
		{"{date:}", "{date} needs a layout"},
		{"{sha:7}", "takes no argument"},
		{"{\\1:x}", "unknown placeholder"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := ParseTemplate(tt.src)
			if err == nil {
				t.Fatalf("ParseTemplate(%q) = nil error, want one containing %q", tt.src, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseTemplate(%q) error %q does not contain %q", tt.src, err, tt.want)
			}
		})
	}
}

func TestTemplateRender(t *testing.T) {
	branch := Vars{Kind: "branch", Name: "feature/login", SHA: testSHA, Time: testTime}
	main := Vars{Kind: "branch", Name: "main", SHA: testSHA, Time: testTime}
	release := Vars{Kind: "tag", Name: "v1.2.3", SHA: testSHA, Time: testTime, Groups: []string{"v1.2.3", "1.2.3"}}
	noV := Vars{Kind: "tag", Name: "10.0.7", SHA: testSHA, Time: testTime}
	pre := Vars{Kind: "tag", Name: "v1.2.3-rc.1", SHA: testSHA, Time: testTime}
	build := Vars{Kind: "tag", Name: "v1.2.3+build.5", SHA: testSHA, Time: testTime}
	notSemver := Vars{Kind: "tag", Name: "release-2024", SHA: testSHA, Time: testTime}
	shortSemver := Vars{Kind: "tag", Name: "v1.2", SHA: testSHA, Time: testTime}
	branchLikeSemver := Vars{Kind: "branch", Name: "v1.2.3", SHA: testSHA, Time: testTime}
	groups := Vars{Kind: "branch", Name: "release/7-lts", SHA: testSHA, Time: testTime, Groups: []string{"release/7-lts", "7", "", "lts"}}
	shortSHA := Vars{Kind: "branch", Name: "main", SHA: "abc", Time: testTime}

	tests := []struct {
		name string
		src  string
		v    Vars
		want string
	}{
		{"literal", "stable", main, "stable"},
		{"empty template", "", main, ""},
		{"sourceref of branch", "{sourceref}", branch, "feature/login"},
		{"sourceref of tag", "{sourceref}", release, "v1.2.3"},
		{"branch of branch", "{branch}", branch, "feature/login"},
		{"branch of tag is empty", "{branch}", release, ""},
		{"branch of tag empties the whole template", "b-{branch}-x", release, ""},
		{"tag of tag", "{tag}", release, "v1.2.3"},
		{"tag of branch is empty", "t-{tag}", main, ""},
		{"sha", "{sha}", main, testSHA},
		{"short sha", "{short_sha}", main, testShort},
		{"short sha of a short sha", "{short_sha}", shortSHA, "abc"},
		{"mixed", "{branch}-{short_sha}", main, "main-" + testShort},
		{"date tokens in UTC", "{date:YYYYMMDD}", main, "20240306"},
		{"date all tokens", "{date:YYYY-MM-DD.HH.mm.ss}", main, "2024-03-06.04.30.15"},
		{"date Go layout", "{date:2006-01-02}", main, "2024-03-06"},
		{"date Go layout with time", "{date:20060102150405}", main, "20240306043015"},
		{"date with prefix", "nightly-{date:YYYYMMDD}-{short_sha}", main, "nightly-20240306-" + testShort},
		{"version", "{version}", release, "1.2.3"},
		{"version without v", "{version}", noV, "10.0.7"},
		{"major", "{major}", release, "1"},
		{"minor", "{minor}", release, "2"},
		{"patch", "{patch}", release, "3"},
		{"major.minor", "{major}.{minor}", release, "1.2"},
		{"v-major.minor.patch", "v{major}.{minor}.{patch}", noV, "v10.0.7"},
		{"pre-release version", "{version}", pre, "1.2.3-rc.1"},
		{"pre-release major", "{major}", pre, ""},
		{"pre-release minor", "{major}.{minor}", pre, ""},
		{"pre-release patch", "{patch}", pre, ""},
		{"build metadata major", "{major}", build, "1"},
		{"version of a non-semver tag", "{version}", notSemver, ""},
		{"major of a non-semver tag", "{major}", notSemver, ""},
		{"version of a two-part tag", "{version}", shortSemver, ""},
		{"version of a branch", "{version}", branchLikeSemver, ""},
		{"major of a branch", "{major}", branchLikeSemver, ""},
		{"group 1", "{\\1}", release, "1.2.3"},
		{"groups", "{\\1}-{\\3}", groups, "7-lts"},
		{"unmatched optional group", "{\\1}-{\\2}", groups, ""},
		{"group beyond the pattern", "{\\9}", groups, ""},
		{"group without a regex", "{\\1}", main, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := ParseTemplate(tt.src)
			if err != nil {
				t.Fatalf("ParseTemplate(%q): %v", tt.src, err)
			}
			if got := tmpl.Render(tt.v); got != tt.want {
				t.Errorf("%q.Render(%s %s) = %q, want %q", tt.src, tt.v.Kind, tt.v.Name, got, tt.want)
			}
		})
	}
}

func TestIsPrerelease(t *testing.T) {
	tests := []struct {
		kind, name string
		want       bool
	}{
		{"tag", "v1.2.3-rc.1", true},
		{"tag", "1.2.3-beta", true},
		{"tag", "v0.1.0-alpha.2+build.7", true},
		{"tag", "v1.2.3", false},
		{"tag", "1.2.3", false},
		{"tag", "v1.2.3+build.7", false},
		{"tag", "release-rc.1", false},
		{"tag", "v1.2-rc.1", false},
		{"branch", "v1.2.3-rc.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.name, func(t *testing.T) {
			if got := IsPrerelease(Vars{Kind: tt.kind, Name: tt.name}); got != tt.want {
				t.Errorf("IsPrerelease(%s %s) = %v, want %v", tt.kind, tt.name, got, tt.want)
			}
		})
	}
}

func TestSanitizeTag(t *testing.T) {
	long := strings.Repeat("a", 128)
	tests := []struct {
		in, want string
	}{
		{"latest", "latest"},
		{"v1.2.3_rc-1", "v1.2.3_rc-1"},
		{"_x", "_x"},
		{"feature/login", "feature-login"},
		{"a b:c@d+e", "a-b-c-d-e"},
		{"café", "caf-"},
		{"日本", ""}, // "--" loses its leading dashes
		{"x日本", "x--"},
		{".hidden", "hidden"},
		{"-rc", "rc"},
		{"..--.x", "x"},
		{"/main", "main"},
		{"...", ""},
		{"", ""},
		{long, long},
		{long + "bcd", long},
		{"--" + long + "b", long},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := SanitizeTag(tt.in); got != tt.want {
				t.Errorf("SanitizeTag(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"README.md", "README.md", true},
		{"README.md", "docs/README.md", false},
		{"README.md", "README.mdx", false},
		{"*.md", "README.md", true},
		{"*.md", "docs/README.md", false},
		{"docs/*", "docs/a.md", true},
		{"docs/*", "docs/sub/a.md", false},
		{"docs/**", "docs/a.md", true},
		{"docs/**", "docs/sub/deep/a.md", true},
		{"docs/**", "documents/a.md", false},
		{"docs/**", "src/docs/a.md", false},
		{"**/*.md", "README.md", true},
		{"**/*.md", "a/b/c/README.md", true},
		{"**/*.md", "a/b/c/README.go", false},
		{"src/**/*_test.go", "src/x_test.go", true},
		{"src/**/*_test.go", "src/a/b/x_test.go", true},
		{"src/**/*_test.go", "lib/x_test.go", false},
		{"**", "anything/at/all", true},
		{"?.go", "a.go", true},
		{"?.go", "ab.go", false},
		{"a?c", "a/c", false},
		{"*", "a/b", false},
		{"a.b", "axb", false}, // '.' is literal
		{"(x)+", "(x)+", true},
		{"(x)+", "xx", false},
		{"docs/**", "/docs/a.md", true}, // a leading slash on the path is ignored
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.path, func(t *testing.T) {
			g, err := ParseGlob(tt.pattern)
			if err != nil {
				t.Fatalf("ParseGlob(%q): %v", tt.pattern, err)
			}
			if got := g.Match(tt.path); got != tt.want {
				t.Errorf("ParseGlob(%q).Match(%q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
			}
		})
	}
	if _, err := ParseGlob(""); err == nil {
		t.Error(`ParseGlob("") = nil error, want one`)
	}
}

func mustFilters(t *testing.T, include, ignore []string) Filters {
	t.Helper()
	var f Filters
	for _, p := range include {
		g, err := ParseGlob(p)
		if err != nil {
			t.Fatalf("ParseGlob(%q): %v", p, err)
		}
		f.Include = append(f.Include, g)
	}
	for _, p := range ignore {
		g, err := ParseGlob(p)
		if err != nil {
			t.Fatalf("ParseGlob(%q): %v", p, err)
		}
		f.Ignore = append(f.Ignore, g)
	}
	return f
}

func TestFiltersPass(t *testing.T) {
	tests := []struct {
		name            string
		include, ignore []string
		changed         []string
		want            bool
		why             string // a substring of the reason when !want
	}{
		{"no filters", nil, nil, []string{"a.go"}, true, ""},
		{"no filters, no files", nil, nil, nil, true, ""},

		{"include only: a file matches", []string{"src/**"}, nil, []string{"README.md", "src/main.go"}, true, ""},
		{"include only: no file matches", []string{"src/**"}, nil, []string{"README.md", "docs/a.md"}, false, "include_paths"},
		{"include only: several patterns", []string{"src/**", "go.mod"}, nil, []string{"go.mod"}, true, ""},

		{"ignore only: one file not ignored", nil, []string{"docs/**", "**/*.md"}, []string{"docs/a.md", "main.go"}, true, ""},
		{"ignore only: all ignored", nil, []string{"docs/**", "**/*.md"}, []string{"docs/a.png", "README.md", "x/y.md"}, false, "ignore_paths"},

		{"both: included file not ignored", []string{"src/**"}, []string{"**/*.md"}, []string{"src/a.go", "src/README.md"}, true, ""},
		{"both: only included file is ignored", []string{"src/**"}, []string{"**/*.md"}, []string{"src/README.md", "main.go"}, false, "include_paths"},
		{"both: everything ignored", []string{"src/**"}, []string{"**/*.md"}, []string{"src/README.md", "README.md"}, false, "ignore_paths"},
		{"both: nothing included", []string{"src/**"}, []string{"**/*.md"}, []string{"main.go"}, false, "include_paths"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFilters(t, tt.include, tt.ignore)
			if got := f.Empty(); got != (len(tt.include) == 0 && len(tt.ignore) == 0) {
				t.Errorf("Empty() = %v", got)
			}
			ok, why := f.Pass(tt.changed)
			if ok != tt.want {
				t.Fatalf("Pass(%q) = %v (%q), want %v", tt.changed, ok, why, tt.want)
			}
			if ok && why != "" {
				t.Errorf("Pass(%q) passed with a reason %q", tt.changed, why)
			}
			if !ok && !strings.Contains(why, tt.why) {
				t.Errorf("Pass(%q) reason %q does not mention %q", tt.changed, why, tt.why)
			}
		})
	}
}

func TestSkipReason(t *testing.T) {
	tests := []struct {
		msg  string
		skip bool
	}{
		{"fix typo [skip ci]", true},
		{"[ci skip] docs", true},
		{"docs [no ci]", true},
		{"[skip build] only docs", true},
		{"[build skip]", true},
		{"Fix typo [SKIP CI]", true},
		{"Fix typo [Ci Skip]", true},
		{"title\n\nbody mentions [skip ci] in the body", true},
		{"title\n\nskip-checks: true", true},
		{"title\n\nskip-checks:true", true},
		{"title\n\nSkip-Checks: True\n", true},
		{"title\r\n\r\nskip-checks: true\r\n", true},
		{"title\n\nSigned-off-by: a <a@b>\nskip-checks: true", true},

		{"", false},
		{"ordinary commit", false},
		{"title\n\nskip-checks: false", false},
		{"title\n\nskip-checks: truely", false},
		{"title\n\nskip-checks: true or not", false},
		{"title\n\nnot skip-checks: true", false},
		{"title\n\nskip-checks:\ntrue", false},
		{"[skip] ci", false},
		{"skip ci", false},
		{"[skip-ci]", false},
		{"[skip  ci]", false},
		{"ci skip", false},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			got := SkipReason(tt.msg)
			if (got != "") != tt.skip {
				t.Errorf("SkipReason(%q) = %q, want skip=%v", tt.msg, got, tt.skip)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	ok := model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest"}}
	with := func(f func(*model.Rule)) model.Rule {
		r := ok
		r.Tags = append([]string(nil), ok.Tags...)
		f(&r)
		return r
	}
	tests := []struct {
		name  string
		index int
		rule  model.Rule
		field string // the error starts with rules[index].<field>:
		want  string // and contains this
	}{
		{"no source type", 0, with(func(r *model.Rule) { r.SourceType = "" }), "source_type", "branch"},
		{"commit source type", 2, with(func(r *model.Rule) { r.SourceType = "commit" }), "source_type", "commit"},
		{"empty source", 0, with(func(r *model.Rule) { r.Source = "" }), "source", "empty"},
		{"blank source", 0, with(func(r *model.Rule) { r.Source = "  " }), "source", "empty"},
		{"bad regex", 1, with(func(r *model.Rule) { r.Source = "/v(1/" }), "source", "does not compile"},
		{"non-RE2 regex", 1, with(func(r *model.Rule) { r.Source = `/(?=v)v1/` }), "source", "does not compile"},
		{"no tags", 0, with(func(r *model.Rule) { r.Tags = nil }), "tags", "at least one"},
		{"unknown placeholder", 0, with(func(r *model.Rule) { r.Tags = []string{"a", "{branch}", "{bogus}"} }), "tags[2]", "unknown placeholder"},
		{"unclosed brace", 4, with(func(r *model.Rule) { r.Tags = []string{"{branch"} }), "tags[0]", "unclosed"},
		{"date without layout", 0, with(func(r *model.Rule) { r.Tags = []string{"x", "{date}"} }), "tags[1]", "layout"},
		{"bad build arg name", 0, with(func(r *model.Rule) { r.BuildArgs = map[string]string{"1BAD": "x"} }), "build_args", "1BAD"},
		{"build arg name with dash", 0, with(func(r *model.Rule) { r.BuildArgs = map[string]string{"A-B": "x"} }), "build_args", "A-B"},
		{"bad build arg template", 0, with(func(r *model.Rule) { r.BuildArgs = map[string]string{"VERSION": "{nope}"} }), "build_args.VERSION", "unknown placeholder"},
		{"platform without arch", 0, with(func(r *model.Rule) { r.Platforms = "linux" }), "platforms", "linux"},
		{"platform with too many parts", 0, with(func(r *model.Rule) { r.Platforms = "linux/arm64/v8/x" }), "platforms", "linux/arm64/v8/x"},
		{"second platform bad", 0, with(func(r *model.Rule) { r.Platforms = "linux/amd64,windows" }), "platforms", "windows"},
		{"empty platform in list", 0, with(func(r *model.Rule) { r.Platforms = "linux/amd64," }), "platforms", "os/arch"},
		{"empty test target", 0, with(func(r *model.Rule) { r.Test = &model.Test{} }), "test.target", "must not be empty"},
		{"test target with space", 1, with(func(r *model.Rule) { r.Test = &model.Test{Target: "unit tests"} }), "test.target", `"unit tests" is not a Dockerfile stage name`},
		{"test target starting with digit", 0, with(func(r *model.Rule) { r.Test = &model.Test{Target: "1test"} }), "test.target", `"1test" is not a Dockerfile stage name`},
		{"bad include glob", 0, with(func(r *model.Rule) { r.IncludePaths = []string{"src/**", ""} }), "include_paths", "empty"},
		{"bad ignore glob", 0, with(func(r *model.Rule) { r.IgnorePaths = []string{""} }), "ignore_paths", "empty"},
		{"absolute dockerfile", 0, with(func(r *model.Rule) { r.Dockerfile = "/etc/passwd" }), "dockerfile", "inside the repository"},
		{"dockerfile above repo", 0, with(func(r *model.Rule) { r.Dockerfile = "../Dockerfile" }), "dockerfile", "inside the repository"},
		{"dockerfile escaping midway", 0, with(func(r *model.Rule) { r.Dockerfile = "build/../../Dockerfile" }), "dockerfile", "inside the repository"},
		{"absolute context", 0, with(func(r *model.Rule) { r.Context = "/" }), "context", "inside the repository"},
		{"parent context", 0, with(func(r *model.Rule) { r.Context = ".." }), "context", "inside the repository"},
		{"parent context with slash", 0, with(func(r *model.Rule) { r.Context = "../" }), "context", "inside the repository"},
		{"context ending in parent", 0, with(func(r *model.Rule) { r.Context = "a/.." }), "context", "inside the repository"},
		{"size warning without percent sign", 3, with(func(r *model.Rule) { r.SizeWarnIncrease = "20" }), "size_warn_increase", `want a percentage such as "20%", got "20"`},
		{"size warning as a fraction", 0, with(func(r *model.Rule) { r.SizeWarnIncrease = "0.2" }), "size_warn_increase", `got "0.2"`},
		{"size warning of zero", 0, with(func(r *model.Rule) { r.SizeWarnIncrease = "0%" }), "size_warn_increase", `above 0%`},
		{"negative size warning", 0, with(func(r *model.Rule) { r.SizeWarnIncrease = "-5%" }), "size_warn_increase", `got "-5%"`},
		{"size warning with a space", 0, with(func(r *model.Rule) { r.SizeWarnIncrease = "20 %" }), "size_warn_increase", `got "20 %"`},
		{"size warning in bytes", 1, with(func(r *model.Rule) { r.SizeWarnIncrease = "10MB" }), "size_warn_increase", `got "10MB"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for fn, f := range map[string]func(int, model.Rule) error{
				"Compile":  func(i int, r model.Rule) error { _, err := Compile(i, r); return err },
				"Validate": Validate,
			} {
				err := f(tt.index, tt.rule)
				if err == nil {
					t.Fatalf("%s = nil error, want one", fn)
				}
				prefix := fmt.Sprintf("rules[%d].%s: ", tt.index, tt.field)
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("%s error %q does not start with %q", fn, err, prefix)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s error %q does not contain %q", fn, err, tt.want)
				}
			}
		})
	}
}

func TestCompileValid(t *testing.T) {
	tests := []struct {
		name string
		rule model.Rule
	}{
		{"exact branch", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest"}}},
		{"exact tag", model.Rule{SourceType: "tag", Source: "v1.2.0", Tags: []string{"{version}"}}},
		{"regex", model.Rule{SourceType: "tag", Source: `/^v([0-9]+)\.([0-9]+)\.([0-9]+)$/`, Tags: []string{"{\\1}.{\\2}", "{\\3}"}}},
		{"all placeholders", model.Rule{SourceType: "branch", Source: "main", Tags: []string{
			"{sourceref}-{branch}-{tag}-{sha}-{short_sha}-{date:YYYYMMDD}-{date:2006-01-02}-{version}-{major}.{minor}.{patch}-{\\9}",
		}}},
		{"literal tags that need sanitising", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"app:1", ".x", "café"}}},
		{"build args", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"x"}, BuildArgs: map[string]string{"_A1": "{short_sha}", "EMPTY": ""}}},
		{"platforms", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"x"}, Platforms: "linux/amd64, linux/arm64/v8,linux/arm/v7"}},
		{"paths", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"x"}, Dockerfile: "build/Dockerfile.prod", Context: "services/api", IncludePaths: []string{"services/api/**"}, IgnorePaths: []string{"**/*.md"}}},
		{"dotted names", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"x"}, Dockerfile: "..Dockerfile", Context: "./"}},
		{"disabled", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"x"}, Enabled: ptr(false)}},
		{"test stage", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"x"}, Test: &model.Test{Target: "unit-test_1.go"}}},
		{"size warning", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"x"}, SizeWarnIncrease: "20%"}},
		{"fractional size warning", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"x"}, SizeWarnIncrease: "2.5%"}},
		{"size warning above double", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"x"}, SizeWarnIncrease: "150%"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(0, tt.rule); err != nil {
				t.Errorf("Validate = %v, want nil", err)
			}
			c, err := Compile(0, tt.rule)
			if err != nil {
				t.Fatalf("Compile = %v, want nil", err)
			}
			wantDockerfile, wantContext := tt.rule.Dockerfile, tt.rule.Context
			if wantDockerfile == "" {
				wantDockerfile = "Dockerfile"
			}
			if wantContext == "" {
				wantContext = "."
			}
			if c.Rule.Dockerfile != wantDockerfile || c.Rule.Context != wantContext {
				t.Errorf("Compile defaults: dockerfile %q, context %q; want %q, %q", c.Rule.Dockerfile, c.Rule.Context, wantDockerfile, wantContext)
			}
			if len(c.Filters.Include) != len(tt.rule.IncludePaths) || len(c.Filters.Ignore) != len(tt.rule.IgnorePaths) {
				t.Errorf("Compile filters: %d include, %d ignore; want %d, %d", len(c.Filters.Include), len(c.Filters.Ignore), len(tt.rule.IncludePaths), len(tt.rule.IgnorePaths))
			}
		})
	}
}

// wantPlan is what a test expects of a Plan; skip is a substring of the
// reason ("" means the plan must not be skipped).
type wantPlan struct {
	rules     []int
	tags      []string
	args      map[string]string
	skip      string
	needsDiff bool
}

func checkPlans(t *testing.T, got []Plan, want []wantPlan) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d plans, want %d:\n%+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if !reflect.DeepEqual(g.Rules, w.rules) {
			t.Errorf("plan %d: Rules = %v, want %v", i, g.Rules, w.rules)
		}
		if !reflect.DeepEqual(g.Tags, w.tags) {
			t.Errorf("plan %d: Tags = %q, want %q", i, g.Tags, w.tags)
		}
		if len(g.BuildArgs) != 0 || len(w.args) != 0 {
			if !reflect.DeepEqual(g.BuildArgs, w.args) {
				t.Errorf("plan %d: BuildArgs = %q, want %q", i, g.BuildArgs, w.args)
			}
		}
		switch {
		case w.skip == "" && g.Skip != "":
			t.Errorf("plan %d: Skip = %q, want none", i, g.Skip)
		case w.skip != "" && !strings.Contains(g.Skip, w.skip):
			t.Errorf("plan %d: Skip = %q, want it to mention %q", i, g.Skip, w.skip)
		}
		if g.NeedsDiff != w.needsDiff {
			t.Errorf("plan %d: NeedsDiff = %v, want %v", i, g.NeedsDiff, w.needsDiff)
		}
		if g.Rule.Dockerfile == "" || g.Rule.Context == "" {
			t.Errorf("plan %d: Rule has no default Dockerfile: %+v", i, g.Rule)
		}
	}
}

func TestPlans(t *testing.T) {
	branch := func(source string, tags ...string) model.Rule {
		return model.Rule{SourceType: "branch", Source: source, Tags: tags}
	}
	tag := func(source string, tags ...string) model.Rule {
		return model.Rule{SourceType: "tag", Source: source, Tags: tags}
	}
	with := func(r model.Rule, f func(*model.Rule)) model.Rule { f(&r); return r }
	push := func(ref string) Push {
		return Push{Ref: ref, Commit: testSHA, Time: testTime, Message: "a change", FilesComplete: true, Files: []string{"main.go"}}
	}
	pushWith := func(ref string, f func(*Push)) Push { p := push(ref); f(&p); return p }
	filtered := func(r model.Rule) model.Rule {
		r.IncludePaths = []string{"src/**"}
		r.IgnorePaths = []string{"**/*.md"}
		return r
	}

	tests := []struct {
		name string
		repo model.Repo
		push Push
		want []wantPlan
	}{
		// Matching.
		{
			name: "spec example: version forms",
			repo: model.Repo{Rules: []model.Rule{tag("/^v([0-9.]+)$/", "{version}", "{major}.{minor}", "{major}")}},
			push: push("refs/tags/v1.2.3"),
			want: []wantPlan{{rules: []int{0}, tags: []string{"1.2.3", "1.2", "1"}}},
		},
		{
			name: "spec example: capture group",
			repo: model.Repo{Rules: []model.Rule{tag("/^v([0-9.]+)$/", "{\\1}")}},
			push: push("refs/tags/v1.2.3"),
			want: []wantPlan{{rules: []int{0}, tags: []string{"1.2.3"}}},
		},
		{
			name: "regex must match the whole name",
			repo: model.Repo{Rules: []model.Rule{
				tag("/v1/", "a"),
				tag("/[0-9]+/", "b"),
				tag("/v1.*/", "c"),
			}},
			push: push("refs/tags/v1.2"),
			want: []wantPlan{{rules: []int{2}, tags: []string{"c"}}},
		},
		{
			name: "regex alternation is anchored as a whole",
			repo: model.Repo{Rules: []model.Rule{branch("/main|release/.*/", "x")}},
			push: push("refs/heads/not-main"),
			want: nil,
		},
		{
			name: "exact names are not patterns",
			repo: model.Repo{Rules: []model.Rule{
				branch("release/*", "a"),
				branch("release/.*", "b"),
				branch("Release/1.0", "c"),
				branch("release/1.0", "d"),
			}},
			push: push("refs/heads/release/1.0"),
			want: []wantPlan{{rules: []int{3}, tags: []string{"d"}}},
		},
		{
			name: "exact name is not a prefix or substring",
			repo: model.Repo{Rules: []model.Rule{branch("main", "a"), branch("ain", "b")}},
			push: push("refs/heads/main-old"),
			want: nil,
		},
		{
			name: "source type must match",
			repo: model.Repo{Rules: []model.Rule{tag("main", "t"), branch("main", "b")}},
			push: push("refs/heads/main"),
			want: []wantPlan{{rules: []int{1}, tags: []string{"b", "latest"}}},
		},
		{
			name: "tag rule does not match a branch of that name",
			repo: model.Repo{Rules: []model.Rule{branch("v1.0.0", "b")}},
			push: push("refs/tags/v1.0.0"),
			want: nil,
		},
		{
			name: "disabled rule never builds",
			repo: model.Repo{Rules: []model.Rule{
				with(branch("main", "off"), func(r *model.Rule) { r.Enabled = ptr(false) }),
				with(branch("main", "on"), func(r *model.Rule) { r.Enabled = ptr(true) }),
			}},
			push: push("refs/heads/main"),
			want: []wantPlan{{rules: []int{1}, tags: []string{"on", "latest"}}},
		},
		{
			name: "other refs build nothing",
			repo: model.Repo{Rules: []model.Rule{branch("/.*/", "x"), tag("/.*/", "y")}},
			push: push("refs/pull/1/head"),
			want: nil,
		},
		{
			name: "no rules",
			repo: model.Repo{},
			push: push("refs/heads/main"),
			want: nil,
		},

		// Tags.
		{
			name: "branch placeholders, sanitised",
			repo: model.Repo{Rules: []model.Rule{branch("/feature/.*/", "{branch}", "{sourceref}-{short_sha}", "{tag}", "{date:YYYYMMDD}", "{sha}")}},
			push: push("refs/heads/feature/Login_Ü"),
			want: []wantPlan{{rules: []int{0}, tags: []string{"feature-Login_-", "feature-Login_--" + testShort, "20240306", testSHA}}},
		},
		{
			name: "tag placeholders: branch is empty and dropped",
			repo: model.Repo{Rules: []model.Rule{tag("/.*/", "{branch}", "{tag}", "b-{branch}")}},
			push: push("refs/tags/release-7"),
			want: []wantPlan{{rules: []int{0}, tags: []string{"release-7"}}},
		},
		{
			name: "pre-release gets only the version, never latest or short forms",
			repo: model.Repo{DefaultBranch: "main", Rules: []model.Rule{tag("/v.*/", "{version}", "{major}.{minor}", "{major}", "{patch}", "latest")}},
			push: push("refs/tags/v1.2.3-rc.1"),
			want: []wantPlan{{rules: []int{0}, tags: []string{"1.2.3-rc.1"}}},
		},
		{
			name: "non-semver tag: version forms dropped, short sha fallback",
			repo: model.Repo{Rules: []model.Rule{tag("/.*/", "{version}", "{major}")}},
			push: push("refs/tags/nightly"),
			want: []wantPlan{{rules: []int{0}, tags: []string{testShort}}},
		},
		{
			name: "templates that sanitise to nothing are dropped",
			repo: model.Repo{Rules: []model.Rule{branch("dev", "...", "{\\1}", "ok")}},
			push: push("refs/heads/dev"),
			want: []wantPlan{{rules: []int{0}, tags: []string{"ok"}}},
		},
		{
			name: "duplicates collapse, order kept",
			repo: model.Repo{Rules: []model.Rule{branch("/.*/", "b", "{branch}", "a", "feature-x", "b", "{sourceref}")}},
			push: push("refs/heads/feature/x"),
			want: []wantPlan{{rules: []int{0}, tags: []string{"b", "feature-x", "a"}}},
		},
		{
			name: "long tag cut to 128",
			repo: model.Repo{Rules: []model.Rule{branch("/.*/", "{branch}-{sha}")}},
			push: push("refs/heads/" + strings.Repeat("x", 100)),
			want: []wantPlan{{rules: []int{0}, tags: []string{(strings.Repeat("x", 100) + "-" + testSHA)[:128]}}},
		},

		// latest_for_default_branch.
		{
			name: "default branch falls back to main",
			repo: model.Repo{Rules: []model.Rule{branch("main", "{short_sha}")}},
			push: push("refs/heads/main"),
			want: []wantPlan{{rules: []int{0}, tags: []string{testShort, "latest"}}},
		},
		{
			name: "host's default branch",
			repo: model.Repo{Rules: []model.Rule{branch("/.*/", "{branch}")}},
			push: pushWith("refs/heads/trunk", func(p *Push) { p.DefaultBranch = "trunk" }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"trunk", "latest"}}},
		},
		{
			name: "host's default branch: main is not it",
			repo: model.Repo{Rules: []model.Rule{branch("/.*/", "{branch}")}},
			push: pushWith("refs/heads/main", func(p *Push) { p.DefaultBranch = "trunk" }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"main"}}},
		},
		{
			name: "repository's default branch wins over the host's",
			repo: model.Repo{DefaultBranch: "develop", Rules: []model.Rule{branch("/.*/", "{branch}")}},
			push: pushWith("refs/heads/develop", func(p *Push) { p.DefaultBranch = "main" }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"develop", "latest"}}},
		},
		{
			name: "repository's default branch wins: host's gets no latest",
			repo: model.Repo{DefaultBranch: "develop", Rules: []model.Rule{branch("/.*/", "{branch}")}},
			push: pushWith("refs/heads/main", func(p *Push) { p.DefaultBranch = "main" }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"main"}}},
		},
		{
			name: "latest_for_default_branch explicitly true",
			repo: model.Repo{LatestForDefaultBranch: ptr(true), Rules: []model.Rule{branch("main", "x")}},
			push: push("refs/heads/main"),
			want: []wantPlan{{rules: []int{0}, tags: []string{"x", "latest"}}},
		},
		{
			name: "latest_for_default_branch false",
			repo: model.Repo{LatestForDefaultBranch: ptr(false), Rules: []model.Rule{branch("main", "x")}},
			push: push("refs/heads/main"),
			want: []wantPlan{{rules: []int{0}, tags: []string{"x"}}},
		},
		{
			name: "tag pushes never get latest from the default branch",
			repo: model.Repo{Rules: []model.Rule{tag("main", "{tag}")}},
			push: pushWith("refs/tags/main", func(p *Push) { p.DefaultBranch = "main" }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"main"}}},
		},
		{
			name: "latest is not repeated",
			repo: model.Repo{Rules: []model.Rule{branch("main", "latest", "x")}},
			push: push("refs/heads/main"),
			want: []wantPlan{{rules: []int{0}, tags: []string{"latest", "x"}}},
		},
		{
			name: "no template left on the default branch: short sha and latest",
			repo: model.Repo{Rules: []model.Rule{branch("main", "{tag}")}},
			push: push("refs/heads/main"),
			want: []wantPlan{{rules: []int{0}, tags: []string{testShort, "latest"}}},
		},

		// Build args.
		{
			name: "build args templated, an empty render stays empty",
			repo: model.Repo{Rules: []model.Rule{with(tag("/v.*/", "{version}"), func(r *model.Rule) {
				r.BuildArgs = map[string]string{
					"VERSION": "{version}",
					"BRANCH":  "{branch}",
					"REV":     "{short_sha}",
					"MAJOR":   "v{major}",
					"PLAIN":   "a b/c",
					"BLANK":   "",
					"BUILT":   "{date:YYYY-MM-DDTHH:mm:ss}",
				}
			})}},
			push: push("refs/tags/v2.0.1"),
			want: []wantPlan{{rules: []int{0}, tags: []string{"2.0.1"}, args: map[string]string{
				"VERSION": "2.0.1",
				"BRANCH":  "",
				"REV":     testShort,
				"MAJOR":   "v2",
				"PLAIN":   "a b/c",
				"BLANK":   "",
				"BUILT":   "2024-03-06T04:30:15",
			}}},
		},

		// Several rules.
		{
			name: "same build: one plan, union of tags in order",
			repo: model.Repo{Rules: []model.Rule{
				branch("main", "a", "{short_sha}"),
				branch("/ma.*/", "b", "a", "{branch}"),
			}},
			push: push("refs/heads/main"),
			want: []wantPlan{{rules: []int{0, 1}, tags: []string{"a", testShort, "latest", "b", "main"}}},
		},
		{
			name: "same build after defaults and with equal rendered args",
			repo: model.Repo{Rules: []model.Rule{
				with(branch("dev", "a"), func(r *model.Rule) {
					r.BuildArgs = map[string]string{"REV": "{short_sha}"}
					r.Platforms = "linux/amd64"
				}),
				tag("dev", "t"),
				with(branch("/d.v/", "b"), func(r *model.Rule) {
					r.Dockerfile, r.Context = "Dockerfile", "."
					r.BuildArgs = map[string]string{"REV": testShort}
					r.Platforms = "linux/amd64"
					r.Cache = ptr(true)
				}),
			}},
			push: push("refs/heads/dev"),
			want: []wantPlan{{rules: []int{0, 2}, tags: []string{"a", "b"}, args: map[string]string{"REV": testShort}}},
		},
		{
			name: "different builds stay apart",
			repo: model.Repo{Rules: []model.Rule{
				branch("dev", "base"),
				with(branch("dev", "dockerfile"), func(r *model.Rule) { r.Dockerfile = "other.Dockerfile" }),
				with(branch("dev", "context"), func(r *model.Rule) { r.Context = "sub" }),
				with(branch("dev", "target"), func(r *model.Rule) { r.Target = "debug" }),
				with(branch("dev", "args"), func(r *model.Rule) { r.BuildArgs = map[string]string{"A": "1"} }),
				with(branch("dev", "platforms"), func(r *model.Rule) { r.Platforms = "linux/arm64" }),
				with(branch("dev", "nocache"), func(r *model.Rule) { r.Cache = ptr(false) }),
				with(branch("dev", "provenance"), func(r *model.Rule) { r.Provenance = true }),
				with(branch("dev", "include"), func(r *model.Rule) { r.IncludePaths = []string{"**"} }),
				with(branch("dev", "ignore"), func(r *model.Rule) { r.IgnorePaths = []string{"docs/**"} }),
				branch("dev", "base2"),
				with(branch("dev", "test"), func(r *model.Rule) { r.Test = &model.Test{Target: "test"} }),
			}},
			push: push("refs/heads/dev"),
			want: []wantPlan{
				{rules: []int{0, 10}, tags: []string{"base", "base2"}},
				{rules: []int{1}, tags: []string{"dockerfile"}},
				{rules: []int{2}, tags: []string{"context"}},
				{rules: []int{3}, tags: []string{"target"}},
				{rules: []int{4}, tags: []string{"args"}, args: map[string]string{"A": "1"}},
				{rules: []int{5}, tags: []string{"platforms"}},
				{rules: []int{6}, tags: []string{"nocache"}},
				{rules: []int{7}, tags: []string{"provenance"}},
				{rules: []int{8}, tags: []string{"include"}},
				{rules: []int{9}, tags: []string{"ignore"}},
				{rules: []int{11}, tags: []string{"test"}},
			},
		},
		{
			name: "args that render differently stay apart",
			repo: model.Repo{Rules: []model.Rule{
				with(branch("dev", "a"), func(r *model.Rule) { r.BuildArgs = map[string]string{"X": "{branch}"} }),
				with(branch("dev", "b"), func(r *model.Rule) { r.BuildArgs = map[string]string{"X": "{tag}"} }),
				with(branch("dev", "c"), func(r *model.Rule) { r.BuildArgs = map[string]string{"Y": "dev"} }),
			}},
			push: push("refs/heads/dev"),
			want: []wantPlan{
				{rules: []int{0}, tags: []string{"a"}, args: map[string]string{"X": "dev"}},
				{rules: []int{1}, tags: []string{"b"}, args: map[string]string{"X": ""}},
				{rules: []int{2}, tags: []string{"c"}, args: map[string]string{"Y": "dev"}},
			},
		},

		// Skip markers.
		{
			name: "skip marker skips every plan",
			repo: model.Repo{Rules: []model.Rule{
				branch("main", "a"),
				with(branch("main", "b"), func(r *model.Rule) { r.Target = "t" }),
			}},
			push: pushWith("refs/heads/main", func(p *Push) { p.Message = "Docs only [Skip CI]" }),
			want: []wantPlan{
				{rules: []int{0}, tags: []string{"a", "latest"}, skip: "[skip ci]"},
				{rules: []int{1}, tags: []string{"b", "latest"}, skip: "[skip ci]"},
			},
		},
		{
			name: "skipped rules that build the same still share one plan",
			repo: model.Repo{Rules: []model.Rule{branch("main", "a"), branch("main", "b")}},
			push: pushWith("refs/heads/main", func(p *Push) { p.Message = "x\n\nskip-checks: true" }),
			want: []wantPlan{{rules: []int{0, 1}, tags: []string{"a", "latest", "b"}, skip: "skip-checks"}},
		},
		{
			name: "skip-checks false builds",
			repo: model.Repo{Rules: []model.Rule{branch("main", "a")}},
			push: pushWith("refs/heads/main", func(p *Push) { p.Message = "x\n\nskip-checks: false\n[skip] ci" }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"a", "latest"}}},
		},
		{
			name: "skip marker wins over a truncated file list",
			repo: model.Repo{Rules: []model.Rule{filtered(branch("dev", "a"))}},
			push: pushWith("refs/heads/dev", func(p *Push) { p.Message = "[ci skip]"; p.FilesComplete = false }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"a"}, skip: "[ci skip]"}},
		},

		// Path filters.
		{
			name: "include only: matching file builds",
			repo: model.Repo{Rules: []model.Rule{with(branch("dev", "a"), func(r *model.Rule) { r.IncludePaths = []string{"src/**"} })}},
			push: pushWith("refs/heads/dev", func(p *Push) { p.Files = []string{"README.md", "src/a/b.go"} }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"a"}}},
		},
		{
			name: "include only: nothing matches",
			repo: model.Repo{Rules: []model.Rule{with(branch("dev", "a"), func(r *model.Rule) { r.IncludePaths = []string{"src/**"} })}},
			push: pushWith("refs/heads/dev", func(p *Push) { p.Files = []string{"README.md", "docs/src/x.go"} }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"a"}, skip: "include_paths"}},
		},
		{
			name: "ignore only: a file not ignored builds",
			repo: model.Repo{Rules: []model.Rule{with(branch("dev", "a"), func(r *model.Rule) { r.IgnorePaths = []string{"docs/**"} })}},
			push: pushWith("refs/heads/dev", func(p *Push) { p.Files = []string{"docs/a.md", "main.go"} }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"a"}}},
		},
		{
			name: "ignore only: all ignored",
			repo: model.Repo{Rules: []model.Rule{with(branch("dev", "a"), func(r *model.Rule) { r.IgnorePaths = []string{"docs/**", "*.md"} })}},
			push: pushWith("refs/heads/dev", func(p *Push) { p.Files = []string{"docs/a.md", "docs/img/b.png", "README.md"} }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"a"}, skip: "ignore_paths"}},
		},
		{
			name: "both: included and not ignored builds",
			repo: model.Repo{Rules: []model.Rule{filtered(branch("dev", "a"))}},
			push: pushWith("refs/heads/dev", func(p *Push) { p.Files = []string{"src/README.md", "src/x.go"} }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"a"}}},
		},
		{
			name: "both: the only included file is ignored",
			repo: model.Repo{Rules: []model.Rule{filtered(branch("dev", "a"))}},
			push: pushWith("refs/heads/dev", func(p *Push) { p.Files = []string{"src/README.md", "Makefile"} }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"a"}, skip: "include_paths"}},
		},
		{
			name: "both: all ignored",
			repo: model.Repo{Rules: []model.Rule{filtered(branch("dev", "a"))}},
			push: pushWith("refs/heads/dev", func(p *Push) { p.Files = []string{"src/README.md", "CHANGES.md"} }),
			want: []wantPlan{{rules: []int{0}, tags: []string{"a"}, skip: "ignore_paths"}},
		},
		{
			name: "truncated payload: filters need a diff, no skip",
			repo: model.Repo{Rules: []model.Rule{filtered(branch("dev", "a")), branch("dev", "b")}},
			push: pushWith("refs/heads/dev", func(p *Push) { p.Files = []string{"CHANGES.md"}; p.FilesComplete = false }),
			want: []wantPlan{
				{rules: []int{0}, tags: []string{"a"}, needsDiff: true},
				{rules: []int{1}, tags: []string{"b"}},
			},
		},
		{
			name: "filters only skip the rules that have them",
			repo: model.Repo{Rules: []model.Rule{filtered(branch("dev", "a")), branch("dev", "b")}},
			push: pushWith("refs/heads/dev", func(p *Push) { p.Files = []string{"CHANGES.md"} }),
			want: []wantPlan{
				{rules: []int{0}, tags: []string{"a"}, skip: "ignore_paths"},
				{rules: []int{1}, tags: []string{"b"}},
			},
		},
		{
			name: "same filters share a plan",
			repo: model.Repo{Rules: []model.Rule{filtered(branch("dev", "a")), filtered(branch("/dev/", "b"))}},
			push: pushWith("refs/heads/dev", func(p *Push) { p.Files = []string{"src/x.go"} }),
			want: []wantPlan{{rules: []int{0, 1}, tags: []string{"a", "b"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Plans(tt.repo, tt.push)
			if err != nil {
				t.Fatalf("Plans: %v", err)
			}
			checkPlans(t, got, tt.want)
		})
	}
}

func TestPlansRule(t *testing.T) {
	repo := model.Repo{Rules: []model.Rule{
		{SourceType: "branch", Source: "main", Tags: []string{"a"}, Target: "prod", Platforms: "linux/amd64,linux/arm64"},
		{SourceType: "branch", Source: "main", Tags: []string{"b"}, Dockerfile: "Dockerfile", Context: ".", Target: "prod", Platforms: "linux/amd64,linux/arm64"},
	}}
	before := append([]model.Rule(nil), repo.Rules...)
	plans, err := Plans(repo, Push{Ref: "refs/heads/main", Commit: testSHA, Time: testTime, FilesComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 {
		t.Fatalf("got %d plans, want 1: %+v", len(plans), plans)
	}
	want := repo.Rules[0]
	want.Dockerfile, want.Context = "Dockerfile", "."
	if !reflect.DeepEqual(plans[0].Rule, want) {
		t.Errorf("plan Rule = %+v, want the first rule with defaults %+v", plans[0].Rule, want)
	}
	if !reflect.DeepEqual(repo.Rules, before) {
		t.Errorf("Plans changed the repository's rules: %+v", repo.Rules)
	}
}

func TestPlansInvalidRule(t *testing.T) {
	repo := model.Repo{Rules: []model.Rule{
		{SourceType: "branch", Source: "main", Tags: []string{"a"}},
		{SourceType: "branch", Source: "/(/", Tags: []string{"b"}},
	}}
	plans, err := Plans(repo, Push{Ref: "refs/heads/main", Commit: testSHA, Time: testTime})
	if err == nil {
		t.Fatalf("Plans = %+v, nil error; want an error for rules[1]", plans)
	}
	if !strings.HasPrefix(err.Error(), "rules[1].source: ") {
		t.Errorf("error %q does not name rules[1].source", err)
	}
}
