package worker_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/forge"
	ghforge "github.com/slipway-build/slipway/forge/github"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/worker"
)

const (
	sha       = "0123456789abcdef0123456789abcdef01234567"
	statusURL = "/repos/acme/demo/statuses/" + sha
	image     = "registry.test/acme/demo"
)

var created = time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)

// reporterRig is a Reporter on real parts: an embedded JetStream store and
// queue, GitHub's forge client, and a local GitHub API test server
// (rig.HostAPI) answering commit statuses as GitHub documents them.
type reporterRig struct {
	*env
	host *rig.HostAPI
}

func newReporterRig(t *testing.T) *reporterRig {
	e := newEnv(t)
	host := rig.StartHostAPI(t)
	e.createRepo(model.Repo{ID: "r1", Provider: "github", FullName: "acme/demo", APIURL: host.URL, Image: image, CreatedAt: created})
	return &reporterRig{env: e, host: host}
}

// start runs a Reporter that reads repositories through repos.
func (r *reporterRig) start(repos worker.Repos) {
	jobs, err := r.queue.StatusJobs(testCtx(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	rep := &worker.Reporter{
		Builds: r.store, Repos: repos, Jobs: jobs,
		Forges:    map[string]forge.Forge{"github": ghforge.Forge{}},
		Token:     func(context.Context, model.Repo) (string, error) { return "ghs_test", nil },
		PublicURL: "http://slipway.test", Logger: r.logger(), RetryDelay: 10 * time.Millisecond,
	}
	r.run(rep.Run)
}

func newBuild() model.Build {
	return model.Build{
		ID: "b1", RepoID: "r1", Ref: "refs/heads/main", Commit: sha, Status: model.StatusQueued,
		Image: image, Tags: []string{"latest"}, CreatedAt: created, Seq: 1,
	}
}

// post is one commit status as the host received it.
type post struct{ State, Description string }

func (r *reporterRig) posts() []post {
	var out []post
	for _, req := range r.host.Requests() {
		if req.Method != "POST" || req.Path != statusURL {
			r.t.Errorf("unexpected request to the host: %s %s", req.Method, req.Path)
			continue
		}
		desc, _ := req.Body["description"].(string)
		state, _ := req.Body["state"].(string)
		out = append(out, post{state, desc})
	}
	return out
}

// recorded is a build's Statuses without their times.
func (r *reporterRig) recorded(id string) []model.StatusPost {
	var out []model.StatusPost
	for _, p := range r.build(id).Statuses {
		out = append(out, model.StatusPost{State: p.State, Error: p.Error})
	}
	return out
}

func (r *reporterRig) update(id string, change func(*model.Build)) {
	r.t.Helper()
	if _, err := r.store.UpdateBuild(testCtx(r.t), id, func(b *model.Build) error { change(b); return nil }); err != nil {
		r.t.Fatal(err)
	}
}

func (r *reporterRig) submitStatus(id string, state forge.State) {
	r.t.Helper()
	if err := r.queue.SubmitStatus(testCtx(r.t), id, state); err != nil {
		r.t.Fatal(err)
	}
}

// GitHub knows no "running": it is a second pending with another
// description.
var (
	queuedPost  = post{"pending", "Queued"}
	buildPost   = post{"pending", "Building registry.test/acme/demo"}
	successPost = post{"success", "Pushed registry.test/acme/demo:latest"}
)

// wantPendingRunningSuccess checks that the host heard b1 queued, building
// and pushed, in that order, and that the build records each post.
func (r *reporterRig) wantPendingRunningSuccess() {
	r.t.Helper()
	if got, want := r.posts(), []post{queuedPost, buildPost, successPost}; !reflect.DeepEqual(got, want) {
		r.t.Errorf("host received %+v, want %+v", got, want)
	}
	want := []model.StatusPost{{State: "pending"}, {State: "running"}, {State: "success"}}
	if got := r.recorded("b1"); !reflect.DeepEqual(got, want) {
		r.t.Errorf("build statuses = %+v, want %+v", got, want)
	}
}

func TestReporterPostsPendingRunningSuccessInOrder(t *testing.T) {
	r := newReporterRig(t)
	if _, err := r.queue.SubmitBuild(testCtx(t), newBuild()); err != nil { // queues pending
		t.Fatal(err)
	}
	started := created.Add(time.Minute)
	r.update("b1", func(b *model.Build) { b.Status, b.StartedAt = model.StatusRunning, &started })
	r.submitStatus("b1", forge.Running)
	r.update("b1", func(b *model.Build) { b.Status = model.StatusSucceeded })
	r.submitStatus("b1", forge.Success)

	r.start(r.store)
	r.drained(queue.StatusStream)
	r.wantPendingRunningSuccess()
}

// A worker may queue the end of a build before its pending status was ever
// queued; the host still hears pending, running, then the end.
func TestReporterFillsInAMissedPending(t *testing.T) {
	r := newReporterRig(t)
	b := newBuild()
	started := created.Add(time.Minute)
	b.Status, b.StartedAt = model.StatusSucceeded, &started
	r.createBuild(b) // stored, but no pending status queued
	r.submitStatus("b1", forge.Success)

	r.start(r.store)
	r.drained(queue.StatusStream)
	r.wantPendingRunningSuccess()
}

func TestReporterRetriesAFailingHostAndRecordsTheErrors(t *testing.T) {
	r := newReporterRig(t)
	r.host.FailStatuses = 2 // 502 twice, then 201
	if _, err := r.queue.SubmitBuild(testCtx(t), newBuild()); err != nil {
		t.Fatal(err)
	}

	r.start(r.store)
	r.drained(queue.StatusStream)

	if got, want := r.posts(), []post{queuedPost, queuedPost, queuedPost}; !reflect.DeepEqual(got, want) {
		t.Errorf("host received %+v, want %+v", got, want)
	}
	const bad = "github: POST " + statusURL + ": HTTP 502 Bad Gateway: upstream is having a bad minute"
	want := []model.StatusPost{{State: "pending", Error: bad}, {State: "pending", Error: bad}, {State: "pending"}}
	if got := r.recorded("b1"); !reflect.DeepEqual(got, want) {
		t.Errorf("build statuses = %+v\nwant %+v", got, want)
	}
	if n := len(r.log.lines("commit status will be retried", "build=b1", "HTTP 502")); n != 2 {
		t.Errorf("%d retries logged, want 2:\n%s", n, r.log.String())
	}
}

func TestReporterLogsAndAcksAnUndecodableJob(t *testing.T) {
	r := newReporterRig(t)
	if _, err := r.js.Publish(testCtx(t), "slipway.status.post.junk", []byte("not a status job")); err != nil {
		t.Fatal(err)
	}

	r.start(r.store)
	r.drained(queue.StatusStream)

	if got := r.log.lines("drop undecodable job", `kind="commit status"`, `payload="not a status job"`); len(got) != 1 {
		t.Errorf("undecodable job logged %d times, want once:\n%s", len(got), r.log.String())
	}
	if got := r.host.Requests(); len(got) != 0 {
		t.Errorf("host received %d requests, want none", len(got))
	}
}

// flakyRepos fails the first reads with a passing error, as NATS does
// while a cluster elects a leader.
type flakyRepos struct {
	worker.Repos
	failures atomic.Int32
	calls    atomic.Int32
}

func (f *flakyRepos) GetRepo(ctx context.Context, id string) (model.Repo, error) {
	f.calls.Add(1)
	if f.failures.Add(-1) >= 0 {
		return model.Repo{}, errors.New("nats: timeout")
	}
	return f.Repos.GetRepo(ctx, id)
}

func TestReporterRetriesAPassingRepositoryReadError(t *testing.T) {
	r := newReporterRig(t)
	if _, err := r.queue.SubmitBuild(testCtx(t), newBuild()); err != nil {
		t.Fatal(err)
	}
	repos := &flakyRepos{Repos: r.store}
	repos.failures.Store(1)

	r.start(repos)
	r.drained(queue.StatusStream)

	if n := repos.calls.Load(); n != 2 {
		t.Errorf("repository read %d times, want 2 (one failure, one retry)", n)
	}
	if got, want := r.posts(), []post{queuedPost}; !reflect.DeepEqual(got, want) {
		t.Errorf("host received %+v, want %+v", got, want)
	}
	if got, want := r.recorded("b1"), []model.StatusPost{{State: "pending"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("build statuses = %+v, want %+v (no give-up)", got, want)
	}
	if got := r.log.lines("commit status will be retried", "build=b1", "read repository r1: nats: timeout"); len(got) != 1 {
		t.Errorf("retry logged %d times, want once:\n%s", len(got), r.log.String())
	}
}

func TestReporterRecordsAGiveUpForAMissingRepository(t *testing.T) {
	r := newReporterRig(t)
	b := newBuild()
	b.RepoID = "gone"
	r.createBuild(b)
	r.submitStatus("b1", forge.Pending)

	r.start(r.store)
	r.drained(queue.StatusStream)

	want := []model.StatusPost{{State: "pending", Error: "repository gone no longer exists"}}
	if got := r.recorded("b1"); !reflect.DeepEqual(got, want) {
		t.Errorf("build statuses = %+v, want %+v", got, want)
	}
	if got := r.host.Requests(); len(got) != 0 {
		t.Errorf("host received %d requests, want none", len(got))
	}
	if got := r.log.lines("giving up", "build=b1", "repository gone no longer exists"); len(got) != 1 {
		t.Errorf("give-up logged %d times, want once:\n%s", len(got), r.log.String())
	}
	if strings.Contains(r.log.String(), "will be retried") {
		t.Errorf("a missing repository was retried:\n%s", r.log.String())
	}
}
