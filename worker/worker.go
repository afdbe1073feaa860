// Package worker takes build jobs from the queue and drives each through
// clone → build → push → tag → record → notify.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/source"
)

// Builds are the build records (package store).
type Builds interface {
	GetBuild(ctx context.Context, id string) (model.Build, error)
	CreateBuild(ctx context.Context, b model.Build) (bool, error)
	UpdateBuild(ctx context.Context, id string, change func(*model.Build) error) (model.Build, error)
}

// Repos reads repositories (package store).
type Repos interface {
	GetRepo(ctx context.Context, id string) (model.Repo, error)
}

// Tags moves image tags, never backwards (package store).
type Tags interface {
	ClaimTag(ctx context.Context, image, tag string, b model.Build, digest string, put func(string) error) (bool, error)
}

// Slots bound a repository's builds at once across every worker (package
// store).
type Slots interface {
	AcquireSlot(ctx context.Context, repoID, buildID string, limit int) (bool, error)
	ReleaseSlot(ctx context.Context, repoID, buildID string) error
}

// Submitter queues what a finished build leads to: deploy-hook deliveries
// and commit statuses (package queue).
type Submitter interface {
	SubmitHook(ctx context.Context, j queue.HookJob) error
	SubmitStatus(ctx context.Context, buildID string, state forge.State) error
}

// Builder builds images and pushes them by digest.
type Builder interface {
	Ping(ctx context.Context) error
	Build(ctx context.Context, req builder.Request, log io.Writer) (builder.Result, error)
}

// Tagger points a tag of an image at a pushed digest.
type Tagger interface {
	Tag(ctx context.Context, image, digest, tag string) error
}

// Jobs hands out build jobs.
type Jobs interface {
	Next(ctx context.Context, wait time.Duration) (queue.Job, bool, error)
	AckWait() time.Duration
}

// Logs opens a build's log for writing.
type Logs func(buildID string) io.WriteCloser

// Worker runs builds.
type Worker struct {
	Builds  Builds
	Repos   Repos
	Tags    Tags
	Slots   Slots
	Queue   Submitter
	Jobs    Jobs
	Builder Builder
	Tagger  Tagger
	Logs    Logs
	// WorkDir holds one checkout per running build.
	WorkDir string
	Logger  *slog.Logger
	// RetryDelay is how long a job waits after an infrastructure failure.
	RetryDelay time.Duration
	// CancelPoll is how often a running build checks for a cancel request.
	CancelPoll time.Duration
	// Credentials give the clone credentials of a private repository; nil
	// clones anonymously.
	Credentials func(ctx context.Context, repo model.Repo) (source.Credentials, error)
	// Grace is how long running builds may finish once Run's context ends;
	// the rest are handed back to the queue.
	Grace time.Duration
	// RegistryPing tells whether a registry host answers; with
	// RegistryRetry it turns a push to an unreachable registry into
	// retries for that long before the build fails.
	RegistryPing  func(ctx context.Context, host string) error
	RegistryRetry time.Duration
	Now           func() time.Time
}

// DefaultTimeout bounds a build when its repository sets none.
const DefaultTimeout = 60 * time.Minute

// Run starts n build loops and returns when they have stopped. Cancelling
// ctx stops taking new jobs; builds in flight get Grace to finish, then are
// cancelled and handed back un-acked so that another worker redoes them.
func (w *Worker) Run(ctx context.Context, n int) {
	builds, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-time.After(w.Grace):
				stop()
			case <-done:
			}
		case <-done:
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx, builds)
		}()
	}
	wg.Wait()
	close(done)
}

// loop takes jobs while ctx lives and runs each under builds.
func (w *Worker) loop(ctx, builds context.Context) {
	consume(ctx, w.Jobs, w.logger(), "build", func(job queue.Job) { w.handle(builds, job) })
}

// taker is what consume takes jobs from.
type taker interface {
	Next(ctx context.Context, wait time.Duration) (queue.Job, bool, error)
}

