// Package queue holds Slipway's work queues on NATS JetStream: build jobs,
// deploy-hook deliveries and commit statuses, each a work-queue stream with
// a shared consumer any number of processes take jobs from.
//
// A job is always about a record, so queue is built on package store and
// never the other way round: store keeps the records and knows no queues;
// Queue is where a write needs both. Enqueue stores a push's build, queues
// its job and its pending status and supersedes older builds of its ref;
// Cancel ends a queued build and queues its cancelled status. Data flows one
// way: record first, then the job about it.
package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/store"
)

// Names of the JetStream assets. They are created idempotently at start.
const (
	JobsStream    = "SLIPWAY_JOBS"
	HooksStream   = "SLIPWAY_HOOKS"
	StatusStream  = "SLIPWAY_STATUS"
	jobsSubject   = "slipway.jobs.build"
	hooksSubject  = "slipway.hooks.deliver"
	statusSubject = "slipway.status.post"

	// DedupWindow outlives GitHub's manual redelivery window (72 h), so a
	// redelivered webhook never builds twice.
	DedupWindow = 72 * time.Hour
	// AckWait is the default bound on how long a job of a dead worker waits
	// for redelivery; live workers extend it with InProgress.
	AckWait = 30 * time.Second
	// MaxDeliver bounds retries of a job that fails for infrastructure reasons.
	MaxDeliver = 10
)

// Records are the store writes that go with queueing: package store
// implements them.
type Records interface {
	CreateBuild(ctx context.Context, b model.Build) (bool, error)
	GetBuild(ctx context.Context, id string) (model.Build, error)
	Supersede(ctx context.Context, b model.Build) (store.Superseded, error)
	Cancel(ctx context.Context, id, reason, by string) (model.Build, bool, error)
}

// Queue is the work queues, and the writes that pair a record with a job.
type Queue struct {
	opts    Options
	js      jetstream.JetStream
	records Records
}

// Options tune a Queue; the zero value is the single-server default.
type Options struct {
	// Replicas is the replication factor of every stream (3 on a clustered
	// NATS).
	Replicas int
	// AckWait is how long a job taken by a worker that died waits before
	// it is handed out again (default 30 s).
	AckWait time.Duration
}

// Open creates (or finds) the work-queue streams and returns a Queue on
// them whose jobs are about records. Creating is idempotent, so any number
// of Slipway processes may open the same NATS at once.
func Open(ctx context.Context, nc *nats.Conn, records Records, o Options) (*Queue, error) {
	o.Replicas = max(o.Replicas, 1)
	if o.AckWait <= 0 {
		o.AckWait = AckWait
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	for _, cfg := range []jetstream.StreamConfig{
		workQueue(JobsStream, jobsSubject, o.Replicas),
		workQueue(HooksStream, hooksSubject, o.Replicas),
		workQueue(StatusStream, statusSubject, o.Replicas),
	} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	}
	return &Queue{opts: o, js: js, records: records}, nil
}

func workQueue(name, subject string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{subject + ".>"},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Replicas:   replicas,
		Duplicates: DedupWindow,
	}
}
