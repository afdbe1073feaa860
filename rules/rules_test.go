package rules

import (
	"reflect"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/model"
)

func TestRef(t *testing.T) {
	tests := []struct {
		ref, kind, name string
	}{
		{"refs/heads/main", "branch", "main"},
		{"refs/heads/feature/login", "branch", "feature/login"},
		{"refs/heads/refs/tags/x", "branch", "refs/tags/x"},
		{"refs/tags/v1.2.0", "tag", "v1.2.0"},
		{"refs/tags/release/2024-03", "tag", "release/2024-03"},
		{"refs/pull/42/head", "", "refs/pull/42/head"},
		{"main", "", "main"},
		{"refs/heads", "", "refs/heads"},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			kind, name := Ref(tt.ref)
			if kind != tt.kind || name != tt.name {
				t.Errorf("Ref(%q) = %q, %q; want %q, %q", tt.ref, kind, name, tt.kind, tt.name)
			}
		})
	}
}

func TestFind(t *testing.T) {
	repo := model.Repo{Rules: []model.Rule{
		0: {SourceType: "branch", Source: "main", Tags: []string{"latest"}},
		1: {SourceType: "tag", Source: "main", Tags: []string{"tag-main"}},
		2: {SourceType: "tag", Source: "v1.2.0", Tags: []string{"1.2.0", "stable"}, Dockerfile: "build/Dockerfile", Context: "build"},
		3: {SourceType: "branch", Source: "main", Tags: []string{"edge"}, Dockerfile: "edge.Dockerfile"},
		4: {SourceType: "branch", Source: "release/*", Tags: []string{"rc"}},
		5: {SourceType: "branch", Source: "feature/login", Tags: []string{"login"}, Context: "web"},
	}}
	withDefaults := func(i int) model.Rule {
		r := repo.Rules[i]
		if r.Dockerfile == "" {
			r.Dockerfile = "Dockerfile"
		}
		if r.Context == "" {
			r.Context = "."
		}
		return r
	}
	tests := []struct {
		ref  string
		want []int
	}{
		{"refs/heads/main", []int{0, 3}},
		{"refs/tags/main", []int{1}},
		{"refs/tags/v1.2.0", []int{2}},
		{"refs/heads/v1.2.0", nil},
		{"refs/tags/v1.2", nil},
		{"refs/tags/v1.2.0.1", nil},
		{"refs/heads/Main", nil},
		{"refs/heads/main2", nil},
		{"refs/heads/feature/login", []int{5}},
		{"refs/heads/release/1.0", nil}, // names are exact, not globs
		{"refs/heads/release/*", []int{4}},
		{"main", nil},
		{"refs/pull/42/head", nil},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got := Find(repo, tt.ref)
			var want []Match
			for _, i := range tt.want {
				want = append(want, Match{Index: i, Rule: withDefaults(i), Tags: repo.Rules[i].Tags})
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Find(%q) =\n %+v\nwant\n %+v", tt.ref, got, want)
			}
		})
	}
	// Defaults go on the match, not back into the repository.
	if repo.Rules[0].Dockerfile != "" || repo.Rules[0].Context != "" {
		t.Errorf("Find changed the repository's rule: %+v", repo.Rules[0])
	}
}

func TestFindNoRules(t *testing.T) {
	if got := Find(model.Repo{}, "refs/heads/main"); len(got) != 0 {
		t.Errorf("Find on a repo without rules = %+v", got)
	}
}

func TestValidate(t *testing.T) {
	ok := model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest"}}
	with := func(f func(*model.Rule)) model.Rule {
		r := ok
		r.Tags = append([]string(nil), ok.Tags...)
		f(&r)
		return r
	}
	long := strings.Repeat("a", 128)

	valid := []struct {
		name string
		rule model.Rule
	}{
		{"branch", ok},
		{"tag", with(func(r *model.Rule) { r.SourceType, r.Source = "tag", "v1.2.0" })},
		{"nested branch", with(func(r *model.Rule) { r.Source = "feature/login" })},
		{"several tags", with(func(r *model.Rule) { r.Tags = []string{"latest", "1.2.0", "v1_2-rc.1", "_x", "A9"} })},
		{"128 character tag", with(func(r *model.Rule) { r.Tags = []string{long} })},
		{"dockerfile in a folder", with(func(r *model.Rule) { r.Dockerfile = "build/Dockerfile.prod" })},
		{"context in a folder", with(func(r *model.Rule) { r.Context = "services/api" })},
		{"dot context", with(func(r *model.Rule) { r.Context = "./" })},
		{"dots in a name", with(func(r *model.Rule) { r.Dockerfile = "..Dockerfile" })},
	}
	for _, tt := range valid {
		t.Run("valid/"+tt.name, func(t *testing.T) {
			if err := Validate(0, tt.rule); err != nil {
				t.Errorf("Validate = %v, want nil", err)
			}
		})
	}

	invalid := []struct {
		name  string
		rule  model.Rule
		field string // the error must start with rules[3].<field>
	}{
		{"no source type", with(func(r *model.Rule) { r.SourceType = "" }), "source_type"},
		{"commit source type", with(func(r *model.Rule) { r.SourceType = "commit" }), "source_type"},
		{"capitalised source type", with(func(r *model.Rule) { r.SourceType = "Branch" }), "source_type"},
		{"empty source", with(func(r *model.Rule) { r.Source = "" }), "source"},
		{"blank source", with(func(r *model.Rule) { r.Source = "  " }), "source"},
		{"no tags", with(func(r *model.Rule) { r.Tags = nil }), "tags"},
		{"empty tag", with(func(r *model.Rule) { r.Tags = []string{""} }), "tags[0]"},
		{"tag with colon", with(func(r *model.Rule) { r.Tags = []string{"latest", "app:1"} }), "tags[1]"},
		{"tag with slash", with(func(r *model.Rule) { r.Tags = []string{"feature/x"} }), "tags[0]"},
		{"tag with space", with(func(r *model.Rule) { r.Tags = []string{"a", "b", "c d"} }), "tags[2]"},
		{"tag starting with dot", with(func(r *model.Rule) { r.Tags = []string{".hidden"} }), "tags[0]"},
		{"tag starting with dash", with(func(r *model.Rule) { r.Tags = []string{"-rc"} }), "tags[0]"},
		{"129 character tag", with(func(r *model.Rule) { r.Tags = []string{long + "a"} }), "tags[0]"},
		{"non-ascii tag", with(func(r *model.Rule) { r.Tags = []string{"café"} }), "tags[0]"},
		{"absolute dockerfile", with(func(r *model.Rule) { r.Dockerfile = "/etc/passwd" }), "dockerfile"},
		{"dockerfile above repo", with(func(r *model.Rule) { r.Dockerfile = "../Dockerfile" }), "dockerfile"},
		{"dockerfile escaping midway", with(func(r *model.Rule) { r.Dockerfile = "build/../../Dockerfile" }), "dockerfile"},
		{"absolute context", with(func(r *model.Rule) { r.Context = "/" }), "context"},
		{"parent context", with(func(r *model.Rule) { r.Context = ".." }), "context"},
		{"parent context with slash", with(func(r *model.Rule) { r.Context = "../" }), "context"},
	}
	for _, tt := range invalid {
		t.Run("invalid/"+tt.name, func(t *testing.T) {
			err := Validate(3, tt.rule)
			if err == nil {
				t.Fatal("Validate = nil, want an error")
			}
			if prefix := "rules[3]." + tt.field + ":"; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
		})
	}
}
