package trigger_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/trigger"
)

const (
	head   = "4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5"
	before = "9b2c6f0a1d4e8b7c3a5f2e1d0c9b8a7f6e5d4c3b"
	// The ids of demoRepo's two builds of head on main. Written out: a
	// change to how ids are made would build every commit again after an
	// upgrade, so it must be a deliberate one.
	mainLatestID = "32ffb7db26131feb75a8"
	mainEdgeID   = "2209f7805e6b1ee58e6f"
)

var at = time.Date(2024, 3, 4, 10, 17, 42, 0, time.FixedZone("CET", 3600))

func demoRepo() model.Repo {
	return model.Repo{
		ID: "r1", Provider: "github", FullName: "acme/demo", CloneURL: "https://git.example.com/acme/demo.git",
		Image: "127.0.0.1:5000/acme/demo",
		Rules: []model.Rule{
			{SourceType: "branch", Source: "main", Tags: []string{"latest"}},
			{SourceType: "tag", Source: "v1.2.0", Tags: []string{"1.2.0"}},
			{SourceType: "branch", Source: "main", Tags: []string{"edge-{date:YYYYMMDD}"}, Dockerfile: "edge.Dockerfile", Context: "app"},
		},
	}
}

func ids(t *testing.T, repo model.Repo, p trigger.Push) []string {
	t.Helper()
	builds, err := trigger.Builds(repo, p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range builds {
		out = append(out, b.ID)
	}
	return out
}

// Whichever path sees a commit first, the build is the same one.
func TestEveryAutomaticTriggerNamesTheSameBuilds(t *testing.T) {
	repo := demoRepo()
	want := []string{mainLatestID, mainEdgeID}
	pushes := map[string]trigger.Push{
		"webhook":             {Ref: "refs/heads/main", Before: before, After: head, Time: at, Trigger: trigger.Webhook, DeliveryID: "d1", Message: "fix"},
		"webhook redelivered": {Ref: "refs/heads/main", Before: before, After: head, Time: at.Add(time.Hour), Trigger: trigger.Webhook, DeliveryID: "d2"},
		"reconcile":           {Ref: "refs/heads/main", Before: before, After: head, Time: at.Add(48 * time.Hour), Trigger: trigger.Reconcile},
		"register":            {Ref: "refs/heads/main", After: head, Time: at, Trigger: trigger.Register},
	}
	for name, p := range pushes {
		if got := ids(t, repo, p); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: ids = %v, want %v", name, got, want)
		}
	}
}

// A size warning says something about the image, not what is built: a
// rule that gains one names the same builds.
func TestSizeWarningKeepsTheID(t *testing.T) {
	repo := demoRepo()
	repo.Rules[0].SizeWarnIncrease = "20%"
	builds, err := trigger.Builds(repo, trigger.Push{Ref: "refs/heads/main", After: head, Time: at, Trigger: trigger.Webhook})
	if err != nil {
		t.Fatal(err)
	}
	if builds[0].ID != mainLatestID || builds[0].Rule.SizeWarnIncrease != "20%" {
		t.Errorf("build %s with size_warn_increase %q, want %s with \"20%%\"", builds[0].ID, builds[0].Rule.SizeWarnIncrease, mainLatestID)
	}
}

func TestIDChangesWithRepoRefCommitAndRule(t *testing.T) {
	base := trigger.Push{Ref: "refs/heads/main", After: head, Time: at, Trigger: trigger.Webhook}
	others := map[string]func(*model.Repo, *trigger.Push){
		"repository": func(r *model.Repo, _ *trigger.Push) { r.ID = "r2" },
		"ref":        func(r *model.Repo, p *trigger.Push) { r.Rules[0].Source = "/.*/"; p.Ref = "refs/heads/dev" },
		"commit":     func(_ *model.Repo, p *trigger.Push) { p.After = before },
		"rule":       func(r *model.Repo, _ *trigger.Push) { r.Rules[0].Dockerfile = "other.Dockerfile" },
	}
	for what, change := range others {
		repo, p := demoRepo(), base
		change(&repo, &p)
		if got := ids(t, repo, p); got[0] == mainLatestID {
			t.Errorf("changing the %s keeps id %s", what, got[0])
		}
	}
}

// A manual trigger is explicit: each asks for a build of its own.
func TestManualTriggerBuildsAgain(t *testing.T) {
	p := trigger.Push{Ref: "refs/heads/main", After: head, Time: at, Trigger: trigger.Manual}
	first, second := ids(t, demoRepo(), p), ids(t, demoRepo(), p)
	if len(first) != 2 || first[0] == mainLatestID || first[0] == second[0] {
		t.Errorf("manual ids = %v then %v, want two fresh ids each time", first, second)
	}
}