// consume hands each job of jobs to handle, one at a time, until ctx ends;
// a failing NATS is waited out, not given up on.
func consume(ctx context.Context, jobs taker, log *slog.Logger, what string, handle func(queue.Job)) {
	for ctx.Err() == nil {
		job, ok, err := jobs.Next(ctx, 5*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("take job", "kind", what, "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		if ok {
			handle(job)
		}
	}
}

// infraError marks a failure of Slipway's own parts; the job is retried.
type infraError struct{ err error }

func (e infraError) Error() string { return e.err.Error() }
func (e infraError) Unwrap() error { return e.err }

// Causes of a build's context ending early.
var (
	errCancelled = errors.New("build cancelled")
	errTimedOut  = errors.New("build timed out")
)

func (w *Worker) handle(ctx context.Context, job queue.Job) {
	var queued model.Build
	if err := json.Unmarshal(job.Data(), &queued); err != nil {
		w.logger().Error("drop undecodable job", "err", err)
		_ = job.Ack(ctx)
		return
	}
	log := w.logger().With("build", queued.ID, "repo", queued.RepoID, "ref", queued.Ref, "commit", queued.Commit)
	if _, err := w.Builds.CreateBuild(ctx, queued); err != nil {
		w.handBack(job, queued, err, log)
		return
	}
	stored, err := w.Builds.GetBuild(ctx, queued.ID)
	if err != nil {
		w.handBack(job, queued, err, log)
		return
	}
	if model.Terminal(stored.Status) {
		// A worker may have died between storing the end and the ack:
		// repeat the final status (de-duplicated) so the host hears of it.
		log.Info("build already finished; dropping its job", "status", stored.Status)
		w.status(ctx, stored.ID, StateOf(stored), log)
		_ = job.Ack(ctx)
		return
	}
	repo, err := w.Repos.GetRepo(ctx, stored.RepoID)
	if err != nil {
		w.finish(ctx, job, stored, outcome{err: fmt.Errorf("repository %s: %w", stored.RepoID, err)}, log)
		return
	}
	if ok, err := w.Slots.AcquireSlot(ctx, repo.ID, stored.ID, repo.MaxConcurrentBuilds); err != nil || !ok {
		// At the repository's limit: wait in the queue, not in a worker.
		_ = job.Retry(w.retryDelay())
		return
	}
	defer w.Slots.ReleaseSlot(context.WithoutCancel(ctx), repo.ID, stored.ID)
	if stored.Attempts >= queue.MaxDeliver {
		w.finish(ctx, job, stored, outcome{err: fmt.Errorf("gave up after %d attempts: %s", stored.Attempts, stored.Error), gaveUp: true}, log)
		return
	}
	b, err := w.claim(ctx, stored.ID)
	if err != nil {
		w.handBack(job, stored, err, log)
		return
	}
	if model.Terminal(b.Status) {
		// Cancelled (or superseded) between the read and the claim.
		log.Info("build finished before it started; dropping its job", "status", b.Status)
		_ = job.Ack(ctx)
		return
	}
	w.status(ctx, b.ID, forge.Running, log)
	w.execute(ctx, job, repo.WithInstallation(b), b, log)
}

// execute runs a claimed build under its timeout and cancel watch.
func (w *Worker) execute(ctx context.Context, job queue.Job, repo model.Repo, b model.Build, log *slog.Logger) {
	timeout := buildTimeout(repo)
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	tctx, stopTimer := context.WithTimeoutCause(bctx, timeout, errTimedOut)
	defer stopTimer()
	stop := w.watch(tctx, job, b.ID, cancel)
	out := w.run(tctx, repo, b)
	stop()
	switch cause := context.Cause(tctx); {
	case ctx.Err() != nil:
		w.handBack(job, b, errors.New("worker stopped"), log)
		return
	case errors.Is(cause, errCancelled):
		out = outcome{cancelled: true}
	case errors.Is(cause, errTimedOut):
		out = outcome{err: fmt.Errorf("timed out after %s", timeout)}
	}
	var infra infraError
	if errors.As(out.err, &infra) {
		w.handBack(job, b, out.err, log)
		return
	}
	var reg registryError
	if errors.As(out.err, &reg) && w.retryRegistry(ctx, job, b, reg, log) {
		return
	}
	w.finish(ctx, job, b, out, log)
}

// retryRegistry hands the job back while the registry has been unreachable
// for less than RegistryRetry; it reports false when the budget is spent
// and the build must fail.
func (w *Worker) retryRegistry(ctx context.Context, job queue.Job, b model.Build, reg registryError, log *slog.Logger) bool {
	now := w.now()
	since := now
	if cur, err := w.Builds.GetBuild(ctx, b.ID); err == nil && cur.RetryingSince != nil {
		since = *cur.RetryingSince
	}
	if now.Sub(since) >= w.RegistryRetry {
		return false
	}
	log.Warn("registry unreachable; build will be retried", "registry", reg.host, "since", since, "budget", w.RegistryRetry)
	_, _ = w.Builds.UpdateBuild(context.WithoutCancel(ctx), b.ID, func(cur *model.Build) error {
		cur.RetryingSince = &since
		cur.Attempts-- // waiting out the registry is not a failed attempt
		return nil
	})
	w.handBack(job, b, reg, log)
	return true
}

func buildTimeout(repo model.Repo) time.Duration {
	if d, err := time.ParseDuration(repo.BuildTimeout); err == nil && d > 0 {
		return d
	}
	return DefaultTimeout
}

// claim marks the build running and counts the attempt.
func (w *Worker) claim(ctx context.Context, id string) (model.Build, error) {
	return w.Builds.UpdateBuild(ctx, id, func(cur *model.Build) error {
		if model.Terminal(cur.Status) {
			return nil
		}
		now := w.now()
		cur.Status, cur.StartedAt, cur.Error = model.StatusRunning, &now, ""
		cur.Attempts++
		return nil
	})
}

// handBack returns the job for another try after an infrastructure failure.
func (w *Worker) handBack(job queue.Job, b model.Build, err error, log *slog.Logger) {
	log.Warn("build interrupted; job handed back", "reason", err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	attempts := b.Attempts
	_, _ = w.Builds.UpdateBuild(ctx, b.ID, func(cur *model.Build) error {
		if !model.Terminal(cur.Status) {
			cur.Status = model.StatusQueued
			cur.Error = "retrying: " + err.Error()
		}
		attempts = cur.Attempts
		return nil
	})
	_ = job.Retry(backoff(w.retryDelay(), attempts))
}

// backoff doubles the retry delay with each failed attempt, up to two
// minutes.
func backoff(base time.Duration, attempts int) time.Duration {
	d := base
	for i := 1; i < attempts && d < 2*time.Minute; i++ {
		d *= 2
	}
	return min(d, 2*time.Minute)
}

// finish stores the final state, queues the deploy hooks, then acks: a
// worker that dies before the ack leaves the job to be redone.
func (w *Worker) finish(ctx context.Context, job queue.Job, b model.Build, out outcome, log *slog.Logger) {
	ctx = context.WithoutCancel(ctx)
	repo, repoErr := w.Repos.GetRepo(ctx, b.RepoID)
	final, err := w.Builds.UpdateBuild(ctx, b.ID, func(cur *model.Build) error {
		if model.Terminal(cur.Status) {
			return nil
		}
		now := w.now()
		cur.FinishedAt = &now
		out.apply(cur)
		if cur.Status == model.StatusSucceeded && repoErr == nil && len(cur.Deliveries) == 0 {
			for i, h := range repo.Hooks {
				cur.Deliveries = append(cur.Deliveries, model.Delivery{
					Hook: i, URL: h.URL, MessageID: fmt.Sprintf("msg_%s_%d", cur.ID, i), Status: model.DeliveryPending,
				})
			}
		}
		return nil
	})
	if err != nil {
		log.Error("store build result; job will be redone", "err", err)
		_ = job.Retry(w.retryDelay())
		return
	}
	w.status(ctx, final.ID, StateOf(final), log)
	for _, d := range final.Deliveries {
		if err := w.Queue.SubmitHook(ctx, queue.HookJob{BuildID: final.ID, Hook: d.Hook}); err != nil {
			log.Error("queue deploy hook; job will be redone", "err", err)
			_ = job.Retry(w.retryDelay())
			return
		}
	}
	log.Info("build finished", "status", final.Status, "digest", final.Digest, "error", final.Error, "reason", final.Reason)
	if err := job.Ack(ctx); err != nil {
		log.Warn("ack job", "err", err)
	}
}

// status queues a commit status; a lost one costs a status, never the build.
func (w *Worker) status(ctx context.Context, id string, state forge.State, log *slog.Logger) {
	if err := w.Queue.SubmitStatus(ctx, id, state); err != nil {
		log.Warn("queue commit status", "state", state, "err", err)
	}
}

// watch keeps the job alive while the build runs, so a live worker's job is
// never redelivered and a dead one's is within AckWait, and cancels the
// build when someone asks for it.
func (w *Worker) watch(ctx context.Context, job queue.Job, id string, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	go func() {
		extend := time.NewTicker(w.Jobs.AckWait() / 3)
		defer extend.Stop()
		poll := time.NewTicker(w.cancelPoll())
		defer poll.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-extend.C:
				_ = job.Extend()
			case <-poll.C:
				if b, err := w.Builds.GetBuild(ctx, id); err == nil && b.CancelRequested {
					cancel(errCancelled)
				}
			}
		}
	}()
	return func() { close(done) }
}

func (w *Worker) retryDelay() time.Duration {
	if w.RetryDelay > 0 {
		return w.RetryDelay
	}
	return 5 * time.Second
}

func (w *Worker) cancelPoll() time.Duration {
	if w.CancelPoll > 0 {
		return w.CancelPoll
	}
	return time.Second
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Worker) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
