package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
)

// Notifier calls deploy hooks for finished builds. Each delivery is a job in
// JetStream, so retries survive restarts.
type Notifier struct {
	Builds    Builds
	Repos     Repos
	Jobs      Jobs
	Sender    deploy.Sender
	Schedule  deploy.Schedule
	PublicURL string
	Logger    *slog.Logger
	Now       func() time.Time
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
		n.logger().Error("drop undecodable hook job", "err", err)
		_ = job.Ack(ctx)
		return
	}
	log := n.logger().With("build", hj.BuildID, "hook", hj.Hook)
	b, err := n.Builds.GetBuild(ctx, hj.BuildID)
	if err != nil {
		log.Warn("read build for hook", "err", err)
		_ = job.Retry(5 * time.Second)
		return
	}
	repo, err := n.Repos.GetRepo(ctx, b.RepoID)
	if err != nil || hj.Hook >= len(repo.Hooks) || hj.Hook >= len(b.Deliveries) {
		n.record(ctx, hj, model.Attempt{At: n.now(), Error: "repository or hook no longer exists"}, model.DeliveryFailed, log)
		_ = job.Ack(ctx)
		return
	}
	d := b.Deliveries[hj.Hook]
	if d.Status != model.DeliveryPending {
		_ = job.Ack(ctx)
		return
	}
	body, err := deploy.NewPayload(b, repo, n.PublicURL, *b.FinishedAt)
	if err != nil {
		n.record(ctx, hj, model.Attempt{At: n.now(), Error: err.Error()}, model.DeliveryFailed, log)
		_ = job.Ack(ctx)
		return
	}
	attempt := n.Sender.Send(ctx, repo.Hooks[hj.Hook], d.MessageID, body, n.now())
	tries := len(d.Attempts) - d.RetryFrom + 1
	delay, more := n.schedule().Next(tries)
	status := model.DeliveryPending
	switch {
	case deploy.Succeeded(attempt):
		status = model.DeliveryDelivered
	case !more:
		status = model.DeliveryFailed
	}
	if err := n.record(ctx, hj, attempt, status, log); err != nil {
		_ = job.Retry(time.Second)
		return
	}
	if status == model.DeliveryPending {
		log.Info("deploy hook failed; will retry", "attempt", tries, "in", delay, "error", attempt.Error, "code", attempt.StatusCode)
		_ = job.Retry(delay)
		return
	}
	log.Info("deploy hook done", "status", status, "attempts", tries)
	_ = job.Ack(ctx)
}

func (n *Notifier) record(ctx context.Context, hj queue.HookJob, a model.Attempt, status string, log *slog.Logger) error {
	_, err := n.Builds.UpdateBuild(ctx, hj.BuildID, func(b *model.Build) error {
		if hj.Hook >= len(b.Deliveries) {
			return fmt.Errorf("build has no delivery %d", hj.Hook)
		}
		d := &b.Deliveries[hj.Hook]
		d.Attempts = append(d.Attempts, a)
		d.Status = status
		return nil
	})
	if err != nil {
		log.Warn("record hook attempt", "err", err)
	}
	return err
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
