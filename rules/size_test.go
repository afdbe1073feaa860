package rules

import (
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
)

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]float64{"20%": 20, "2.5%": 2.5, "150%": 150, "0.1%": 0.1, "5%": 5} {
		got, err := ParsePercent(in)
		if err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "20", "%", "0%", "0.0%", "-1%", "1e3%", "20%%", " 20%", "twenty%"} {
		if got, err := ParsePercent(in); err == nil {
			t.Errorf("ParsePercent(%q) = %v, want an error", in, got)
		}
	}
}

// Two rules that share one build warn at the lower of their limits.
func TestMergedRulesWarnAtTheStrictestSize(t *testing.T) {
	repo := model.Repo{Rules: []model.Rule{
		{SourceType: "branch", Source: "main", Tags: []string{"latest"}, SizeWarnIncrease: "30%"},
		{SourceType: "branch", Source: "/.*/", Tags: []string{"{branch}"}},
		{SourceType: "branch", Source: "main", Tags: []string{"{sha}"}, SizeWarnIncrease: "10%"},
	}}
	plans, err := Plans(repo, Push{Ref: "refs/heads/main", Commit: "0123456789abcdef0123456789abcdef01234567", Time: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 || plans[0].Rule.SizeWarnIncrease != "10%" {
		t.Fatalf("plans = %+v, want one plan warning above 10%%", plans)
	}
}

func TestSameRule(t *testing.T) {
	main := model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest"}}
	for _, tc := range []struct {
		name   string
		change func(*model.Rule)
		same   bool
	}{
		{"identical", func(*model.Rule) {}, true},
		{"tags edited", func(r *model.Rule) { r.Tags = []string{"edge"} }, true},
		{"size warning set", func(r *model.Rule) { r.SizeWarnIncrease = "5%" }, true},
		{"build args edited", func(r *model.Rule) { r.BuildArgs = map[string]string{"V": "2"} }, true},
		{"defaults written out", func(r *model.Rule) { r.Dockerfile, r.Context = "Dockerfile", "." }, true},
		{"other branch", func(r *model.Rule) { r.Source = "dev" }, false},
		{"tag rule", func(r *model.Rule) { r.SourceType = "tag" }, false},
		{"other Dockerfile", func(r *model.Rule) { r.Dockerfile = "prod.Dockerfile" }, false},
		{"other context", func(r *model.Rule) { r.Context = "app" }, false},
		{"other target", func(r *model.Rule) { r.Target = "release" }, false},
		{"other platforms", func(r *model.Rule) { r.Platforms = "linux/arm64" }, false},
	} {
		other := main
		tc.change(&other)
		if got := SameRule(main, other); got != tc.same {
			t.Errorf("%s: SameRule = %v, want %v", tc.name, got, tc.same)
		}
	}
}
