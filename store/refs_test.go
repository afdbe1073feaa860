package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/store"
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

// Supersede answers which builds a push makes out of date and by which
// build; it cancels none of them itself.
func TestSupersede(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	push := func(id string, seq int64) store.Superseded {
		t.Helper()
		b := model.Build{ID: id, RepoID: "r1", Ref: "refs/heads/main", Commit: fmt.Sprintf("%040d", seq), Seq: seq, Status: model.StatusQueued}
		if _, err := s.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
		got, err := s.Supersede(ctx, b)
		if err != nil {
			t.Fatalf("Supersede(%s): %v", id, err)
		}
		return got
	}
	steps := []struct {
		id   string
		seq  int64
		want store.Superseded
	}{
		{"q1", 1, store.Superseded{By: "q1"}},
		{"r2", 2, store.Superseded{Builds: []string{"q1"}, By: "r2"}},
		// Another rule's build of the same push supersedes nothing.
		{"r2b", 2, store.Superseded{By: "r2b"}},
		{"n3", 3, store.Superseded{Builds: []string{"r2", "r2b"}, By: "n3"}},
		// A push that arrives after a newer one is itself out of date.
		{"late", 2, store.Superseded{Builds: []string{"late"}, By: "n3"}},
	}
	for _, st := range steps {
		if got := push(st.id, st.seq); !reflect.DeepEqual(got, st.want) {
			t.Errorf("Supersede(%s, seq %d) = %+v, want %+v", st.id, st.seq, got, st.want)
		}
	}
	for _, id := range []string{"q1", "r2", "r2b", "late"} {
		if b, _ := s.GetBuild(ctx, id); b.Status != model.StatusQueued {
			t.Errorf("build %s is %s after Supersede; want it left queued", id, b.Status)
		}
	}
	if last, err := s.LastCommit(ctx, "r1", "refs/heads/main"); err != nil || last != fmt.Sprintf("%040d", 3) {
		t.Errorf("LastCommit = %q, %v; want the newest push's commit", last, err)
	}
}

func TestCancel(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, b := range []model.Build{
		{ID: "queued", RepoID: "r1", Status: model.StatusQueued},
		{ID: "running", RepoID: "r1", Status: model.StatusRunning},
		{ID: "done", RepoID: "r1", Status: model.StatusSucceeded},
	} {
		if _, err := s.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	b, active, err := s.Cancel(ctx, "queued", "superseded by build n", "n")
	if err != nil || !active || b.Status != model.StatusCancelled || b.FinishedAt == nil || b.Reason != "superseded by build n" || b.SupersededBy != "n" {
		t.Errorf("Cancel(queued) = %+v, %v, %v; want it cancelled now, active", b, active, err)
	}
	b, active, err = s.Cancel(ctx, "running", "cancelled through the API", "")
	if err != nil || !active || b.Status != model.StatusRunning || !b.CancelRequested {
		t.Errorf("Cancel(running) = %+v, %v, %v; want still running with a cancel request, active", b, active, err)
	}
	b, active, err = s.Cancel(ctx, "done", "late", "")
	if err != nil || active || b.Status != model.StatusSucceeded || b.Reason != "" {
		t.Errorf("Cancel(done) = %+v, %v, %v; want it untouched, not active", b, active, err)
	}
	if _, _, err := s.Cancel(ctx, "missing", "x", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Cancel(missing): err = %v, want ErrNotFound", err)
	}
}

// MarkSeen records a tip only for a ref Slipway has seen no push of.
func TestMarkSeenAndBaselined(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const ref, seen, pushed = "refs/heads/main", "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	if last, err := s.LastCommit(ctx, "r1", ref); err != nil || last != "" {
		t.Fatalf("LastCommit of a new ref = %q, %v; want empty", last, err)
	}
	if err := s.MarkSeen(ctx, "r1", ref, seen, 1); err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastCommit(ctx, "r1", ref); last != seen {
		t.Errorf("LastCommit after MarkSeen = %q, want %s", last, seen)
	}
	if _, err := s.Supersede(ctx, model.Build{ID: "b2", RepoID: "r1", Ref: ref, Commit: pushed, Seq: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSeen(ctx, "r1", ref, seen, 3); err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastCommit(ctx, "r1", ref); last != pushed {
		t.Errorf("LastCommit after a push and a late MarkSeen = %q, want the push's %s", last, pushed)
	}
	if ok, err := s.Baselined(ctx, "r1"); err != nil || ok {
		t.Fatalf("Baselined before SetBaselined = %v, %v", ok, err)
	}
	if err := s.SetBaselined(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Baselined(ctx, "r1"); err != nil || !ok {
		t.Errorf("Baselined after SetBaselined = %v, %v", ok, err)
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
