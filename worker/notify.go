package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/redact"
	"github.com/slipway-build/slipway/store"
	"github.com/slipway-build/slipway/telemetry"
)

// Notifier calls deploy hooks about the events of builds. Each delivery is
// a job in JetStream, so retries survive restarts.
type Notifier struct {
	Builds    Builds
	Repos     Repos
	Jobs      Jobs
	Sender    deploy.Sender
	Schedule  deploy.Schedule
	PublicURL string
	Logger    *slog.Logger
	Now       func() time.Time
	// RetryDelay is the wait before a delivery whose build or repository
	// could not be read is tried again (default 5 s).
	RetryDelay time.Duration
	// Traces makes a "deliver" span of each attempt, in the trace of the
	// build it is about; nil makes none.
	Traces trace.TracerProvider
	// Metrics counts delivery attempts; nil counts nothing.
	Metrics DeliveryMetrics
}

// DeliveryMetrics counts deploy hook delivery attempts by outcome:
// delivered, retrying (failed, tried again later) or failed (given up).
type DeliveryMetrics interface {
	DeliveryAttempted(outcome string)
}

func (n *Notifier) count(outcome string) {
	if n.Metrics != nil {
		n.Metrics.DeliveryAttempted(outcome)
	}
}

// Run starts n delivery loops and returns when ctx ends.
func (n *Notifier) Run(ctx context.Context, loops int) {
	var wg sync.WaitGroup
	for i := 0; i < loops; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			consume(ctx, n.Jobs, n.logger(), "deploy hook", func(job queue.Job) { n.deliver(ctx, job) })
		}()
	}
	wg.Wait()
}

func (n *Notifier) deliver(ctx context.Context, job queue.Job) {
	var hj queue.HookJob
	if err := json.Unmarshal(job.Data(), &hj); err != nil {
		undecodable(ctx, job, n.logger(), "deploy hook", err)
		return
	}
	hj.Event = model.HookEvent(hj.Event)
	// The job carries the trace context of the build that queued it:
	// every attempt at the delivery is a span in the build's trace.
	ctx, span := telemetry.Tracer(n.Traces).Start(job.Context(ctx), "deliver", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(telemetry.BuildID.String(hj.BuildID), attribute.Int("slipway.hook", hj.Hook),
			attribute.String("slipway.event", hj.Event), attribute.Int("slipway.delivered", job.Delivered())))
	defer span.End()
	log := n.logger().With("build", hj.BuildID, "hook", hj.Hook, "event", hj.Event)
	b, repo, ok := n.read(ctx, job, hj, log)
	if !ok {
		return
	}
	named := telemetry.Of(b, repo)
	span.SetAttributes(named.Attrs()...)
	log = named.Log(n.logger()).With("hook", hj.Hook, "event", hj.Event)
	d := b.Deliveries[b.Delivery(hj.Hook, hj.Event)]
	if d.Status != model.DeliveryPending {
		log.Debug("delivery settled already; job dropped", "status", d.Status)
		ack(ctx, job, log)
		return
	}
	hook := repo.Hooks[hj.Hook]
	body, err := deploy.Encode(hook.Format, hj.Event, d.MessageID, b, repo, n.PublicURL)
	if err != nil {
		n.giveUp(ctx, job, hj, fmt.Sprintf("payload: %v", err), log)
		return
	}
	attempt := n.Sender.Send(ctx, hook, d.MessageID, body, n.now())
	tries := len(d.Attempts) - d.RetryFrom + 1
	delay, more := n.schedule().Next(tries)
	status := model.DeliveryPending
	switch {
	case deploy.Succeeded(attempt):
		status = model.DeliveryDelivered
	case !more:
		status = model.DeliveryFailed
	}
	span.SetAttributes(attribute.Int("http.response.status_code", attempt.StatusCode), attribute.String("slipway.delivery.status", status))
	if attempt.Error != "" {
		telemetry.Fail(span, errors.New(attempt.Error))
	}
	if err := n.record(ctx, hj, attempt, status); err != nil {
		n.unrecorded(ctx, job, err, log)
		return
	}
	if status == model.DeliveryPending {
		n.count("retrying")
		log.Info("deploy hook failed; will retry", "attempt", tries, "in", delay, "error", attempt.Error, "code", attempt.StatusCode)
		retry(job, delay, log)
		return
	}
	n.count(status)
	log.Info("deploy hook done", "status", status, "attempts", tries)
	ack(ctx, job, log)
}