func TestBuildsCarryThePush(t *testing.T) {
	repo := demoRepo()
	repo.PushInstallationID = 77
	repo.Network = model.NetworkNone
	got, err := trigger.Builds(repo, trigger.Push{
		Ref: "refs/heads/main", Before: before, After: head, Message: "Bump base image", Pusher: "mona",
		Time: at, Trigger: trigger.Webhook, DeliveryID: "d1", InstallationID: 4242,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := model.Build{
		ID: mainLatestID, RepoID: "r1", Org: "acme", Ref: "refs/heads/main", Commit: head, Status: model.StatusQueued,
		Image: "127.0.0.1:5000/acme/demo", Tags: []string{"latest"},
		Rule:  model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest"}, Dockerfile: "Dockerfile", Context: "."},
		Rules: []int{0}, CloneURL: "https://git.example.com/acme/demo.git", Before: before, Message: "Bump base image",
		Pusher: "mona", Trigger: "webhook", DeliveryID: "d1", InstallationID: 4242, Network: "none",
		CreatedAt: time.Date(2024, 3, 4, 9, 17, 42, 0, time.UTC), Seq: 1709543862000000000,
	}
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("build =\n %+v\nwant\n %+v", got[0], want)
	}
	if tags := got[1].Tags; !reflect.DeepEqual(tags, []string{"edge-20240304", "latest"}) {
		t.Errorf("second build's tags = %v, want [edge-20240304 latest]", tags)
	}
}

// Builds no webhook started use the installation the repository's pushes
// came from.
func TestBuildsUseTheLearnedInstallation(t *testing.T) {
	repo := demoRepo()
	repo.PushInstallationID = 77
	for _, tr := range []string{trigger.Reconcile, trigger.Manual, trigger.Register} {
		got, err := trigger.Builds(repo, trigger.Push{Ref: "refs/heads/main", After: head, Time: at, Trigger: tr})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].InstallationID != 77 {
			t.Errorf("%s build: installation = %d, want 77", tr, got[0].InstallationID)
		}
	}
}

func TestPathFiltersApplyOnlyToPushes(t *testing.T) {
	repo := demoRepo()
	repo.Rules = []model.Rule{{SourceType: "branch", Source: "/.*/", Tags: []string{"{branch}"}, IncludePaths: []string{"app/**"}}}
	cases := []struct {
		trigger, before, wantBase string
		wantDiff                  bool
	}{
		{trigger.Webhook, before, "", true},
		{trigger.Reconcile, before, "", true},
		{trigger.Reconcile, "", "refs/heads/main", true}, // a new branch: compared with the default branch
		{trigger.Manual, "", "", false},
		{trigger.Register, "", "", false},
	}
	for _, c := range cases {
		got, err := trigger.Builds(repo, trigger.Push{Ref: "refs/heads/dev", Before: c.before, After: head, Time: at, Trigger: c.trigger})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].DiffFilter != c.wantDiff || got[0].BaseRef != c.wantBase {
			t.Errorf("%s (before %q): diff filter %v, base %q; want %v, %q", c.trigger, c.before, got[0].DiffFilter, got[0].BaseRef, c.wantDiff, c.wantBase)
		}
	}
}

func TestSkipMarkerRecordsASkippedBuild(t *testing.T) {
	got, err := trigger.Builds(demoRepo(), trigger.Push{Ref: "refs/heads/main", After: head, Message: "docs [skip ci]", Time: at, Trigger: trigger.Webhook})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].ID != mainLatestID || got[0].Status != model.StatusSkipped || got[0].FinishedAt == nil {
		t.Errorf("build = %+v, want %s skipped and finished", got[0], mainLatestID)
	}
}

func TestAgainCarriesEveryFieldOfThePush(t *testing.T) {
	started, finished := at.Add(time.Minute), at.Add(2*time.Minute)
	old := model.Build{
		ID: "old1", RepoID: "r1", Ref: "refs/heads/main", Commit: head, Status: model.StatusFailed,
		Image: "127.0.0.1:5000/acme/demo", Tags: []string{"latest"}, Digest: "sha256:aa", Error: "gave up after 10 attempts", GaveUp: true,
		ImageSize: 12500000, Warnings: []string{"image grew by 25% (from 10.0 MB to 12.5 MB; warn above 20%)"},
		Rule: model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest"}}, Rules: []int{0},
		BuildArgs: map[string]string{"V": "1"}, Before: before, Message: "fix", DiffFilter: true,
		BaseRef: "refs/heads/main", Reason: "r", SupersededBy: "b2", SkippedTags: []string{"latest"}, Seq: 42,
		CancelRequested: true, CloneURL: "https://git.example.com/acme/demo.git", Pusher: "mona",
		Trigger: "webhook", InstallationID: 4242, Network: "none", DeliveryID: "d1", CreatedAt: at, StartedAt: &started,
		FinishedAt: &finished, Attempts: 2, Deliveries: []model.Delivery{{Hook: 0}}, Statuses: []model.StatusPost{{State: "failure"}},
	}
	later := at.Add(time.Hour)
	got := trigger.Again(old, later)
	if got.ID == "" || got.ID == old.ID {
		t.Fatalf("rebuild id = %q, want a fresh one", got.ID)
	}
	want := model.Build{
		ID: got.ID, RepoID: "r1", Ref: "refs/heads/main", Commit: head, Status: model.StatusQueued,
		Image: "127.0.0.1:5000/acme/demo", Tags: []string{"latest"},
		Rule: model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest"}}, Rules: []int{0},
		BuildArgs: map[string]string{"V": "1"}, Before: before, Message: "fix", Seq: 42,
		CloneURL: "https://git.example.com/acme/demo.git", Pusher: "mona", Trigger: "rebuild", RebuildOf: "old1",
		InstallationID: 4242, Network: "none", DeliveryID: "d1", CreatedAt: later.UTC(),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rebuild =\n %+v\nwant\n %+v", got, want)
	}
}

func TestIsZeroSHA(t *testing.T) {
	for s, want := range map[string]bool{trigger.ZeroSHA: true, "0000000": true, "": false, head: false, "0000a": false} {
		if got := trigger.IsZeroSHA(s); got != want {
			t.Errorf("IsZeroSHA(%q) = %v, want %v", s, got, want)
		}
	}
}
