// Package worker takes build jobs from the queue and drives each through
// clone → build → push → record → notify.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/source"
)

// Store is the state the worker reads and writes.
type Store interface {
	GetRepo(ctx context.Context, id string) (model.Repo, error)
	GetBuild(ctx context.Context, id string) (model.Build, error)
	CreateBuild(ctx context.Context, b model.Build) (bool, error)
	UpdateBuild(ctx context.Context, id string, change func(*model.Build) error) (model.Build, error)
	SubmitHook(ctx context.Context, j queue.HookJob) error
}

// Builder builds and pushes images.
type Builder interface {
	Ping(ctx context.Context) error
	Build(ctx context.Context, req builder.Request, log io.Writer) (builder.Result, error)
}

// Jobs hands out build jobs.
type Jobs interface {
	Next(ctx context.Context, wait time.Duration) (queue.Job, bool, error)
}

// Logs opens a build's log for writing.
type Logs func(buildID string) io.WriteCloser

// Worker runs builds.
type Worker struct {
	Store   Store
	Jobs    Jobs
	Builder Builder
	Logs    Logs
	// WorkDir holds one checkout per running build.
	WorkDir string
	Logger  *slog.Logger
	// RetryDelay is how long a job waits after an infrastructure failure.
	RetryDelay time.Duration
	Now        func() time.Time
}

// Run starts n build loops and returns when ctx ends and they have stopped.
// Cancelling ctx stops taking new jobs; jobs in flight are cancelled and
// handed back un-acked so that another worker redoes them.
func (w *Worker) Run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx)
		}()
	}
	wg.Wait()
}