// read answers the build a delivery is about and its repository. ok is
// false when the job is settled already: a failure to read is retried, a
// build that is gone drops the job, and a repository or hook that is gone
// is recorded on the delivery as given up.
func (n *Notifier) read(ctx context.Context, job queue.Job, hj queue.HookJob, log *slog.Logger) (model.Build, model.Repo, bool) {
	b, err := n.Builds.GetBuild(ctx, hj.BuildID)
	if errors.Is(err, store.ErrNotFound) {
		log.Warn("build no longer exists; deploy hook dropped")
		ack(ctx, job, log)
		return b, model.Repo{}, false
	}
	if err != nil {
		log.Warn("read build; will retry", "err", err, "in", n.retryDelay())
		retry(job, n.retryDelay(), log)
		return b, model.Repo{}, false
	}
	repo, err := n.Repos.GetRepo(ctx, b.RepoID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		n.giveUp(ctx, job, hj, "repository no longer exists", log)
		return b, repo, false
	case err != nil:
		log.Warn("read repository; will retry", "repo", b.RepoID, "err", err, "in", n.retryDelay())
		retry(job, n.retryDelay(), log)
		return b, repo, false
	case hj.Hook < 0 || hj.Hook >= len(repo.Hooks) || b.Delivery(hj.Hook, hj.Event) < 0:
		n.giveUp(ctx, job, hj, "hook no longer exists", log)
		return b, repo, false
	}
	return b, repo, true
}

// giveUp records on the delivery why it cannot be made, and drops the job.
func (n *Notifier) giveUp(ctx context.Context, job queue.Job, hj queue.HookJob, why string, log *slog.Logger) {
	log.Warn("deploy hook given up", "reason", why)
	if err := n.record(ctx, hj, model.Attempt{At: n.now(), Error: why}, model.DeliveryFailed); err != nil {
		n.unrecorded(ctx, job, err, log)
		return
	}
	n.count(model.DeliveryFailed)
	ack(ctx, job, log)
}

// errNoDelivery is a hook job whose build has no such delivery.
var errNoDelivery = errors.New("build has no such delivery")

// unrecorded handles an attempt that could not be recorded: retried after a
// passing failure (the receiver may then hear the message twice, under one
// webhook-id), dropped when there is nothing to record it on.
func (n *Notifier) unrecorded(ctx context.Context, job queue.Job, err error, log *slog.Logger) {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, errNoDelivery) {
		log.Warn("nowhere to record the deploy hook attempt; job dropped", "err", err)
		ack(ctx, job, log)
		return
	}
	log.Warn("record deploy hook attempt; will retry", "err", err, "in", time.Second)
	retry(job, time.Second, log)
}

func (n *Notifier) record(ctx context.Context, hj queue.HookJob, a model.Attempt, status string) error {
	// The API serves attempts: a hook URL with a token in it stays out.
	a.Error = redact.Text(a.Error)
	_, err := n.Builds.UpdateBuild(ctx, hj.BuildID, func(b *model.Build) error {
		i := b.Delivery(hj.Hook, hj.Event)
		if i < 0 {
			return fmt.Errorf("%w: hook %d, %s", errNoDelivery, hj.Hook, model.HookEvent(hj.Event))
		}
		d := &b.Deliveries[i]
		d.Attempts = append(d.Attempts, a)
		d.Status = status
		return nil
	})
	if err != nil {
		return fmt.Errorf("record deploy hook %d %s attempt: %w", hj.Hook, model.HookEvent(hj.Event), err)
	}
	return nil
}

func (n *Notifier) retryDelay() time.Duration {
	if n.RetryDelay > 0 {
		return n.RetryDelay
	}
	return 5 * time.Second
}

func (n *Notifier) schedule() deploy.Schedule {
	if len(n.Schedule) > 0 {
		return n.Schedule
	}
	return deploy.DefaultSchedule()
}

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

func (n *Notifier) logger() *slog.Logger {
	if n.Logger != nil {
		return n.Logger
	}
	return slog.Default()
}
