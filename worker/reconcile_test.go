package worker_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/trigger"
	"github.com/slipway-build/slipway/worker"
)

// reconcileRig is a Reconciler on an embedded JetStream store and queue,
// watching the main branch of a real Git repository served by
// `git http-backend` on loopback.
type reconcileRig struct {
	*env
	git  *rig.Repo
	repo model.Repo
	rec  *worker.Reconciler
}

func newReconcileRig(t *testing.T) *reconcileRig {
	e := newEnv(t)
	git := rig.StartGitServer(t).NewRepo(t, "demo")
	repo := model.Repo{
		ID: "r1", Provider: "github", FullName: "acme/demo", CloneURL: git.CloneURL, Image: image, CreatedAt: created,
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}, Dockerfile: "Dockerfile", Context: "."}},
	}
	e.createRepo(repo)
	clock := created
	rec := &worker.Reconciler{
		Repos: e.store, Refs: e.store, Queue: e.queue, Logger: e.logger(),
		Now: func() time.Time { clock = clock.Add(time.Second); return clock },
	}
	return &reconcileRig{env: e, git: git, repo: repo, rec: rec}
}

// push commits a change to main and pushes it, returning the commit.
func (r *reconcileRig) push(msg string) string {
	c := r.git.Commit(msg, map[string]string{"Dockerfile": "FROM scratch\nLABEL msg=" + msg + "\n"})
	r.git.Push("main")
	return c
}

// seenThenPushed has main's first commit recorded by a reconciliation,
// then pushes another; it answers both commits.
func (r *reconcileRig) seenThenPushed(msg string) (seen, tip string) {
	r.t.Helper()
	seen = r.push("first")
	if n := r.once(); n != 0 {
		r.t.Fatalf("first pass queued %d builds, want 0", n)
	}
	return seen, r.push(msg)
}

// once runs one reconciliation and answers how many builds it queued.
func (r *reconcileRig) once() int {
	r.t.Helper()
	n, err := r.rec.Once(testCtx(r.t))
	if err != nil {
		r.t.Fatalf("Once: %v", err)
	}
	return n
}

func (r *reconcileRig) builds() []model.Build {
	r.t.Helper()
	bs, err := r.store.ListBuilds(testCtx(r.t), "r1")
	if err != nil {
		r.t.Fatal(err)
	}
	return bs
}

