package worker_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/worker"
)

// credTagger records the credentials each tag was moved with.
type credTagger struct {
	mu   *sync.Mutex
	seen *[]string // "tag user:secret"
	cred builder.Credentials
}

func (c credTagger) Tag(_ context.Context, image, _, tag string) error {
	user, secret := "", ""
	if c.cred != nil {
		host, _, _ := strings.Cut(image, "/")
		user, secret = c.cred(host)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.seen = append(*c.seen, tag+" "+user+":"+secret)
	return nil
}

// nopLog discards a build's log.
type nopLog struct{ io.Writer }

func (nopLog) Close() error { return nil }

// startTaggingWorker runs a build loop whose builds only move tags (their
// image was pushed by an earlier attempt), with login as RegistryLogin.
func (e *env) startTaggingWorker(login func(context.Context, model.Build) (builder.Credentials, error), seen *[]string) {
	jobs, err := e.queue.BuildJobs(testCtx(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	var mu sync.Mutex
	w := &worker.Worker{
		Builds: e.store, Repos: e.store, Tags: e.store, Slots: e.store, Queue: e.queue, Jobs: jobs,
		Logger: e.logger(), RetryDelay: time.Millisecond, RegistryLogin: login,
		Logs:   func(string) io.WriteCloser { return nopLog{io.Discard} },
		Tagger: func(creds builder.Credentials) worker.Tagger { return credTagger{mu: &mu, seen: seen, cred: creds} },
	}
	e.run(func(ctx context.Context) { w.Run(ctx, 1) })
}

// The tags of a build move with the credentials RegistryLogin gave that
// build, and a failing login hands the job back rather than failing it.
func TestWorkerTagsWithTheBuildsOwnCredentials(t *testing.T) {
	e := newEnv(t)
	e.createRepo(model.Repo{ID: "r1", Provider: "github", FullName: "acme/demo", Image: image, CreatedAt: created})
	b := newBuild()
	b.Digest = "sha256:" + sha + sha[:24]
	e.submit(b)
	var seen []string
	var mu sync.Mutex
	var asked []string
	login := func(_ context.Context, b model.Build) (builder.Credentials, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, b.ID)
		if len(asked) == 1 {
			return nil, errors.New("key store locked")
		}
		return func(host string) (string, string) {
			if host == "registry.test" {
				return "slipway-build", "pass-of-" + b.ID
			}
			return "", ""
		}, nil
	}
	e.startTaggingWorker(login, &seen)
	e.drained(queue.JobsStream)

	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 {
		t.Errorf("RegistryLogin asked %d times (%v), want 2: the failed login's job handed back, then tagged", len(asked), asked)
	}
	if want := []string{"latest slipway-build:pass-of-b1"}; len(seen) != 1 || seen[0] != want[0] {
		t.Errorf("tags moved %q, want %q", seen, want)
	}
	if got := e.build("b1"); got.Status != model.StatusSucceeded {
		t.Errorf("build ended %s (%s), want succeeded", got.Status, got.Error)
	}
}
