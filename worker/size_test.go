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

// sizedImages answers each digest's image with the layer sizes it lists,
// or fails when err is set.
type sizedImages struct {
	layers map[string][]int64
	err    error
}

func (s sizedImages) Inspect(_ context.Context, _, digest, _ string) (model.Image, error) {
	if s.err != nil {
		return model.Image{}, s.err
	}
	img := model.Image{Manifest: digest, Platform: "linux/amd64", ConfigSize: 500}
	for _, n := range s.layers[digest] {
		img.Layers = append(img.Layers, model.Layer{Size: n})
	}
	return img, nil
}

// logBuf is a build log kept in memory.
type logBuf struct {
	mu *sync.Mutex
	sb *strings.Builder
}

func (l logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.sb.Write(p) }
func (l logBuf) Close() error                { return nil }

// sizeWorker is a build loop on e whose builds' images an earlier attempt
// pushed, reading image sizes from images and keeping each build's log.
type sizeWorker struct {
	e    *env
	mu   sync.Mutex
	logs map[string]*strings.Builder
}

func startSizeWorker(t *testing.T, e *env, images worker.ImageReader) *sizeWorker {
	t.Helper()
	jobs, err := e.queue.BuildJobs(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	sw := &sizeWorker{e: e, logs: map[string]*strings.Builder{}}
	var seen []string
	w := &worker.Worker{
		Builds: e.store, Repos: e.store, Tags: e.store, Slots: e.store, Queue: e.queue, Jobs: jobs,
		Logger: e.logger(), RetryDelay: time.Millisecond,
		Logs: func(id string) io.WriteCloser {
			sw.mu.Lock()
			defer sw.mu.Unlock()
			if sw.logs[id] == nil {
				sw.logs[id] = &strings.Builder{}
			}
			return logBuf{&sw.mu, sw.logs[id]}
		},
		Tagger: func(creds builder.Credentials) worker.Tagger { return credTagger{mu: &sw.mu, seen: &seen, cred: creds} },
		Images: func(builder.Credentials) worker.ImageReader { return images },
	}
	e.run(func(ctx context.Context) { w.Run(ctx, 1) })
	return sw
}

// run builds b to its end and answers the stored build and its log.
func (sw *sizeWorker) run(b model.Build) (model.Build, string) {
	sw.e.submit(b)
	sw.e.waitFor(b.ID+" finished", func() bool { return model.Terminal(sw.e.build(b.ID).Status) })
	sw.e.drained(queue.JobsStream)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.e.build(b.ID), sw.logs[b.ID].String()
}

// earlierPushed is build id of the main rule warning above limit, made at
// minute n, its image pushed by an earlier attempt.
func earlierPushed(id string, n int, limit string) model.Build {
	b := newBuild()
	b.ID, b.CreatedAt, b.Seq = id, created.Add(time.Duration(n)*time.Minute), int64(n)
	b.Digest = "sha256:" + strings.Repeat(id[:1], 64)
	b.Rule = model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest"}, SizeWarnIncrease: limit}
	return b
}

// A build whose image grew past its rule's size_warn_increase succeeds
// with a warning, on the record and in its log; one that grew less has
// its size recorded and no warning.
func TestWorkerWarnsWhenTheImageGrewPastTheRule(t *testing.T) {
	e := newEnv(t)
	e.createRepo(model.Repo{ID: "r1", Provider: "github", FullName: "acme/demo", Image: image, CreatedAt: created})
	prev := earlierPushed("a1", 1, "20%")
	prev.Status, prev.ImageSize = model.StatusSucceeded, 10_000_000
	e.createBuild(prev)
	other := earlierPushed("c1", 2, "20%")
	other.Status, other.ImageSize, other.Rule.Dockerfile = model.StatusSucceeded, 12_400_000, "other.Dockerfile"
	e.createBuild(other)

	b1, d1 := earlierPushed("b1", 3, "20%"), earlierPushed("d1", 4, "20%")
	sw := startSizeWorker(t, e, sizedImages{layers: map[string][]int64{b1.Digest: {9_000_000, 3_499_500}, d1.Digest: {13_000_000}}})
	got, log := sw.run(b1)
	warning := "image grew by 25% (from 10.0 MB to 12.5 MB; warn above 20%)"
	if got.Status != model.StatusSucceeded || got.ImageSize != 12_500_000 || len(got.Warnings) != 1 || got.Warnings[0] != warning {
		t.Errorf("build ended %s (%s), image_size %d, warnings %q; want succeeded, 12500000, [%q]", got.Status, got.Error, got.ImageSize, got.Warnings, warning)
	}
	for _, line := range []string{
		"==> image size 12.5 MB (linux/amd64, 12500000 bytes); previous build a1: 10.0 MB\n",
		"==> warning: " + warning + "\n",
	} {
		if !strings.Contains(log, line) {
			t.Errorf("log lacks %q:\n%s", line, log)
		}
	}

	got, log = sw.run(d1)
	if got.Status != model.StatusSucceeded || got.ImageSize != 13_000_500 || len(got.Warnings) != 0 {
		t.Errorf("build grown 4%%: %s, image_size %d, warnings %q; want succeeded, 13000500, none", got.Status, got.ImageSize, got.Warnings)
	}
	if !strings.Contains(log, "previous build b1: 12.5 MB") || strings.Contains(log, "warning") {
		t.Errorf("log of a build grown 4%% past b1:\n%s", log)
	}
}

// An image whose size cannot be read costs the record its size, never the
// build.
func TestWorkerSucceedsWithoutTheImageSize(t *testing.T) {
	e := newEnv(t)
	e.createRepo(model.Repo{ID: "r1", Provider: "github", FullName: "acme/demo", Image: image, CreatedAt: created})
	sw := startSizeWorker(t, e, sizedImages{err: errors.New("registry: inspect: connection refused")})
	got, log := sw.run(earlierPushed("b1", 1, "5%"))
	if got.Status != model.StatusSucceeded || got.ImageSize != 0 || len(got.Warnings) != 0 {
		t.Errorf("build ended %s (%s), image_size %d, warnings %q; want succeeded without size", got.Status, got.Error, got.ImageSize, got.Warnings)
	}
	if want := "==> image size not recorded: registry: inspect: connection refused\n"; !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}
