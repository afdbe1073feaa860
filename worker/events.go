package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
)

// TestFailure marks err as the build's tests failing: the step that runs a
// rule's test returns the build's error through it, and the build ends
// failed with Build.TestFailed set, so that hooks hear test.failed as well
// as build.failed.
func TestFailure(err error) error { return testError{err} }

type testError struct{ err error }

func (e testError) Error() string { return e.err.Error() }
func (e testError) Unwrap() error { return e.err }

// isTestFailure reports whether err came through TestFailure.
func isTestFailure(err error) bool {
	var te testError
	return errors.As(err, &te)
}

// endEvents are the events the end of b fires. A failure fires
// build.failed, after test.failed when the tests failed; cancelled and
// skipped builds fire nothing. A success fires image.pushed when it pushed
// and pull_request.built when it built a pull request: a pull request that
// pushed fires both, a fork's, which is never pushed, only the latter.
func endEvents(b model.Build) []string {
	switch b.Status {
	case model.StatusFailed:
		if b.TestFailed {
			return []string{model.EventTestFailed, model.EventBuildFailed}
		}
		return []string{model.EventBuildFailed}
	case model.StatusSucceeded:
		var out []string
		// A pull request's image is no release to deploy: its hooks hear
		// pull_request.built instead.
		if b.Pushed() && b.PullRequest == nil {
			out = append(out, model.EventImagePushed)
		}
		if b.PullRequest != nil {
			out = append(out, model.EventPullRequestBuilt)
		}
		return out
	}
	return nil
}

// addDeliveries gives b a pending delivery of each event to every hook that
// subscribes to it, unless b has that delivery already (an earlier attempt
// of the build made it), and answers the ones it added.
func addDeliveries(b *model.Build, hooks []model.Hook, events []string) []model.Delivery {
	var added []model.Delivery
	for _, event := range events {
		for i, h := range hooks {
			if !h.Wants(event) || b.Delivery(i, event) >= 0 {
				continue
			}
			d := model.Delivery{
				Hook: i, Event: event, URL: h.URL,
				MessageID: deploy.MessageID(b.ID, i, event), Status: model.DeliveryPending,
			}
			b.Deliveries = append(b.Deliveries, d)
			added = append(added, d)
		}
	}
	return added
}

// submitHooks queues a job for each delivery.
func (w *Worker) submitHooks(ctx context.Context, buildID string, ds []model.Delivery) error {
	for _, d := range ds {
		if err := w.Queue.SubmitHook(ctx, queue.HookJob{BuildID: buildID, Hook: d.Hook, Event: d.Event}); err != nil {
			return err
		}
	}
	return nil
}

// started tells the hooks that subscribe to build.started that b is
// running, once per build however many attempts it takes. It never stops
// the build: a delivery that cannot be recorded is only logged, and one
// that cannot be queued is recorded failed, for a redelivery by hand.
func (w *Worker) started(ctx context.Context, repo model.Repo, b model.Build, log *slog.Logger) {
	if !wanted(repo.Hooks, model.EventBuildStarted) {
		return
	}
	var added []model.Delivery
	_, err := w.Builds.UpdateBuild(ctx, b.ID, func(cur *model.Build) error {
		added = addDeliveries(cur, repo.Hooks, []string{model.EventBuildStarted})
		return nil
	})
	if err != nil {
		log.Warn("record the build.started deliveries; the hooks will not hear of the start", "err", err)
		return
	}
	if err := w.submitHooks(ctx, b.ID, added); err != nil {
		log.Warn("queue the build.started deliveries; recorded failed, to be redelivered by hand", "err", err)
		w.unqueued(ctx, b.ID, added, err, log)
	}
}

// unqueued records deliveries whose jobs could not be queued as failed, so
// that they do not look pending forever and can be redelivered.
func (w *Worker) unqueued(ctx context.Context, buildID string, ds []model.Delivery, qerr error, log *slog.Logger) {
	why := model.Attempt{At: w.now(), Error: fmt.Sprintf("could not be queued: %v", qerr)}
	_, err := w.Builds.UpdateBuild(ctx, buildID, func(cur *model.Build) error {
		for _, d := range ds {
			if i := cur.Delivery(d.Hook, d.Event); i >= 0 && len(cur.Deliveries[i].Attempts) == 0 {
				cur.Deliveries[i].Status = model.DeliveryFailed
				cur.Deliveries[i].Attempts = append(cur.Deliveries[i].Attempts, why)
			}
		}
		return nil
	})
	if err != nil {
		log.Warn("record the unqueued deliveries as failed; they show pending", "err", err)
	}
}

// wanted reports whether any hook subscribes to event.
func wanted(hooks []model.Hook, event string) bool {
	for _, h := range hooks {
		if h.Wants(event) {
			return true
		}
	}
	return false
}
