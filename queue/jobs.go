package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
)

// Job is one unit of work taken from a work queue.
type Job struct {
	msg jetstream.Msg
}

// Data is the job's payload.
func (j Job) Data() []byte { return j.msg.Data() }

// Delivered is how many times this job has been handed out, this time
// included.
func (j Job) Delivered() int {
	md, err := j.msg.Metadata()
	if err != nil {
		return 1
	}
	return int(md.NumDelivered) // #nosec G115 -- redeliveries stop at the consumer's MaxDeliver, far below MaxInt
}

// Ack removes the job for good; call it only after its outcome is stored.
func (j Job) Ack(ctx context.Context) error { return j.msg.DoubleAck(ctx) }

// Retry hands the job back to be delivered again after delay.
func (j Job) Retry(delay time.Duration) error { return j.msg.NakWithDelay(delay) }

// Extend tells JetStream the job is still being worked on.
func (j Job) Extend() error { return j.msg.InProgress() }

// Context is ctx with the trace context the job was queued under, so that
// the work on it continues the trace of what queued it (a webhook, a
// build). A job queued outside any trace leaves ctx as it is.
func (j Job) Context(ctx context.Context) context.Context {
	if j.msg == nil {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(j.msg.Headers()))
}

// traced is a message on subject carrying data and the trace context of
// ctx in its headers (W3C traceparent, tracestate), none when ctx is in no
// trace.
func traced(ctx context.Context, subject string, data []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(m.Header))
	return m
}

// HookJob asks for one deploy hook of one build to be called about one
// event.
type HookJob struct {
	BuildID string `json:"build_id"`
	Hook    int    `json:"hook"`
	// Event is the model.Event* the delivery announces; empty (a job
	// queued before hooks had events) is model.EventImagePushed.
	Event string `json:"event,omitempty"`
	// Round is 0 for the delivery after the event, n for the n-th manual
	// redelivery.
	Round int `json:"round,omitempty"`
}

// SubmitHook queues a deploy-hook delivery; the message id makes a repeated
// submission (a redelivered build job) harmless.
func (q *Queue) SubmitHook(ctx context.Context, j HookJob) error {
	raw, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode hook job: %w", err)
	}
	id := fmt.Sprintf("%s.hook%d.%s.%d", j.BuildID, j.Hook, model.HookEvent(j.Event), j.Round)
	if _, err := q.js.PublishMsg(ctx, traced(ctx, hooksSubject+"."+j.BuildID, raw), jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("queue hook delivery %s: %w", id, err)
	}
	return nil
}

// StatusJob asks for a build's state to be posted to its Git host as a
// commit status.
type StatusJob struct {
	BuildID string      `json:"build_id"`
	State   forge.State `json:"state"`
}

// SubmitStatus queues a commit status of a build; one state of one build is
// posted once. It is the only way statuses are queued.
func (q *Queue) SubmitStatus(ctx context.Context, buildID string, state forge.State) error {
	m, err := statusJob(buildID, state)
	if err != nil {
		return err
	}
	if _, err := q.js.PublishMsg(ctx, traced(ctx, m.subject, m.data), jetstream.WithMsgID(m.id)); err != nil {
		return fmt.Errorf("queue %s: %w", m.what, err)
	}
	return nil
}

func statusJob(buildID string, state forge.State) (message, error) {
	j := StatusJob{BuildID: buildID, State: state}
	raw, err := json.Marshal(j)
	if err != nil {
		return message{}, fmt.Errorf("encode status job: %w", err)
	}
	id := j.BuildID + ".status." + string(j.State)
	return message{subject: statusSubject + "." + j.BuildID, id: id, data: raw, what: "status " + id}, nil
}

// StatusJobs is the shared consumer of commit statuses.
func (q *Queue) StatusJobs(ctx context.Context) (*Consumer, error) {
	return q.consumer(ctx, StatusStream, "statuses")
}

// Consumer hands out jobs of one work queue to any number of workers, across
// processes.
type Consumer struct {
	c       jetstream.Consumer
	ackWait time.Duration
}