func (w *Worker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		job, ok, err := w.Jobs.Next(ctx, 5*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				w.logger().Warn("take job", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		if ok {
			w.handle(ctx, job)
		}
	}
}

// infraError marks a failure of Slipway's own parts; the job is retried.
type infraError struct{ err error }

func (e infraError) Error() string { return e.err.Error() }
func (e infraError) Unwrap() error { return e.err }

func (w *Worker) handle(ctx context.Context, job queue.Job) {
	var queued model.Build
	if err := json.Unmarshal(job.Data(), &queued); err != nil {
		w.logger().Error("drop undecodable job", "err", err)
		_ = job.Ack(ctx)
		return
	}
	log := w.logger().With("build", queued.ID, "repo", queued.RepoID, "ref", queued.Ref, "commit", queued.Commit)
	b, err := w.claim(ctx, queued, job.Delivered())
	if err != nil {
		log.Warn("claim build", "err", err)
		_ = job.Retry(w.retryDelay())
		return
	}
	if model.Terminal(b.Status) {
		log.Info("build already finished; dropping repeated job", "status", b.Status)
		_ = job.Ack(ctx)
		return
	}
	if job.Delivered() > queue.MaxDeliver {
		w.finish(ctx, job, b, builder.Result{}, fmt.Errorf("gave up after %d attempts: %s", job.Delivered()-1, b.Error), log)
		return
	}
	stop := keepAlive(job)
	res, err := w.run(ctx, b)
	stop()
	var infra infraError
	if errors.As(err, &infra) || ctx.Err() != nil {
		w.handBack(job, b, err, log)
		return
	}
	w.finish(ctx, job, b, res, err, log)
}

// claim marks the build running, creating its record from the job if the
// webhook's write of it was lost.
func (w *Worker) claim(ctx context.Context, b model.Build, delivered int) (model.Build, error) {
	if _, err := w.Store.CreateBuild(ctx, b); err != nil {
		return b, err
	}
	return w.Store.UpdateBuild(ctx, b.ID, func(cur *model.Build) error {
		if model.Terminal(cur.Status) {
			return nil
		}
		now := w.now()
		cur.Status = model.StatusRunning
		cur.StartedAt = &now
		cur.Attempts = delivered
		return nil
	})
}

// handBack returns the job for another try after an infrastructure failure.
func (w *Worker) handBack(job queue.Job, b model.Build, err error, log *slog.Logger) {
	reason := "worker stopped"
	if err != nil {
		reason = err.Error()
	}
	log.Warn("build interrupted; job handed back", "reason", reason)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = w.Store.UpdateBuild(ctx, b.ID, func(cur *model.Build) error {
		if !model.Terminal(cur.Status) {
			cur.Status = model.StatusQueued
			cur.Error = "retrying: " + reason
		}
		return nil
	})
	_ = job.Retry(w.retryDelay())
}

// finish stores the final state, queues the deploy hooks, then acks: a
// worker that dies before the ack leaves the job to be redone.
func (w *Worker) finish(ctx context.Context, job queue.Job, b model.Build, res builder.Result, buildErr error, log *slog.Logger) {
	ctx = context.WithoutCancel(ctx)
	repo, repoErr := w.Store.GetRepo(ctx, b.RepoID)
	final, err := w.Store.UpdateBuild(ctx, b.ID, func(cur *model.Build) error {
		now := w.now()
		cur.FinishedAt = &now
		if buildErr != nil {
			cur.Status, cur.Error = model.StatusFailed, buildErr.Error()
			return nil
		}
		cur.Status, cur.Digest, cur.Error = model.StatusSucceeded, res.Digest, ""
		if repoErr == nil && len(cur.Deliveries) == 0 {
			for i, h := range repo.Hooks {
				cur.Deliveries = append(cur.Deliveries, model.Delivery{
					Hook: i, URL: h.URL, MessageID: fmt.Sprintf("msg_%s_%d", cur.ID, i), Status: "pending",
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
	for _, d := range final.Deliveries {
		if err := w.Store.SubmitHook(ctx, queue.HookJob{BuildID: final.ID, Hook: d.Hook}); err != nil {
			log.Error("queue deploy hook; job will be redone", "err", err)
			_ = job.Retry(w.retryDelay())
			return
		}
	}
	log.Info("build finished", "status", final.Status, "digest", final.Digest, "error", final.Error)
	if err := job.Ack(ctx); err != nil {
		log.Warn("ack job", "err", err)
	}
}

// run does the build itself; its log is kept whatever happens.
func (w *Worker) run(ctx context.Context, b model.Build) (builder.Result, error) {
	logw := w.Logs(b.ID)
	defer logw.Close()
	res, err := w.pipeline(ctx, b, logw)
	if err != nil {
		fmt.Fprintf(logw, "\n==> build failed: %v\n", err)
	} else {
		fmt.Fprintf(logw, "\n==> pushed %s@%s\n", b.Image, res.Digest)
	}
	return res, err
}

func (w *Worker) pipeline(ctx context.Context, b model.Build, logw io.Writer) (builder.Result, error) {
	if err := w.Builder.Ping(ctx); err != nil {
		return builder.Result{}, infraError{fmt.Errorf("buildkit unavailable: %w", err)}
	}
	dir := filepath.Join(w.WorkDir, b.ID)
	_ = os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	fmt.Fprintf(logw, "==> clone %s %s (%s)\n", b.CloneURL, b.Ref, b.Commit)
	if err := source.Clone(ctx, source.Checkout{URL: b.CloneURL, Ref: b.Ref, Commit: b.Commit, Dir: dir, Progress: logw}); err != nil {
		return builder.Result{}, err
	}
	req, err := request(dir, b, w.now())
	if err != nil {
		return builder.Result{}, err
	}
	fmt.Fprintf(logw, "==> build %s with context %s, pushing %s\n", b.Rule.Dockerfile, b.Rule.Context, strings.Join(req.Refs, ", "))
	res, err := w.Builder.Build(ctx, req, logw)
	if err != nil {
		return res, fmt.Errorf("build: %s", cleanError(err))
	}
	return res, nil
}

// request turns a checked-out build into a BuildKit request; paths that are
// missing from the commit are named.
func request(dir string, b model.Build, now time.Time) (builder.Request, error) {
	ctxDir := filepath.Join(dir, filepath.FromSlash(b.Rule.Context))
	if st, err := os.Stat(ctxDir); err != nil || !st.IsDir() {
		return builder.Request{}, fmt.Errorf("build context %q is not a directory in commit %s", b.Rule.Context, short(b.Commit))
	}
	dockerfile := filepath.Join(dir, filepath.FromSlash(b.Rule.Dockerfile))
	if _, err := os.Stat(dockerfile); err != nil {
		return builder.Request{}, fmt.Errorf("dockerfile %q not found in commit %s", b.Rule.Dockerfile, short(b.Commit))
	}
	refs := make([]string, len(b.Tags))
	for i, t := range b.Tags {
		refs[i] = b.Image + ":" + t
	}
	return builder.Request{
		ContextDir: ctxDir,
		Dockerfile: dockerfile,
		Refs:       refs,
		Push:       true,
		Labels: map[string]string{
			"org.opencontainers.image.revision": b.Commit,
			"org.opencontainers.image.source":   SourceURL(b.CloneURL),
			"org.opencontainers.image.created":  now.UTC().Format(time.RFC3339),
		},
	}, nil
}

// SourceURL is the repository's address as images record it: no
// credentials, no ".git".
func SourceURL(cloneURL string) string {
	u := cloneURL
	if i := strings.Index(u, "://"); i >= 0 {
		if at := strings.LastIndex(u[i+3:], "@"); at >= 0 && !strings.Contains(u[i+3:i+3+at], "/") {
			u = u[:i+3] + u[i+3+at+1:]
		}
	}
	return strings.TrimSuffix(u, ".git")
}

// cleanError drops gRPC's wrapping so the message reads as BuildKit's own.
func cleanError(err error) string {
	msg := err.Error()
	for _, p := range []string{"rpc error: code = Unknown desc = ", "rpc error: code = Canceled desc = "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// keepAlive extends the job's ack deadline while the build runs, so a live
// worker's job is never redelivered and a dead one's is within AckWait.
func keepAlive(job queue.Job) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(queue.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = job.Extend()
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
