package queue_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
)

// However builds of one ref interleave, the tag ends at the newest push's
// image and every older build that lost reports it did not move the tag.
func TestClaimTagNeverGoesBackwards(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var mu sync.Mutex
	registry := "" // the digest the tag points at
	var wg sync.WaitGroup
	moved := make([]bool, 12)
	for i := range moved {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := model.Build{ID: fmt.Sprintf("b%d", i), Seq: int64(i + 1)}
			ok, err := s.ClaimTag(ctx, "reg/acme/demo", "latest", b, fmt.Sprintf("sha256:%02d", i+1), func(d string) error {
				mu.Lock()
				registry = d
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			moved[i] = ok
		}()
	}
	wg.Wait()
	if registry != "sha256:12" {
		t.Fatalf("tag ends at %s, want the newest push's sha256:12", registry)
	}
	if !moved[11] {
		t.Errorf("the newest build reports it did not move the tag")
	}
	// A late build of an old push changes nothing.
	ok, err := s.ClaimTag(ctx, "reg/acme/demo", "latest", model.Build{ID: "old", Seq: 3}, "sha256:old", func(d string) error {
		registry = d
		return nil
	})
	if err != nil || ok || registry != "sha256:12" {
		t.Errorf("old build: moved=%v err=%v tag=%s", ok, err, registry)
	}
	// The same build again (a redelivered job) is harmless.
	ok, err = s.ClaimTag(ctx, "reg/acme/demo", "latest", model.Build{ID: "b11", Seq: 12}, "sha256:12", func(d string) error {
		registry = d
		return nil
	})
	if err != nil || !ok || registry != "sha256:12" {
		t.Errorf("repeat: moved=%v err=%v tag=%s", ok, err, registry)
	}
}

func TestSupersede(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	mk := func(id string, seq int64, status string) model.Build {
		b := model.Build{ID: id, RepoID: "r1", Ref: "refs/heads/main", Seq: seq, Status: status}
		if _, err := s.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	queued := mk("q1", 1, model.StatusQueued)
	if got, err := s.Supersede(ctx, queued, true); err != nil || len(got) != 0 {
		t.Fatalf("first push cancels nothing: %v %v", got, err)
	}
	running := mk("r2", 2, model.StatusRunning)
	sibling := mk("r2b", 2, model.StatusQueued) // another rule's build of the same push
	for _, b := range []model.Build{running, sibling} {
		if _, err := s.Supersede(ctx, b, true); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := s.GetBuild(ctx, "q1"); b.Status != model.StatusCancelled || b.SupersededBy != "r2" {
		t.Errorf("queued build of the older push: %s by %q", b.Status, b.SupersededBy)
	}
	if b, _ := s.GetBuild(ctx, "r2b"); b.Status != model.StatusQueued {
		t.Errorf("a build of the same push must not be cancelled: %s", b.Status)
	}
	newest := mk("n3", 3, model.StatusQueued)
	got, err := s.Supersede(ctx, newest, true)
	if err != nil || len(got) != 2 {
		t.Fatalf("newest push cancels both builds of push 2: %v %v", got, err)
	}
	if b, _ := s.GetBuild(ctx, "r2"); b.Status != model.StatusRunning || !b.CancelRequested || b.SupersededBy != "n3" {
		t.Errorf("running build must be asked to stop: %+v", b)
	}
	// A push that arrives after a newer one is cancelled at once.
	late := mk("late", 2, model.StatusQueued)
	if _, err := s.Supersede(ctx, late, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.GetBuild(ctx, "late"); b.Status != model.StatusCancelled || b.SupersededBy != "n3" {
		t.Errorf("late older push: %s by %q", b.Status, b.SupersededBy)
	}
}

func TestSlots(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.CreateBuild(ctx, model.Build{ID: id, RepoID: "r1", Status: model.StatusRunning}); err != nil {
			t.Fatal(err)
		}
	}
	take := func(id string) bool {
		ok, err := s.AcquireSlot(ctx, "r1", id, 2)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !take("a") || !take("b") {
		t.Fatal("two slots of two must be given")
	}
	if take("c") {
		t.Fatal("a third build must wait")
	}
	if !take("a") {
		t.Error("a holder asking again keeps its slot")
	}
	if err := s.ReleaseSlot(ctx, "r1", "a"); err != nil {
		t.Fatal(err)
	}
	if !take("c") {
		t.Error("a released slot must be given")
	}
	// A holder whose build ended without releasing (its worker died after
	// the final write) does not block anyone.
	if _, err := s.UpdateBuild(ctx, "b", func(b *model.Build) error { b.Status = model.StatusFailed; return nil }); err != nil {
		t.Fatal(err)
	}
	if !take("a") {
		t.Error("the slot of a finished build must be reclaimed")
	}
	if ok, _ := s.AcquireSlot(ctx, "r1", "x", 0); !ok {
		t.Error("limit 0 means no limit")
	}
}

// A redelivered webhook must be recognised for at least GitHub's 72-hour
// manual redelivery window, not JetStream's 2-minute default.
func TestDedupWindowOutlivesRedeliveryWindow(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, name := range []string{queue.JobsStream, queue.HooksStream, queue.StatusStream} {
		st, err := s.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Duplicates < 72*time.Hour {
			t.Errorf("%s de-duplicates for %s, want at least 72h", name, info.Config.Duplicates)
		}
	}
	jobs, err := s.BuildJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if jobs.AckWait() != queue.AckWait {
		t.Errorf("default ack wait %s", jobs.AckWait())
	}
}