// buildConsumer is the durable consumer every worker takes build jobs from.
const buildConsumer = "workers"

// BuildJobs is the shared consumer of build jobs.
func (q *Queue) BuildJobs(ctx context.Context) (*Consumer, error) {
	return q.consumer(ctx, JobsStream, buildConsumer)
}

// HookJobs is the shared consumer of deploy-hook deliveries.
func (q *Queue) HookJobs(ctx context.Context) (*Consumer, error) {
	return q.consumer(ctx, HooksStream, "hooks")
}

func (q *Queue) consumer(ctx context.Context, stream, name string) (*Consumer, error) {
	c, err := q.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.opts.AckWait,
		MaxDeliver:    -1, // the worker decides when a job has failed for good
		MaxAckPending: 10000,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", name, stream, err)
	}
	return &Consumer{c: c, ackWait: q.opts.AckWait}, nil
}

// AckWait is how long a taken job may go without Extend before it is
// handed out again.
func (c *Consumer) AckWait() time.Duration { return c.ackWait }

// Next waits up to wait for one job; ok is false when none came. It
// returns as soon as ctx ends, so a stopping worker does not sit out the
// wait.
func (c *Consumer) Next(ctx context.Context, wait time.Duration) (Job, bool, error) {
	if err := ctx.Err(); err != nil {
		return Job{}, false, err
	}
	fetchCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	batch, err := c.c.Fetch(1, jetstream.FetchContext(fetchCtx))
	if err != nil {
		if ctx.Err() != nil {
			return Job{}, false, ctx.Err()
		}
		return Job{}, false, fmt.Errorf("fetch job: %w", err)
	}
	for msg := range batch.Messages() {
		return Job{msg: msg}, true, nil
	}
	switch err := batch.Error(); {
	case ctx.Err() != nil:
		return Job{}, false, ctx.Err()
	case err == nil, errors.Is(err, jetstream.ErrNoMessages), errors.Is(err, context.DeadlineExceeded):
		// The wait ran out with no job, as the server or our own
		// deadline told first.
		return Job{}, false, nil
	default:
		return Job{}, false, fmt.Errorf("fetch job: %w", err)
	}
}

// Pending is the number of jobs waiting to be handed out.
func (c *Consumer) Pending(ctx context.Context) (uint64, error) {
	info, err := c.c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer info: %w", err)
	}
	return info.NumPending, nil
}

// Backlog is the build queue at one moment, as NATS sees it.
type Backlog struct {
	// Waiting is the jobs no worker has taken yet.
	Waiting uint64
	// Taken is the jobs a worker took and has not acknowledged: running,
	// or handed back to be taken again later.
	Taken uint64
	// Oldest is the age of the oldest job still in the queue, waiting or
	// taken; zero when the queue is empty.
	Oldest time.Duration
}

// BuildBacklog reads the build queue's backlog: the consumer's counts and
// the age of the stream's first message. A work queue drops each job once
// it is acknowledged, so the first message left is the oldest job not
// done. Before any worker made the consumer, every job is waiting.
func (q *Queue) BuildBacklog(ctx context.Context) (Backlog, error) {
	s, err := q.js.Stream(ctx, JobsStream)
	if err != nil {
		return Backlog{}, fmt.Errorf("stream %s: %w", JobsStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return Backlog{}, fmt.Errorf("stream %s info: %w", JobsStream, err)
	}
	var b Backlog
	if info.State.Msgs > 0 {
		// Both times are the server's: no clock skew with this process.
		now := info.TimeStamp
		if now.IsZero() {
			now = time.Now()
		}
		b.Oldest = max(now.Sub(info.State.FirstTime), 0)
	}
	c, err := s.Consumer(ctx, buildConsumer)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		b.Waiting = info.State.Msgs
		return b, nil
	case err != nil:
		return Backlog{}, fmt.Errorf("consumer %s on %s: %w", buildConsumer, JobsStream, err)
	}
	ci := c.CachedInfo()
	b.Waiting, b.Taken = ci.NumPending, uint64(max(ci.NumAckPending, 0))
	return b, nil
}
