package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
)

// Reporter posts commit statuses to the Git hosts. Each status is a job in
// JetStream: a host that is down delays statuses, never builds.
type Reporter struct {
	Builds Builds
	Repos  Repos
	Jobs   Jobs
	Forges map[string]forge.Forge
	// Token returns the credentials for a repository's host API (its own
	// token, or a GitHub App installation token); "" means none.
	Token     func(ctx context.Context, repo model.Repo) (string, error)
	PublicURL string
	Logger    *slog.Logger
	Now       func() time.Time
	// MaxTries bounds the attempts for one status (default 8).
	MaxTries int
}

// Run posts statuses until ctx ends. One loop keeps each build's statuses
// in the order they were queued.
func (r *Reporter) Run(ctx context.Context) {
	consume(ctx, r.Jobs, r.logger(), "commit status", func(job queue.Job) { r.report(ctx, job) })
}

// rank orders states so that a stale status never follows a newer one.
func rank(state forge.State) int {
	switch state {
	case forge.Pending:
		return 1
	case forge.Running:
		return 2
	}
	return 3
}

func (r *Reporter) report(ctx context.Context, job queue.Job) {
	var sj queue.StatusJob
	if err := json.Unmarshal(job.Data(), &sj); err != nil {
		_ = job.Ack(ctx)
		return
	}
	log := r.logger().With("build", sj.BuildID, "state", sj.State)
	b, err := r.Builds.GetBuild(ctx, sj.BuildID)
	if err != nil {
		_ = job.Retry(5 * time.Second)
		return
	}
	repo, err := r.Repos.GetRepo(ctx, b.RepoID)
	f := r.Forges[repo.Provider]
	if err != nil || f == nil || stale(b, sj.State) {
		_ = job.Ack(ctx)
		return
	}
	token, err := r.Token(ctx, repo.WithInstallation(b))
	if err == nil && token == "" {
		_ = job.Ack(ctx) // no credentials: statuses are off for this repository
		return
	}
	if err == nil {
		err = r.post(ctx, f, forge.Conn{APIURL: repo.APIURL, FullName: repo.FullName, Token: token}, b, sj.State)
	}
	if err == nil {
		_ = job.Ack(ctx)
		return
	}
	if job.Delivered() >= r.maxTries() {
		log.Error("commit status not posted; giving up", "err", err, "tries", job.Delivered())
		_ = job.Ack(ctx)
		return
	}
	delay := min(time.Duration(1<<min(job.Delivered(), 8))*time.Second, 5*time.Minute)
	log.Warn("commit status not posted; will retry", "err", err, "in", delay)
	_ = job.Retry(delay)
}

// post sends state, first filling in the steps the build went through that
// the host has not heard of: status jobs of one build can be queued out of
// order (a worker may take a build before its pending status is queued), and
// the host should always see pending, running, then the end.
func (r *Reporter) post(ctx context.Context, f forge.Forge, conn forge.Conn, b model.Build, state forge.State) error {
	var steps []forge.State
	if state != forge.Pending && !posted(b, forge.Pending) {
		steps = append(steps, forge.Pending)
	}
	if rank(state) == 3 && b.StartedAt != nil && !posted(b, forge.Running) {
		steps = append(steps, forge.Running)
	}
	for _, st := range append(steps, state) {
		err := f.SetStatus(ctx, conn, r.status(b, st))
		r.record(ctx, b.ID, st, err)
		if err != nil {
			return err
		}
	}
	return nil
}

func posted(b model.Build, state forge.State) bool {
	for _, p := range b.Statuses {
		if forge.State(p.State) == state && p.Error == "" {
			return true
		}
	}
	return false
}

func stale(b model.Build, state forge.State) bool {
	for _, p := range b.Statuses {
		if p.Error == "" && rank(forge.State(p.State)) > rank(state) {
			return true
		}
	}
	return false
}

func (r *Reporter) record(ctx context.Context, buildID string, state forge.State, postErr error) {
	post := model.StatusPost{State: string(state), At: r.now().UTC()}
	if postErr != nil {
		post.Error = postErr.Error()
	}
	_, _ = r.Builds.UpdateBuild(ctx, buildID, func(b *model.Build) error {
		b.Statuses = append(b.Statuses, post)
		return nil
	})
}

// status words a build's state for the host.
func (r *Reporter) status(b model.Build, state forge.State) forge.Status {
	key := "slipway"
	if len(b.Tags) > 0 {
		key += "/" + b.Tags[0]
	}
	var desc string
	switch state {
	case forge.Pending:
		desc = "Queued"
	case forge.Running:
		desc = "Building " + b.Image
	case forge.Success:
		desc = "Pushed " + b.Image + ":" + strings.Join(b.Tags, ", ")
		if b.Status == model.StatusSkipped {
			desc = "No build needed: " + b.Reason
		}
	case forge.Cancelled:
		desc = "Cancelled: " + b.Reason
	default:
		desc = "Failed: " + b.Error
	}
	return forge.Status{
		Commit: b.Commit, State: state, Key: key, Description: forge.Describe(desc),
		URL: strings.TrimRight(r.PublicURL, "/") + "/api/v1/builds/" + b.ID,
	}
}

// StateOf maps a finished build to the status it reports.
func StateOf(b model.Build) forge.State {
	switch b.Status {
	case model.StatusSucceeded, model.StatusSkipped:
		return forge.Success
	case model.StatusCancelled:
		return forge.Cancelled
	case model.StatusFailed:
		if b.GaveUp {
			return forge.Error
		}
		return forge.Failure
	}
	return forge.Running
}

func (r *Reporter) maxTries() int {
	if r.MaxTries > 0 {
		return r.MaxTries
	}
	return 8
}

func (r *Reporter) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reporter) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}
