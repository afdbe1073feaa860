package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/store"
)

// SubmitBuild records a build as queued, then queues its job. A build whose
// id is already stored is not submitted again: it reports true, and the job
// of a build still queued is queued once more, in case the process that
// stored it died before queueing it (the job's message id makes that
// harmless otherwise, and a worker runs a build only from queued).
func (q *Queue) SubmitBuild(ctx context.Context, b model.Build) (bool, error) {
	created, err := q.records.CreateBuild(ctx, b)
	if err != nil {
		return false, err
	}
	if !created {
		stored, err := q.records.GetBuild(ctx, b.ID)
		if err != nil {
			return true, err
		}
		if stored.Status == model.StatusQueued {
			return true, q.publishBuild(ctx, stored)
		}
		return true, nil
	}
	// The job and the pending status go out together, and both are
	// stored before this returns: one round trip instead of two. The
	// status comes after the record, so the reporter finds the build.
	job, err := buildJob(b)
	if err != nil {
		return false, err
	}
	status, err := statusJob(b.ID, forge.Pending)
	if err != nil {
		return false, err
	}
	return false, q.publishAll(ctx, job, status)
}

// message is a job to publish with its deduplicating id.
type message struct {
	subject, id string
	data        []byte
	what        string // for errors: "build <id>", "status <id>"
}

func buildJob(b model.Build) (message, error) {
	raw, err := json.Marshal(b)
	if err != nil {
		return message{}, fmt.Errorf("encode build job %s: %w", b.ID, err)
	}
	return message{subject: jobsSubject + "." + b.RepoID, id: b.ID, data: raw, what: "build " + b.ID}, nil
}

// publishAll publishes messages without waiting for each, then waits
// until JetStream has stored every one: an error means some may not be.
// Each carries ctx's trace context, which the worker taking it continues.
func (q *Queue) publishAll(ctx context.Context, msgs ...message) error {
	acks := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := q.js.PublishMsgAsync(traced(ctx, m.subject, m.data), jetstream.WithMsgID(m.id))
		if err != nil {
			return fmt.Errorf("queue %s: %w", m.what, err)
		}
		acks[i] = f
	}
	for i, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("queue %s: %w", msgs[i].what, err)
		case <-ctx.Done():
			return fmt.Errorf("queue %s: %w", msgs[i].what, ctx.Err())
		}
	}
	return nil
}

// publishBuild queues a build's job. The job carries the whole build, so a
// worker can proceed even if it cannot read the record.
func (q *Queue) publishBuild(ctx context.Context, b model.Build) error {
	job, err := buildJob(b)
	if err != nil {
		return err
	}
	if _, err := q.js.PublishMsg(ctx, traced(ctx, job.subject, job.data), jetstream.WithMsgID(job.id)); err != nil {
		return fmt.Errorf("queue %s: %w", job.what, err)
	}
	return nil
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
func (q *Queue) Enqueue(ctx context.Context, b model.Build, cancelOlder bool) (Queued, error) {
	var dup bool
	var err error
	if b.Status == model.StatusSkipped {
		var created bool
		created, err = q.records.CreateBuild(ctx, b)
		dup = !created
	} else {
		dup, err = q.SubmitBuild(ctx, b)
	}
	if err != nil {
		return Queued{}, err
	}
	if dup {
		if b, err = q.records.GetBuild(ctx, b.ID); err != nil {
			return Queued{}, err
		}
	}
	cancelled, cerr := q.supersede(ctx, b, cancelOlder && b.Status != model.StatusSkipped)
	return Queued{Duplicate: dup, Build: b, Cancelled: cancelled, CancelErr: cerr}, nil
}

// supersede records b as its ref's newest push and, with cancel, cancels
// the builds that makes out of date; it returns those it cancelled.
func (q *Queue) supersede(ctx context.Context, b model.Build, cancel bool) ([]string, error) {
	old, err := q.records.Supersede(ctx, b)
	if err != nil || !cancel {
		return nil, err
	}
	var cancelled []string
	for _, id := range old.Builds {
		ok, err := q.Cancel(ctx, id, "superseded by build "+old.By, old.By)
		if err != nil {
			return cancelled, err
		}
		if ok {
			cancelled = append(cancelled, id)
		}
	}
	return cancelled, nil
}

// Cancel stops a build: a queued one ends cancelled now and its status is
// queued, a running one is asked to stop and its worker ends it. It reports
// whether the build was still active; a missing build was not.
func (q *Queue) Cancel(ctx context.Context, id, reason, by string) (bool, error) {
	b, active, err := q.records.Cancel(ctx, id, reason, by)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cancel build %s: %w", id, err)
	}
	// A running build reports its own end; a queued one ends here.
	if active && b.Status == model.StatusCancelled {
		return true, q.SubmitStatus(ctx, id, forge.Cancelled)
	}
	return active, nil
}
