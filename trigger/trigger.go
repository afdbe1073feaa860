// Package trigger is the one place that decides what a push builds and what
// a build is. The webhook handler, the reconciler, registration and the
// API's manual trigger and rebuild all make their builds here, so a build's
// identity and fields never depend on which path saw the commit first.
package trigger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/rules"
)

// How Slipway learned of a push; recorded as a build's Trigger.
const (
	Webhook   = "webhook"   // the Git host's webhook
	Reconcile = "reconcile" // a branch tip no webhook announced
	Register  = "register"  // build_now when a repository is registered
	Manual    = "manual"    // POST /repos/{id}/builds
	Rebuild   = "rebuild"   // POST /builds/{id}/rebuild
)

// ZeroSHA is the object name Git hosts send for a ref that does not exist
// (before a creation, after a deletion).
const ZeroSHA = "0000000000000000000000000000000000000000"

// IsZeroSHA reports whether s is an all-zero object name: the ref did not
// exist before, or no longer exists after, the push.
func IsZeroSHA(s string) bool { return s != "" && strings.Trim(s, "0") == "" }

// Push is one ref update, however Slipway learned of it.
type Push struct {
	Ref     string // full ref, e.g. refs/heads/main
	Before  string // the previous tip, when known
	After   string // the commit to build
	Message string // head commit message, when known
	Pusher  string
	// DefaultBranch is the repository's default branch as the host
	// reports it; the repository's own setting wins.
	DefaultBranch string
	// Files are the changed paths; FilesComplete says the host listed
	// them all, so path filters apply now instead of after a diff.
	Files         []string
	FilesComplete bool
	Time          time.Time
	// Trigger is one of the constants above.
	Trigger    string
	DeliveryID string
	// InstallationID is the GitHub App installation the push came from.
	InstallationID int64
}

// Builds returns the builds push asks for under repo's rules; skipped plans
// come back finished. Every trigger but Manual gets ids from ID, so however
// many paths see one commit, it is built once.
func Builds(repo model.Repo, p Push) ([]model.Build, error) {
	plans, err := rules.Plans(repo, rules.Push{
		Ref: p.Ref, Commit: p.After, Message: p.Message, DefaultBranch: p.DefaultBranch,
		Time: p.Time, Files: p.Files, FilesComplete: p.FilesComplete,
	})
	if err != nil {
		return nil, err
	}
	out := make([]model.Build, 0, len(plans))
	for _, plan := range plans {
		out = append(out, newBuild(repo, plan, p))
	}
	return out, nil
}

func newBuild(repo model.Repo, plan rules.Plan, p Push) model.Build {
	now := p.Time.UTC()
	b := model.Build{
		ID: ID(repo.ID, p.Ref, p.After, plan), RepoID: repo.ID, Org: repo.Organization(), Ref: p.Ref, Commit: p.After,
		Status: model.StatusQueued, Image: repo.Image, Tags: plan.Tags, Rule: plan.Rule, Rules: plan.Rules,
		BuildArgs: plan.BuildArgs, CloneURL: repo.CloneURL, Before: p.Before, Message: p.Message,
		Pusher: p.Pusher, Trigger: p.Trigger, DeliveryID: p.DeliveryID, DiffFilter: plan.NeedsDiff,
		InstallationID: p.InstallationID, Network: repo.Network, CreatedAt: now, Seq: now.UnixNano(),
	}
	if b.InstallationID == 0 {
		b.InstallationID = repo.PushInstallationID
	}
	if explicit(p.Trigger) {
		// Asked for by hand: path filters do not apply.
		b.DiffFilter = false
	}
	if p.Trigger == Manual {
		// A manual trigger may build a commit again.
		b.ID = model.NewID()
	}
	if b.DiffFilter && (p.Before == "" || IsZeroSHA(p.Before)) {
		b.BaseRef = "refs/heads/" + rules.DefaultBranch(repo, p.DefaultBranch)
	}
	if plan.Skip != "" {
		b.Status, b.Reason, b.FinishedAt = model.StatusSkipped, plan.Skip, &now
	}
	return b
}

// explicit tells the triggers a person asked for.
func explicit(trigger string) bool {
	return trigger == Manual || trigger == Register || trigger == Rebuild
}

// ID is a build's identity: one repository, ref, commit and build plan. The
// plan is named by its rules' settings, not their rendered tags, so a push
// seen before and after midnight still names one build; a changed rule is a
// new plan and may build the commit again.
func ID(repoID, ref, commit string, plan rules.Plan) string {
	// A size warning changes what a build says about its image, not what
	// it builds: setting one must not build a commit again.
	named := plan.Rule
	named.SizeWarnIncrease = ""
	rule, err := json.Marshal(named)
	if err != nil {
		// model.Rule holds only strings, bools and maps of strings.
		panic(fmt.Sprintf("encode rule: %v", err))
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%v\x00%s", repoID, ref, commit, plan.Rules, rule))
	return hex.EncodeToString(sum[:10])
}

// Again is a new run of a finished build: every field of the push and its
// plan is carried over, the outcome is cleared, and it keeps the original's
// place in the ref's order so it never moves a tag past a newer push.
func Again(old model.Build, now time.Time) model.Build {
	b := old
	now = now.UTC()
	b.ID, b.Status, b.Trigger, b.RebuildOf, b.CreatedAt = model.NewID(), model.StatusQueued, Rebuild, old.ID, now
	b.Digest, b.Error, b.GaveUp, b.TestFailed, b.Reason, b.SupersededBy = "", "", false, false, "", ""
	b.ImageSize, b.Warnings = 0, nil
	b.SkippedTags, b.Deliveries, b.Statuses = nil, nil, nil
	b.RetryingSince, b.StartedAt, b.FinishedAt = nil, nil, nil
	b.CancelRequested, b.Attempts = false, 0
	// Asked for by hand: path filters do not apply.
	b.DiffFilter, b.BaseRef = false, ""
	return b
}

// Seen records branch tips without building them: package store.
type Seen interface {
	MarkSeen(ctx context.Context, repoID, ref, commit string, seq int64) error
	SetBaselined(ctx context.Context, repoID string) error
}

// Enqueuer stores and queues the builds of a push: package queue.
type Enqueuer interface {
	Enqueue(ctx context.Context, b model.Build, cancelOlder bool) (queue.Queued, error)
}

// Baseline records the branch tips a repository had when it was registered
// as seen, so that reconciliation never builds history nobody pushed while
// Slipway watched. With build, each watched tip is built now instead, under
// the same identity a webhook or the reconciler would give it. It returns
// the builds it stored.
func Baseline(ctx context.Context, seen Seen, q Enqueuer, repo model.Repo, heads map[string]string, build bool, now time.Time) ([]model.Build, error) {
	var out []model.Build
	for _, ref := range slices.Sorted(maps.Keys(heads)) {
		if !build {
			if err := seen.MarkSeen(ctx, repo.ID, ref, heads[ref], now.UnixNano()); err != nil {
				return out, err
			}
			continue
		}
		builds, err := Builds(repo, Push{Ref: ref, After: heads[ref], Time: now, Trigger: Register})
		if err != nil {
			return out, err
		}
		for _, b := range builds {
			queued, err := q.Enqueue(ctx, b, model.On(repo.CancelSuperseded, true))
			if err != nil {
				return out, err
			}
			out = append(out, queued.Build)
		}
	}
	return out, seen.SetBaselined(ctx, repo.ID)
}
