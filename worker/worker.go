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

	"github.com/slipway-build/slipway/autotest"
	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/redact"
	"github.com/slipway-build/slipway/source"
	"github.com/slipway-build/slipway/store"
)

// Builds are the build records (package store).
type Builds interface {
	GetBuild(ctx context.Context, id string) (model.Build, error)
	CreateBuild(ctx context.Context, b model.Build) (bool, error)
	UpdateBuild(ctx context.Context, id string, change func(*model.Build) error) (model.Build, error)
	// QueryBuilds finds the previous build an image's size is compared
	// with (trigger.Previous).
	QueryBuilds(ctx context.Context, q model.BuildQuery) (model.BuildPage, error)
}

// Repos reads repositories (package store).
type Repos interface {
	GetRepo(ctx context.Context, id string) (model.Repo, error)
}

// Tags moves image tags, never backwards (package store).
type Tags interface {
	ClaimTag(ctx context.Context, image, tag string, b model.Build, digest string, put func(string) error) (bool, error)
	TagOwner(ctx context.Context, image, tag string) (store.TagOwner, bool, error)
	Newest(ctx context.Context, repoID, ref string) (string, []string, error)
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

// Builder builds images and pushes them by digest, and builds a rule's
// test stage without keeping anything.
type Builder interface {
	Ping(ctx context.Context) error
	Build(ctx context.Context, req builder.Request, log io.Writer) (builder.Result, error)
	Test(ctx context.Context, req builder.Request, log io.Writer) error
}

// Tester runs a compose test plan; a failing test is autotest.Failed.
type Tester interface {
	Run(ctx context.Context, run autotest.Run) error
}

// Tagger points a tag of an image at a pushed digest.
type Tagger interface {
	Tag(ctx context.Context, image, digest, tag string) error
}

// ImageReader reads a pushed image's manifest and config: its size is
// counted from them.
type ImageReader interface {
	Inspect(ctx context.Context, image, digest, platform string) (model.Image, error)
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
	// Autotest runs the docker-compose.test.yml a rule's context holds
	// before the image is pushed; nil leaves such files alone.
	Autotest Tester
	// Tagger returns the Tagger of one build, moving tags with that
	// build's registry credentials (from RegistryLogin; nil is anonymous).
	Tagger func(creds builder.Credentials) Tagger
	// Images returns the ImageReader of one build, with that build's
	// registry credentials, to record the pushed image's size; nil
	// records none.
	Images func(creds builder.Credentials) ImageReader
	Logs   Logs
	// Secrets are values hidden in every build's log besides the
	// repository's own (a registry password, say).
	Secrets []string
	// LogLimit is the most of one build's log kept, in bytes
	// (SLIPWAY_LOG_LIMIT; 0 means DefaultLogLimit), over all its attempts:
	// LogSize, when set, says how much earlier attempts stored. The build
	// goes on past it.
	LogLimit int64
	LogSize  func(ctx context.Context, buildID string) (int64, error)
	// WorkDir holds one checkout per running build.
	WorkDir string
	// Mirrors, when set, keeps a Git mirror per repository that builds
	// fetch only new commits into; nil clones every build afresh.
	Mirrors *source.Mirrors
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
	// RegistryLogin gives one build's registry credentials by host, asked
	// once per build attempt, before anything is pushed: BuildKit's pulls
	// and push and the tag moves use them, and no other build sees them.
	// ctx carries the build's deadline, which the credentials should
	// outlive. An error is Slipway's own (the job is retried). nil means
	// anonymous everywhere.
	RegistryLogin func(ctx context.Context, b model.Build) (builder.Credentials, error)
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

// ack removes a job whose outcome is stored. A failed ack is only logged:
// the job is handed out again and found done.
func ack(ctx context.Context, job queue.Job, log *slog.Logger) {
	if err := job.Ack(ctx); err != nil {
		log.Warn("ack job; it will be handed out again and found done", "err", err)
	}
}

// retry hands a job back to be delivered again after delay. A failed
// hand-back is only logged: the job comes back after the ack wait anyway.
func retry(job queue.Job, delay time.Duration, log *slog.Logger) {
	if err := job.Retry(delay); err != nil {
		log.Warn("hand the job back; it comes back after the ack wait instead", "in", delay, "err", err)
	}
}

// undecodable drops a job whose payload is not what its queue carries: no
// retry could ever read it, so it is logged, with the start of its payload,
// and acked.
func undecodable(ctx context.Context, job queue.Job, log *slog.Logger, kind string, err error) {
	payload := job.Data()
	if len(payload) > 200 {
		payload = payload[:200]
	}
	log = log.With("kind", kind, "payload", string(payload))
	log.Error("drop undecodable job", "err", err)
	ack(ctx, job, log)
}

// infraError marks a failure of Slipway's own parts; the job is retried.
type infraError struct {
	err error
	// now: retry at once the first time, because the failed part is
	// already out of the way (a pool took its dead daemon out).
	now bool
}

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
		undecodable(ctx, job, w.logger(), "build", err)
		return
	}
	log := w.logger().With("build", queued.ID, "repo", queued.RepoID, "ref", queued.Ref, "commit", queued.Commit)
	stored, ok := w.stored(ctx, job, queued, log)
	if !ok {
		return
	}
	repo, ok := w.repoOf(ctx, job, stored, log)
	if !ok || !w.takeSlot(ctx, job, repo, stored.ID, log) {
		return
	}
	defer w.releaseSlot(ctx, repo.ID, stored.ID, log)
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
		ack(ctx, job, log)
		return
	}
	w.status(ctx, b.ID, forge.Running, log)
	w.started(ctx, repo, b, log)
	w.execute(ctx, job, repo.WithInstallation(b), b, log)
}

