package worker

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/source"
	"github.com/slipway-build/slipway/telemetry"
	"github.com/slipway-build/slipway/trigger"
)

// RepoList lists every repository (package store).
type RepoList interface {
	ListRepos(ctx context.Context) ([]model.Repo, error)
}

// Refs are what Slipway has seen of each ref (package store).
type Refs interface {
	LastCommit(ctx context.Context, repoID, ref string) (string, error)
	Baselined(ctx context.Context, repoID string) (bool, error)
	trigger.Seen
}

// Reconciler builds branch tips that no webhook announced: the answer to
// "GitHub was down" and "our endpoint was down". It lists the heads of every
// repository and queues a build for each watched branch whose tip is not
// the newest push Slipway has seen. Builds get the identity a webhook of
// the same push would give them, so a tip is built once however many
// reconcilers and webhooks see it. A repository whose tips at registration
// were never recorded has them recorded first, and nothing built.
type Reconciler struct {
	Repos       RepoList
	Refs        Refs
	Queue       trigger.Enqueuer
	Interval    time.Duration
	Credentials func(ctx context.Context, repo model.Repo) (source.Credentials, error)
	Logger      *slog.Logger
	Now         func() time.Time
}

// Run reconciles at once and then every Interval until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	for {
		n, err := r.Once(ctx)
		if err != nil && ctx.Err() == nil {
			r.logger().Warn("reconcile", "err", err)
		}
		if n > 0 {
			r.logger().Info("reconciliation queued builds of missed pushes", "builds", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.Interval):
		}
	}
}

// Once compares every repository's branch tips with the last pushes seen
// and queues what is missing; it returns how many builds it queued.
func (r *Reconciler) Once(ctx context.Context) (int, error) {
	repos, err := r.Repos.ListRepos(ctx)
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, repo := range repos {
		if repo.CloneURL == "" || !watchesBranches(repo) {
			continue
		}
		n, err := r.repo(ctx, repo)
		queued += n
		if err != nil {
			r.logger().Warn("reconcile repository", "repo", repo.ID, "full_name", repo.FullName, "err", err)
		}
	}
	return queued, nil
}

func watchesBranches(repo model.Repo) bool {
	for _, rule := range repo.Rules {
		if rule.SourceType == "branch" && model.On(rule.Enabled, true) {
			return true
		}
	}
	return false
}

func (r *Reconciler) repo(ctx context.Context, repo model.Repo) (int, error) {
	heads, err := r.heads(ctx, repo)
	if err != nil {
		return 0, err
	}
	done, err := r.Refs.Baselined(ctx, repo.ID)
	if err != nil {
		return 0, err
	}
	if !done {
		_, err := trigger.Baseline(ctx, r.Refs, r.Queue, repo, heads, false, r.now())
		if err == nil {
			r.logger().Info("recorded the branch tips of a new repository; nothing built", "repo", repo.FullName, "branches", len(heads))
		}
		return 0, err
	}
	queued := 0
	for _, ref := range slices.Sorted(maps.Keys(heads)) {
		n, err := r.ref(ctx, repo, ref, heads[ref])
		queued += n
		if err != nil {
			return queued, err
		}
	}
	return queued, nil
}

// ref queues the builds of one branch tip unless it is the newest push seen.
func (r *Reconciler) ref(ctx context.Context, repo model.Repo, ref, tip string) (int, error) {
	last, err := r.Refs.LastCommit(ctx, repo.ID, ref)
	if err != nil || last == tip {
		return 0, err
	}
	builds, err := trigger.Builds(repo, trigger.Push{Ref: ref, Before: last, After: tip, Time: r.now(), Trigger: trigger.Reconcile})
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, b := range builds {
		q, err := r.Queue.Enqueue(ctx, b, model.On(repo.CancelSuperseded, true))
		if err != nil {
			return queued, err
		}
		if !q.Duplicate {
			queued++
			telemetry.Of(b, repo).Log(r.logger()).Info("missed push found", "ref", ref, "commit", tip, "last_seen", last)
		}
	}
	return queued, nil
}

func (r *Reconciler) heads(ctx context.Context, repo model.Repo) (map[string]string, error) {
	var creds source.Credentials
	if r.Credentials != nil {
		c, err := r.Credentials(ctx, repo)
		if err != nil {
			return nil, err
		}
		creds = c
	}
	dir, err := os.MkdirTemp("", "slipway-reconcile-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	auth, err := creds.Auth(repo.CloneURL, dir)
	if err != nil {
		return nil, err
	}
	return source.Heads(ctx, repo.CloneURL, auth)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}