func (r *reconcileRig) lastCommit() string {
	r.t.Helper()
	c, err := r.store.LastCommit(testCtx(r.t), "r1", "refs/heads/main")
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// jobsQueued is how many build jobs wait in the queue.
func (r *reconcileRig) jobsQueued() uint64 {
	r.t.Helper()
	jobs, err := r.queue.BuildJobs(testCtx(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	n, err := jobs.Pending(testCtx(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

// pushed is what a build says of the push it builds.
type pushed struct {
	Ref, Commit, Before, Trigger, Status string
	Tags                                 []string
}

func pushOf(b model.Build) pushed {
	return pushed{b.Ref, b.Commit, b.Before, b.Trigger, b.Status, b.Tags}
}

func TestReconcilerFirstPassRecordsTipsAndBuildsNothing(t *testing.T) {
	r := newReconcileRig(t)
	tip := r.push("first")

	if n := r.once(); n != 0 {
		t.Errorf("first pass queued %d builds, want 0", n)
	}
	if got := r.lastCommit(); got != tip {
		t.Errorf("main recorded at %q, want its tip %s", got, tip)
	}
	if ok, err := r.store.Baselined(testCtx(t), "r1"); err != nil || !ok {
		t.Errorf("Baselined = %v, %v; want true", ok, err)
	}
	if bs := r.builds(); len(bs) != 0 {
		t.Errorf("builds after the first pass: %+v, want none", bs)
	}
	if n := r.jobsQueued(); n != 0 {
		t.Errorf("%d build jobs queued, want none", n)
	}
}

func TestReconcilerQueuesAMissedPushOnce(t *testing.T) {
	r := newReconcileRig(t)
	first, missed := r.seenThenPushed("missed")

	if n := r.once(); n != 1 {
		t.Fatalf("pass after a missed push queued %d builds, want 1", n)
	}
	bs := r.builds()
	want := pushed{Ref: "refs/heads/main", Commit: missed, Before: first, Trigger: "reconcile", Status: "queued", Tags: []string{"latest"}}
	if len(bs) != 1 || !reflect.DeepEqual(pushOf(bs[0]), want) {
		t.Fatalf("builds = %+v, want one of %+v", bs, want)
	}
	if got := r.lastCommit(); got != missed {
		t.Errorf("main recorded at %q, want %s", got, missed)
	}

	if n := r.once(); n != 0 {
		t.Errorf("second pass queued %d builds, want 0", n)
	}
	if bs := r.builds(); len(bs) != 1 {
		t.Errorf("%d builds after the second pass, want 1", len(bs))
	}
	if n := r.jobsQueued(); n != 1 {
		t.Errorf("%d build jobs queued, want 1", n)
	}
}

// webhookBuilds stores the builds a webhook of the push gives, as the
// webhook handler does.
func (r *reconcileRig) webhookBuilds(before, after string) []model.Build {
	r.t.Helper()
	bs, err := trigger.Builds(r.repo, trigger.Push{
		Ref: "refs/heads/main", Before: before, After: after, Time: created.Add(time.Minute), Trigger: trigger.Webhook,
	})
	if err != nil || len(bs) != 1 {
		r.t.Fatalf("trigger.Builds = %+v, %v; want one build", bs, err)
	}
	return bs
}

func TestReconcilerDoesNotRequeueATipAWebhookBuilt(t *testing.T) {
	r := newReconcileRig(t)
	first, tip := r.seenThenPushed("announced")
	for _, b := range r.webhookBuilds(first, tip) {
		if _, err := r.queue.Enqueue(testCtx(t), b, true); err != nil {
			t.Fatal(err)
		}
	}

	if n := r.once(); n != 0 {
		t.Errorf("pass after a webhook built the tip queued %d builds, want 0", n)
	}
	bs := r.builds()
	want := pushed{Ref: "refs/heads/main", Commit: tip, Before: first, Trigger: "webhook", Status: "queued", Tags: []string{"latest"}}
	if len(bs) != 1 || !reflect.DeepEqual(pushOf(bs[0]), want) {
		t.Errorf("builds = %+v, want only the webhook's %+v", bs, want)
	}
	if n := r.jobsQueued(); n != 1 {
		t.Errorf("%d build jobs queued, want 1", n)
	}
}

// A webhook's build stored by a process that died before it recorded the
// push as its ref's newest: the reconciler sees the tip as missed, but
// the build's identity is the same, so nothing is queued twice, and the ref
// is repaired.
func TestReconcilerRecognisesAWebhookBuildItsProcessLeftHalfDone(t *testing.T) {
	r := newReconcileRig(t)
	first, tip := r.seenThenPushed("half done")
	for _, b := range r.webhookBuilds(first, tip) {
		if _, err := r.queue.SubmitBuild(testCtx(t), b); err != nil { // stored and queued, not superseding
			t.Fatal(err)
		}
	}
	if got := r.lastCommit(); got != first {
		t.Fatalf("main recorded at %q before the pass, want still %s", got, first)
	}

	if n := r.once(); n != 0 {
		t.Errorf("pass queued %d builds, want 0", n)
	}
	if bs := r.builds(); len(bs) != 1 || bs[0].Trigger != "webhook" {
		t.Errorf("builds = %+v, want only the webhook's", bs)
	}
	if got := r.lastCommit(); got != tip {
		t.Errorf("main recorded at %q, want the tip %s", got, tip)
	}
	if n := r.jobsQueued(); n != 1 {
		t.Errorf("%d build jobs queued, want 1", n)
	}
}