// stored answers the build a job is about, storing it first when the
// process that queued it died before it could. ok is false when the job is
// settled already: handed back, or dropped because its build has finished.
func (w *Worker) stored(ctx context.Context, job queue.Job, queued model.Build, log *slog.Logger) (model.Build, bool) {
	if _, err := w.Builds.CreateBuild(ctx, queued); err != nil {
		w.handBack(job, queued, err, log)
		return queued, false
	}
	stored, err := w.Builds.GetBuild(ctx, queued.ID)
	if err != nil {
		w.handBack(job, queued, err, log)
		return queued, false
	}
	if model.Terminal(stored.Status) {
		// A worker may have died between storing the end and the ack:
		// repeat the final status (de-duplicated) so the host hears of it.
		log.Info("build already finished; dropping its job", "status", stored.Status)
		w.status(ctx, stored.ID, StateOf(stored), log)
		ack(ctx, job, log)
		return stored, false
	}
	return stored, true
}

// repoOf reads a build's repository. A repository deleted since the push
// fails the build; any other failure to read it hands the job back.
func (w *Worker) repoOf(ctx context.Context, job queue.Job, b model.Build, log *slog.Logger) (model.Repo, bool) {
	repo, err := w.Repos.GetRepo(ctx, b.RepoID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		w.finish(ctx, job, b, outcome{err: fmt.Errorf("repository %s no longer exists", b.RepoID)}, log)
		return repo, false
	case err != nil:
		w.handBack(job, b, fmt.Errorf("read repository %s: %w", b.RepoID, err), log)
		return repo, false
	}
	return repo, true
}

// takeSlot admits a build under its repository's limit of builds at once.
// At the limit, or when the slots cannot be read, the job waits in the
// queue, not in a worker.
func (w *Worker) takeSlot(ctx context.Context, job queue.Job, repo model.Repo, id string, log *slog.Logger) bool {
	ok, err := w.Slots.AcquireSlot(ctx, repo.ID, id, repo.MaxConcurrentBuilds)
	switch {
	case err != nil:
		log.Warn("take a build slot; job handed back", "err", err)
	case !ok:
		log.Debug("repository at its limit of builds at once; job waits in the queue", "limit", repo.MaxConcurrentBuilds)
	}
	if err != nil || !ok {
		retry(job, w.retryDelay(), log)
		return false
	}
	return true
}

// releaseSlot gives a build's slot back. One that cannot be given back
// costs nothing for long: a slot whose build has finished is reclaimed by
// the next build that asks.
func (w *Worker) releaseSlot(ctx context.Context, repoID, id string, log *slog.Logger) {
	if err := w.Slots.ReleaseSlot(context.WithoutCancel(ctx), repoID, id); err != nil {
		log.Warn("give the build slot back; it is reclaimed once the build is seen finished", "err", err)
	}
}

// execute runs a claimed build under its timeout and cancel watch.
func (w *Worker) execute(ctx context.Context, job queue.Job, repo model.Repo, b model.Build, log *slog.Logger) {
	timeout := buildTimeout(repo)
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	tctx, stopTimer := context.WithTimeoutCause(bctx, timeout, errTimedOut)
	defer stopTimer()
	stop := w.watch(tctx, job, b.ID, cancel, log)
	out := w.run(tctx, repo, b)
	stop()
	later, export := out.later, false
	defer func() { w.afterFinish(ctx, later, export, timeout, log) }()
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
	export = out.succeeded()
}

