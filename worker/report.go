package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/redact"
	"github.com/slipway-build/slipway/store"
	"github.com/slipway-build/slipway/telemetry"
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
	// HTTP sends the requests to the hosts' APIs (forge.Conn.HTTP); nil
	// means the forge's default client. cmd/slipway hands in one behind the
	// outbound guard.
	HTTP   *http.Client
	Logger *slog.Logger
	Now    func() time.Time
	// MaxTries bounds the attempts for one status (default 8).
	MaxTries int
	// RetryDelay is the wait before a status job's first retry; it doubles
	// with each try, up to 256 times (default 2 s).
	RetryDelay time.Duration
	// Traces makes a "status" span of each attempt, in the trace of the
	// build it is about; nil makes none.
	Traces trace.TracerProvider
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
		undecodable(ctx, job, r.logger(), "commit status", err)
		return
	}
	ctx, span := telemetry.Tracer(r.Traces).Start(job.Context(ctx), "status", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(telemetry.BuildID.String(sj.BuildID), attribute.String("slipway.state", string(sj.State)),
			attribute.Int("slipway.delivered", job.Delivered())))
	defer span.End()
	log := r.logger().With("build", sj.BuildID, "state", sj.State)
	b, repo, ok := r.read(ctx, job, sj, log)
	if !ok {
		return
	}
	named := telemetry.Of(b, repo)
	span.SetAttributes(named.Attrs()...)
	log = named.Log(r.logger()).With("state", sj.State)
	if stale(b, sj.State) {
		log.Debug("a later status of the build was posted; this one is dropped")
		ack(ctx, job, log)
		return
	}
	token, err := r.Token(ctx, repo.WithInstallation(b))
	if err == nil && token == "" {
		log.Debug("repository has no API credentials; statuses are off for it")
		ack(ctx, job, log)
		return
	}
	if err == nil {
		err = r.post(ctx, r.Forges[repo.Provider], forge.Conn{APIURL: repo.APIURL, FullName: repo.FullName, Token: token, HTTP: r.HTTP}, b, sj.State)
	}
	telemetry.Fail(span, err)
	r.settle(ctx, job, sj, err, log)
}

// read answers the build a status is about and its repository. ok is false
// when the job is settled already: a failure to read is retried, a build
// that is gone drops the job, and a repository that is gone or a host
// Slipway has no API client for is recorded on the build as given up.
func (r *Reporter) read(ctx context.Context, job queue.Job, sj queue.StatusJob, log *slog.Logger) (model.Build, model.Repo, bool) {
	b, err := r.Builds.GetBuild(ctx, sj.BuildID)
	if errors.Is(err, store.ErrNotFound) {
		log.Warn("build no longer exists; commit status dropped")
		ack(ctx, job, log)
		return b, model.Repo{}, false
	}
	if err != nil {
		r.retry(job, fmt.Errorf("read build: %w", err), log)
		return b, model.Repo{}, false
	}
	repo, err := r.Repos.GetRepo(ctx, b.RepoID)
	if errors.Is(err, store.ErrNotFound) {
		r.giveUp(ctx, job, sj, fmt.Errorf("repository %s no longer exists", b.RepoID), log)
		return b, repo, false
	}
	if err != nil {
		r.retry(job, fmt.Errorf("read repository %s: %w", b.RepoID, err), log)
		return b, repo, false
	}
	if r.Forges[repo.Provider] == nil {
		r.giveUp(ctx, job, sj, fmt.Errorf("no API client for Git host %q", repo.Provider), log)
		return b, repo, false
	}
	return b, repo, true
}

// settle acks a posted status and retries one that was not, until MaxTries;
// then it records that it gave up.
func (r *Reporter) settle(ctx context.Context, job queue.Job, sj queue.StatusJob, err error, log *slog.Logger) {
	switch {
	case err == nil:
		ack(ctx, job, log)
	case errors.Is(err, store.ErrNotFound):
		log.Warn("build no longer exists; commit status not recorded", "err", err)
		ack(ctx, job, log)
	case job.Delivered() >= r.maxTries():
		r.giveUp(ctx, job, sj, fmt.Errorf("gave up after %d tries: %w", job.Delivered(), err), log)
	default:
		r.retry(job, fmt.Errorf("commit status not posted: %w", err), log)
	}
}

// retry hands a status job back after a delay that doubles with each try.
func (r *Reporter) retry(job queue.Job, err error, log *slog.Logger) {
	delay := r.retryDelay() << (min(max(job.Delivered(), 1), 8) - 1)
	log.Warn("commit status will be retried", "err", err, "tries", job.Delivered(), "in", delay)
	retry(job, delay, log)
}

// giveUp records on the build why its status was not posted, and drops the
// job; a record that fails for a passing reason is retried instead.
func (r *Reporter) giveUp(ctx context.Context, job queue.Job, sj queue.StatusJob, why error, log *slog.Logger) {
	log.Error("commit status not posted; giving up", "reason", why)
	err := r.record(ctx, sj.BuildID, sj.State, why)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		r.retry(job, err, log)
		return
	}
	ack(ctx, job, log)
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
		postErr := f.SetStatus(ctx, conn, r.status(b, st))
		// A status posted but not recorded is posted again on the retry;
		// hosts keep one status per key, so that is harmless.
		if err := errors.Join(postErr, r.record(ctx, b.ID, st, postErr)); err != nil {
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

// record adds a post of state, and its error, to the build's statuses.
func (r *Reporter) record(ctx context.Context, buildID string, state forge.State, postErr error) error {
	post := model.StatusPost{State: string(state), At: r.now().UTC()}
	if postErr != nil {
		post.Error = redact.Text(postErr.Error())
	}
	_, err := r.Builds.UpdateBuild(ctx, buildID, func(b *model.Build) error {
		b.Statuses = append(b.Statuses, post)
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %s status: %w", state, err)
	}
	return nil
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
		Commit: b.Commit, State: state, Key: key, Description: forge.Describe(redact.Text(desc)),
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

func (r *Reporter) retryDelay() time.Duration {
	if r.RetryDelay > 0 {
		return r.RetryDelay
	}
	return 2 * time.Second
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
