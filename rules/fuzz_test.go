package rules

import (
	"regexp"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
)

// dockerTagRE is the grammar of an image tag in the distribution spec.
var dockerTagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// FuzzPlans matches arbitrary pushes against a rule with arbitrary source
// and tag templates: Plans never panics, and every tag it renders is a
// valid image tag, whatever the branch or tag name brings into it.
func FuzzPlans(f *testing.F) {
	f.Add("branch", "main", "{branch}-{short_sha}", "latest", "refs/heads/main", testSHA, "msg", int64(1709695815))
	f.Add("tag", "/v(\\d+)\\.(\\d+)\\.(\\d+)(-.*)?/", "{version}", "{major}.{minor}", "refs/tags/v1.2.3-rc.1", testSHA, "", int64(0))
	f.Add("branch", "/feature/(.*)/", "feat-\\1", "{date:YYYYMMDD}-{sha}", "refs/heads/feature/ü/..x", "", "[skip ci]", int64(-1))
	f.Add("tag", "/.*/", "{tag}", "{sourceref}", "refs/tags/.-.-"+string(make([]byte, 200)), "zz", "", int64(1<<40))
	f.Fuzz(func(t *testing.T, sourceType, source, tag1, tag2, ref, commit, message string, unix int64) {
		repo := model.Repo{Rules: []model.Rule{{SourceType: sourceType, Source: source, Tags: []string{tag1, tag2}}}}
		plans, err := Plans(repo, Push{Ref: ref, Commit: commit, Message: message, Time: time.Unix(unix, 0)})
		if err != nil {
			return
		}
		for _, p := range plans {
			for _, tag := range p.Tags {
				if !dockerTagRE.MatchString(tag) {
					t.Fatalf("ref %q commit %q: rendered tag %q is not a valid image tag", ref, commit, tag)
				}
			}
		}
	})
}

// FuzzTemplate renders arbitrary templates with arbitrary values: parsing
// and rendering never panic, and a sanitised rendering is a valid image tag
// or empty.
func FuzzTemplate(f *testing.F) {
	f.Add("{branch}-{short_sha}", "branch", "feature/login", testSHA, "x", int64(1709695815))
	f.Add("{version}-{major}.{minor}.{patch}", "tag", "v1.2.3", testSHA, "1", int64(0))
	f.Add("{date:YYYY-MM-DD HH:mm:ss}{\\1}", "tag", "", "", "", int64(-62135596800))
	f.Fuzz(func(t *testing.T, src, kind, name, sha, group string, unix int64) {
		tpl, err := ParseTemplate(src)
		if err != nil {
			return
		}
		out := SanitizeTag(tpl.Render(Vars{Kind: kind, Name: name, SHA: sha, Time: time.Unix(unix, 0), Groups: []string{name, group}}))
		if out != "" && !dockerTagRE.MatchString(out) {
			t.Fatalf("template %q rendered %q, not a valid image tag", src, out)
		}
	})
}