// retryRegistry hands the job back while the registry has been unreachable
// for less than RegistryRetry; it reports false when the budget is spent
// and the build must fail.
func (w *Worker) retryRegistry(ctx context.Context, job queue.Job, b model.Build, reg registryError, log *slog.Logger) bool {
	cur, err := w.Builds.GetBuild(ctx, b.ID)
	if err != nil {
		// Without the record the budget cannot be told; the store is
		// failing too, so this is an infrastructure failure either way.
		w.handBack(job, b, fmt.Errorf("%w; reading the build failed too: %w", reg, err), log)
		return true
	}
	now := w.now()
	since := now
	if cur.RetryingSince != nil {
		since = *cur.RetryingSince
	}
	if now.Sub(since) >= w.RegistryRetry {
		return false
	}
	log.Warn("registry unreachable; build will be retried", "registry", reg.host, "since", since, "budget", w.RegistryRetry)
	_, err = w.Builds.UpdateBuild(context.WithoutCancel(ctx), b.ID, func(cur *model.Build) error {
		cur.RetryingSince = &since
		cur.Attempts-- // waiting out the registry is not a failed attempt
		return nil
	})
	if err != nil {
		log.Warn("record the registry wait; this try counts as a failed attempt", "err", err)
	}
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
		cur.Status, cur.StartedAt, cur.Error, cur.TestFailed = model.StatusRunning, &now, "", false
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
	_, uerr := w.Builds.UpdateBuild(ctx, b.ID, func(cur *model.Build) error {
		if !model.Terminal(cur.Status) {
			cur.Status = model.StatusQueued
			cur.Error = "retrying: " + redact.Text(err.Error())
		}
		attempts = cur.Attempts
		return nil
	})
	if uerr != nil {
		// The job comes back all the same; the record says running (or
		// queued) until the next try writes it.
		log.Warn("record the hand-back", "err", uerr)
	}
	retry(job, handBackDelay(err, w.retryDelay(), attempts), log)
}

// handBackDelay is how long a handed-back job waits: the backoff, except a
// first retry whose failed part is already out of the way.
func handBackDelay(err error, base time.Duration, attempts int) time.Duration {
	var ie infraError
	if errors.As(err, &ie) && ie.now && attempts <= 1 {
		return 0
	}
	return backoff(base, attempts)
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
	hooks, err := w.hooks(ctx, b, out, log)
	if err != nil {
		// Redone rather than finished without the hooks: the image is
		// pushed and its digest recorded, so a redo only moves tags.
		log.Warn("read the repository's deploy hooks; job will be redone", "err", err)
		retry(job, w.retryDelay(), log)
		return
	}
	var added []model.Delivery
	final, err := w.Builds.UpdateBuild(ctx, b.ID, func(cur *model.Build) error {
		added = nil // the change may run again on a newer record
		if model.Terminal(cur.Status) {
			return nil
		}
		now := w.now()
		cur.FinishedAt = &now
		out.apply(cur)
		added = addDeliveries(cur, hooks, endEvents(*cur))
		return nil
	})
	if err != nil {
		log.Error("store build result; job will be redone", "err", err)
		retry(job, w.retryDelay(), log)
		return
	}
	w.status(ctx, final.ID, StateOf(final), log)
	if err := w.submitHooks(ctx, final.ID, added); err != nil {
		log.Error("queue deploy hook; job will be redone", "err", err)
		retry(job, w.retryDelay(), log)
		return
	}
	log.Info("build finished", "status", final.Status, "digest", final.Digest, "error", final.Error, "reason", final.Reason)
	ack(ctx, job, log)
}

// hooks are the deploy hooks a build's end may call: its repository's,
// when it succeeded or failed (which of them hear of it is endEvents' and
// each hook's choice). A repository deleted meanwhile has none; any other
// failure to read it is an error, so that no hook is forgotten.
func (w *Worker) hooks(ctx context.Context, b model.Build, out outcome, log *slog.Logger) ([]model.Hook, error) {
	if !out.succeeded() && !out.failed() {
		return nil, nil
	}
	repo, err := w.Repos.GetRepo(ctx, b.RepoID)
	if errors.Is(err, store.ErrNotFound) {
		log.Warn("repository no longer exists; no deploy hooks to call")
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read repository %s: %w", b.RepoID, err)
	}
	return repo.Hooks, nil
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
func (w *Worker) watch(ctx context.Context, job queue.Job, id string, cancel context.CancelCauseFunc, log *slog.Logger) (stop func()) {
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
				if err := job.Extend(); err != nil {
					log.Warn("extend the job; another worker may take it after the ack wait", "err", err)
				}
			case <-poll.C:
				b, err := w.Builds.GetBuild(ctx, id)
				if err != nil && ctx.Err() == nil {
					log.Warn("check for a cancel request", "err", err)
				}
				if err == nil && b.CancelRequested {
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
