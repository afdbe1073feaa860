package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	return int(md.NumDelivered)
}

// Ack removes the job for good; call it only after its outcome is stored.
func (j Job) Ack(ctx context.Context) error { return j.msg.DoubleAck(ctx) }

// Retry hands the job back to be delivered again after delay.
func (j Job) Retry(delay time.Duration) error { return j.msg.NakWithDelay(delay) }

// Extend tells JetStream the job is still being worked on.
func (j Job) Extend() error { return j.msg.InProgress() }

// SubmitBuild records a build as queued, then queues its job. A build whose
// id is already stored is not submitted again: it reports true, and the job
// of a build still queued is queued once more, in case the process that
// stored it died before queueing it (the job's message id makes that
// harmless otherwise, and a worker runs a build only from queued).
func (s *Store) SubmitBuild(ctx context.Context, b model.Build) (bool, error) {
	created, err := s.CreateBuild(ctx, b)
	if err != nil {
		return false, err
	}
	if !created {
		stored, err := s.GetBuild(ctx, b.ID)
		if err != nil {
			return true, err
		}
		if stored.Status == model.StatusQueued {
			return true, s.publishBuild(ctx, stored)
		}
		return true, nil
	}
	if err := s.publishBuild(ctx, b); err != nil {
		return false, err
	}
	// After the record, so the reporter finds the build it is about.
	return false, s.SubmitStatus(ctx, StatusJob{BuildID: b.ID, State: "pending"})
}

// publishBuild queues a build's job. The job carries the whole build, so a
// worker can proceed even if it cannot read the record.
func (s *Store) publishBuild(ctx context.Context, b model.Build) error {
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if _, err := s.JS.Publish(ctx, jobsSubject+"."+b.RepoID, raw, jetstream.WithMsgID(b.ID)); err != nil {
		return fmt.Errorf("queue build %s: %w", b.ID, err)
	}
	return nil
}

// HookJob asks for one deploy hook of one build to be called.
type HookJob struct {
	BuildID string `json:"build_id"`
	Hook    int    `json:"hook"`
	// Round is 0 for the delivery after the build, n for the n-th manual
	// redelivery.
	Round int `json:"round,omitempty"`
}

// SubmitHook queues a deploy-hook delivery; the message id makes a repeated
// submission (a redelivered build job) harmless.
func (s *Store) SubmitHook(ctx context.Context, j HookJob) error {
	raw, err := json.Marshal(j)
	if err != nil {
		return err
	}
	id := fmt.Sprintf("%s.hook%d.%d", j.BuildID, j.Hook, j.Round)
	if _, err := s.JS.Publish(ctx, hooksSubject+"."+j.BuildID, raw, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("queue hook delivery %s: %w", id, err)
	}
	return nil
}

// StatusJob asks for a build's state to be posted to its Git host as a
// commit status.
type StatusJob struct {
	BuildID string `json:"build_id"`
	State   string `json:"state"` // a forge.State
}

// SubmitStatus queues a commit status; one state of one build is posted
// once.
func (s *Store) SubmitStatus(ctx context.Context, j StatusJob) error {
	raw, err := json.Marshal(j)
	if err != nil {
		return err
	}
	id := j.BuildID + ".status." + j.State
	if _, err := s.JS.Publish(ctx, statusSubject+"."+j.BuildID, raw, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("queue status %s: %w", id, err)
	}
	return nil
}

// StatusJobs is the shared consumer of commit statuses.
func (s *Store) StatusJobs(ctx context.Context) (*Consumer, error) {
	return s.consumer(ctx, StatusStream, "statuses")
}

// Consumer hands out jobs of one work queue to any number of workers, across
// processes.
type Consumer struct {
	c       jetstream.Consumer
	ackWait time.Duration
}

// BuildJobs is the shared consumer of build jobs.
func (s *Store) BuildJobs(ctx context.Context) (*Consumer, error) {
	return s.consumer(ctx, JobsStream, "workers")
}

// HookJobs is the shared consumer of deploy-hook deliveries.
func (s *Store) HookJobs(ctx context.Context) (*Consumer, error) {
	return s.consumer(ctx, HooksStream, "hooks")
}

func (s *Store) consumer(ctx context.Context, stream, name string) (*Consumer, error) {
	c, err := s.JS.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.opts.AckWait,
		MaxDeliver:    -1, // the worker decides when a job has failed for good
		MaxAckPending: 10000,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", name, stream, err)
	}
	return &Consumer{c: c, ackWait: s.opts.AckWait}, nil
}

// AckWait is how long a taken job may go without Extend before it is
// handed out again.
func (c *Consumer) AckWait() time.Duration { return c.ackWait }

// Next waits up to wait for one job; ok is false when none came.
func (c *Consumer) Next(ctx context.Context, wait time.Duration) (Job, bool, error) {
	batch, err := c.c.Fetch(1, jetstream.FetchMaxWait(wait))
	if err != nil {
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			return Job{}, false, ctx.Err()
		}
		return Job{}, false, fmt.Errorf("fetch job: %w", err)
	}
	for msg := range batch.Messages() {
		return Job{msg: msg}, true, nil
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return Job{}, false, fmt.Errorf("fetch job: %w", err)
	}
	return Job{}, false, nil
}

// Pending is the number of jobs waiting to be handed out.
func (c *Consumer) Pending(ctx context.Context) (uint64, error) {
	info, err := c.c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending, nil
}

// Queued is what Enqueue did.
type Queued struct {
	// Duplicate says the build was stored before (by another webhook
	// delivery, the reconciler, another Slipway process) and nothing new
	// was queued; Build is then the stored one.
	Duplicate bool
	Build     model.Build
	// Cancelled are the builds of older pushes this one superseded.
	Cancelled []string
	// CancelErr is a failure to record the push as its ref's newest or to
	// cancel older builds: the push itself is stored, and tags never move
	// backwards anyway, so callers log it and carry on.
	CancelErr error
}

// Enqueue stores a build of a push: a skipped build is only recorded, any
// other is queued. Either way the push becomes its ref's newest, and with
// cancelOlder the builds of older pushes are cancelled. A build whose id is
// stored already is not queued again; it is recorded as its ref's newest
// once more, which repairs a process that died in between. An error means
// the build may not be stored.
func (s *Store) Enqueue(ctx context.Context, b model.Build, cancelOlder bool) (Queued, error) {
	var dup bool
	var err error
	if b.Status == model.StatusSkipped {
		var created bool
		created, err = s.CreateBuild(ctx, b)
		dup = !created
	} else {
		dup, err = s.SubmitBuild(ctx, b)
	}
	if err != nil {
		return Queued{}, err
	}
	if dup {
		if b, err = s.GetBuild(ctx, b.ID); err != nil {
			return Queued{}, err
		}
	}
	cancelled, cerr := s.Supersede(ctx, b, cancelOlder && b.Status != model.StatusSkipped)
	return Queued{Duplicate: dup, Build: b, Cancelled: cancelled, CancelErr: cerr}, nil
}
