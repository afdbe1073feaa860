package store_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/store"
)

// pageIDs queries s and answers the ids listed and whether more follow.
func pageIDs(t *testing.T, s *store.Store, q model.BuildQuery) (string, bool) {
	t.Helper()
	page, err := s.QueryBuilds(testCtx(t), q)
	if err != nil {
		t.Fatalf("QueryBuilds(%+v): %v", q, err)
	}
	return buildIDs(page.Builds), page.More
}

func TestQueryBuildsPagesNewestFirst(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	for i, id := range []string{"a0", "a1", "a2", "a3", "a4"} {
		b := newBuild(id, "repoA", i)
		if i%2 == 1 {
			b.Status = model.StatusFailed
		}
		if _, err := s.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateBuild(ctx, newBuild("b9", "repoB", 9)); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		q        model.BuildQuery
		want     string
		wantMore bool
	}{
		{"first page", model.BuildQuery{RepoID: "repoA", Limit: 2}, "a4,a3", true},
		{"second page", model.BuildQuery{RepoID: "repoA", Limit: 2, Before: "a3"}, "a2,a1", true},
		{"last page", model.BuildQuery{RepoID: "repoA", Limit: 2, Before: "a1"}, "a0", false},
		{"past the end", model.BuildQuery{RepoID: "repoA", Limit: 2, Before: "a0"}, "", false},
		{"exactly the rest", model.BuildQuery{RepoID: "repoA", Limit: 3, Before: "a3"}, "a2,a1,a0", false},
		{"no limit", model.BuildQuery{RepoID: "repoA"}, "a4,a3,a2,a1,a0", false},
		{"status", model.BuildQuery{RepoID: "repoA", Status: model.StatusFailed}, "a3,a1", false},
		{"status, a page", model.BuildQuery{RepoID: "repoA", Status: model.StatusQueued, Limit: 2}, "a4,a2", true},
		{"cursor of another repository", model.BuildQuery{RepoID: "repoA", Before: "b9", Limit: 1}, "a4", true},
		{"every repository", model.BuildQuery{Limit: 3}, "b9,a4,a3", true},
		{"every repository, next page", model.BuildQuery{Limit: 3, Before: "a3"}, "a2,a1,a0", false},
		{"keep", model.BuildQuery{RepoID: "repoA", Limit: 2, Keep: func(b model.Build) (bool, error) { return b.ID != "a4", nil }}, "a3,a2", true},
		{"unknown repository", model.BuildQuery{RepoID: "repoC", Limit: 2}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more := pageIDs(t, s, tt.q)
			if got != tt.want || more != tt.wantMore {
				t.Errorf("got %q more=%v, want %q more=%v", got, more, tt.want, tt.wantMore)
			}
		})
	}
	if _, err := s.QueryBuilds(ctx, model.BuildQuery{RepoID: "repoA", Before: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("before an unknown build: err = %v, want ErrNotFound", err)
	}
}

// TestBuildsOfAnOlderSlipwayAreListed: builds written before the index
// existed (straight into the builds bucket, as an older Slipway did) are
// listed once the store is opened again, and opening it a third time adds
// nothing twice.
func TestBuildsOfAnOlderSlipwayAreListed(t *testing.T) {
	e := startServer(t, t.TempDir())
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := testCtx(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	old, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "slipway_builds", Storage: jetstream.FileStorage, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"o0", "o1", "o2"} {
		raw, err := json.Marshal(newBuild(id, "repoA", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := old.Create(ctx, id, raw); err != nil {
			t.Fatal(err)
		}
	}

	s := openStore(t, e)
	if _, err := s.CreateBuild(ctx, newBuild("n3", "repoA", 3)); err != nil {
		t.Fatal(err)
	}
	if got, _ := pageIDs(t, s, model.BuildQuery{RepoID: "repoA"}); got != "n3,o2,o1,o0" {
		t.Fatalf("builds after the first open = %q, want n3,o2,o1,o0", got)
	}
	if got, more := pageIDs(t, s, model.BuildQuery{RepoID: "repoA", Limit: 2, Before: "o2"}); got != "o1,o0" || more {
		t.Errorf("page before o2 = %q more=%v, want o1,o0 and no more", got, more)
	}
	again := openStore(t, e)
	if got, _ := pageIDs(t, again, model.BuildQuery{RepoID: "repoA"}); got != "n3,o2,o1,o0" {
		t.Errorf("builds after opening again = %q, want n3,o2,o1,o0", got)
	}
}

// TestCreateBuildTwiceListsItOnce: storing the same build again (a
// replayed webhook) neither fails nor lists it twice, even with a later
// creation time.
func TestCreateBuildTwiceListsItOnce(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	if created, err := s.CreateBuild(ctx, newBuild("b1", "repoA", 0)); err != nil || !created {
		t.Fatalf("first CreateBuild: %v, %v", created, err)
	}
	if created, err := s.CreateBuild(ctx, newBuild("b1", "repoA", 5)); err != nil || created {
		t.Fatalf("second CreateBuild: created=%v, %v; want false, nil", created, err)
	}
	if got, _ := pageIDs(t, s, model.BuildQuery{RepoID: "repoA"}); got != "b1" {
		t.Errorf("builds = %q, want b1 once", got)
	}
}

// TestListSkipsEntriesThatAreNotTheirBuilds: an index entry whose record
// was never written (its writer died) and a second entry of a stored build
// under another time (a replay whose cleanup failed) are not listed; the
// build is listed once, at its own time.
func TestListSkipsEntriesThatAreNotTheirBuilds(t *testing.T) {
	e := startServer(t, t.TempDir())
	s := openStore(t, e)
	ctx := testCtx(t)
	for i, id := range []string{"b1", "b2"} {
		if _, err := s.CreateBuild(ctx, newBuild(id, "repoA", i)); err != nil {
			t.Fatal(err)
		}
	}
	index, err := jetStream(t, e).KeyValue(ctx, "slipway_build_index")
	if err != nil {
		t.Fatal(err)
	}
	// repo.<hex of "repoA">.<newest possible time>.<id>: both sort first.
	for _, key := range []string{"repo.7265706f41.0000000000000000.b1", "repo.7265706f41.0000000000000001.gone"} {
		if _, err := index.Create(ctx, key, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if got, more := pageIDs(t, s, model.BuildQuery{RepoID: "repoA"}); got != "b2,b1" || more {
		t.Errorf("builds = %q more=%v, want b2,b1 and no more", got, more)
	}
	if got, more := pageIDs(t, s, model.BuildQuery{RepoID: "repoA", Limit: 1}); got != "b2" || !more {
		t.Errorf("first page of one = %q more=%v, want b2 and more", got, more)
	}
}
