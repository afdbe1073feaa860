package rules

import (
	"reflect"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/model"
)

func TestPullRequestPlans(t *testing.T) {
	pr := PullRequest{Number: 7, Head: testSHA, Base: "main", Time: testTime}
	branchMain := model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest", "{branch}"}}
	prMain := model.Rule{SourceType: "pull_request", Source: "main", Tags: []string{"pr-{pr}"}}
	tests := []struct {
		name  string
		rules []model.Rule
		pr    PullRequest
		want  [][]string // each plan's tags
	}{
		{"pull_request rule on the base branch", []model.Rule{prMain}, pr, [][]string{{"pr-7"}}},
		{"a branch rule never matches a pull request", []model.Rule{branchMain}, pr, nil},
		{"only the pull_request rule applies", []model.Rule{branchMain, prMain}, pr, [][]string{{"pr-7"}}},
		{"base branch by regex", []model.Rule{{SourceType: "pull_request", Source: "/rel-([0-9]+)/", Tags: []string{"pr-{pr}-rel{\\1}", "{sourceref}-pr{pr}"}}},
			PullRequest{Number: 12, Head: testSHA, Base: "rel-3"}, [][]string{{"pr-12-rel3", "rel-3-pr12"}}},
		{"another base branch builds nothing", []model.Rule{prMain}, PullRequest{Number: 7, Head: testSHA, Base: "dev"}, nil},
		{"{branch} is empty, so its tag is dropped", []model.Rule{{SourceType: "pull_request", Source: "main", Tags: []string{"pr-{pr}-{branch}", "pr-{pr}-{short_sha}"}}}, pr,
			[][]string{{"pr-7-" + testShort}}},
		{"the base branch is the default: still no latest", []model.Rule{prMain}, PullRequest{Number: 1, Head: testSHA, Base: "main"}, [][]string{{"pr-1"}}},
		{"disabled rule", []model.Rule{{SourceType: "pull_request", Source: "main", Tags: []string{"pr-{pr}"}, Enabled: ptr(false)}}, pr, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plans, err := PullRequestPlans(model.Repo{Rules: tt.rules}, tt.pr)
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, p := range plans {
				got = append(got, p.Tags)
				if p.Skip != "" || p.NeedsDiff {
					t.Errorf("plan %v: skip %q, needs diff %v; want neither", p.Tags, p.Skip, p.NeedsDiff)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tags = %v, want %v", got, tt.want)
			}
		})
	}
}

// A push never matches a pull_request rule.
func TestPushIgnoresPullRequestRules(t *testing.T) {
	repo := model.Repo{Rules: []model.Rule{{SourceType: "pull_request", Source: "/.*/", Tags: []string{"pr-{pr}"}}}}
	plans, err := Plans(repo, Push{Ref: "refs/heads/main", Commit: testSHA})
	if err != nil || len(plans) != 0 {
		t.Fatalf("Plans = %v, %v; want none", plans, err)
	}
}

func TestCompilePullRequestRules(t *testing.T) {
	tests := []struct {
		name string
		rule model.Rule
		want string // a substring of the error; "" for valid
	}{
		{"pull_request with {pr}", model.Rule{SourceType: "pull_request", Source: "main", Tags: []string{"pr-{pr}"}, DeleteOnClose: true}, ""},
		{"pull_request regex", model.Rule{SourceType: "pull_request", Source: "/.*/", Tags: []string{"pr-{pr}"}}, ""},
		{"{pr} on a branch rule", model.Rule{SourceType: "branch", Source: "main", Tags: []string{"x", "pr-{pr}"}}, "rules[0].tags[1]: {pr} is only known to pull_request rules"},
		{"delete_on_close on a tag rule", model.Rule{SourceType: "tag", Source: "/.*/", Tags: []string{"{tag}"}, DeleteOnClose: true}, "rules[0].delete_on_close"},
		{"pull_request tag without {pr}", model.Rule{SourceType: "pull_request", Source: "main", Tags: []string{"pr-{pr}", "latest"}}, "rules[0].tags[1]: a pull_request rule's tags must contain {pr}"},
		{"unknown source type", model.Rule{SourceType: "merge_request", Source: "main", Tags: []string{"x"}}, `want "branch", "tag" or "pull_request"`},
		{"bad regex", model.Rule{SourceType: "pull_request", Source: "/(/", Tags: []string{"pr-{pr}"}}, "rules[0].source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(0, tt.rule)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error with %q", err, tt.want)
			}
		})
	}
}
