package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/store"
)

// testKeys seal the repositories of every store the tests open; stores
// sharing one NATS must share their keys.
var testKeys = seal.Ephemeral()

// startServer runs a real embedded JetStream server on dir; it is shut down
// when the test ends (after every connection made through connect).
func startServer(t *testing.T, dir string) *natsd.Server {
	t.Helper()
	e, err := natsd.Start(natsd.Options{StoreDir: dir})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(e.Shutdown)
	if !e.Ready() {
		t.Fatal("embedded server not ready after StartEmbedded")
	}
	if got := e.ClientURL(); got != "" {
		t.Fatalf("ClientURL of an in-process-only server = %q, want empty", got)
	}
	return e
}

// openStore connects to e and opens a Store on the connection.
func openStore(t *testing.T, e *natsd.Server) *store.Store {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	s, err := store.Open(testCtx(t), nc, store.Options{Replicas: 1, Keys: testKeys})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// newStore is a Store on a fresh embedded server with its own store dir.
func newStore(t *testing.T) *store.Store {
	t.Helper()
	return openStore(t, startServer(t, t.TempDir()))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func newBuild(id, repoID string, age int) model.Build {
	return model.Build{
		ID:        id,
		RepoID:    repoID,
		Ref:       "refs/heads/main",
		Commit:    strings.Repeat("a", 40),
		Status:    model.StatusQueued,
		Image:     "registry.example/app",
		Tags:      []string{"latest"},
		CloneURL:  "https://git.example/app.git",
		Trigger:   "push",
		CreatedAt: base.Add(time.Duration(age) * time.Minute),
	}
}

func TestOpenIsIdempotent(t *testing.T) {
	e := startServer(t, t.TempDir())
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := testCtx(t)

	s1, err := store.Open(ctx, nc, store.Options{Replicas: 1, Keys: testKeys})
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	js := jetStream(t, e)
	before := streamNames(ctx, t, js)
	for _, want := range []string{store.LogsStream, "KV_slipway_repos", "KV_slipway_builds", "KV_slipway_refs"} {
		if !strings.Contains(","+before+",", ","+want+",") {
			t.Fatalf("streams after Open = %s, missing %s", before, want)
		}
	}
	if _, err := s1.CreateBuild(ctx, newBuild("b1", "r1", 0)); err != nil {
		t.Fatal(err)
	}
	s2, err := store.Open(ctx, nc, store.Options{Replicas: 1, Keys: testKeys})
	if err != nil {
		t.Fatalf("second Open on the same connection: %v", err)
	}
	if err := s2.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if after := streamNames(ctx, t, js); after != before {
		t.Fatalf("streams after the second Open = %s, want the same as after the first: %s", after, before)
	}
	// The second Open found the first one's assets rather than replacing them.
	b, err := s2.GetBuild(ctx, "b1")
	if err != nil {
		t.Fatalf("build written before the second Open: %v", err)
	}
	if b.RepoID != "r1" {
		t.Fatalf("build after reopen = %+v", b)
	}
}

// jetStream is a client of e's JetStream of its own, for looking at what a
// Store made.
func jetStream(t *testing.T, e *natsd.Server) jetstream.JetStream {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

func streamNames(ctx context.Context, t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	var names []string
	lister := js.StreamNames(ctx)
	for n := range lister.Name() {
		names = append(names, n)
	}
	if err := lister.Err(); err != nil {
		t.Fatalf("list streams: %v", err)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func TestRepos(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	repos := []model.Repo{
		{ID: "r-widget", Provider: "github", FullName: "Acme/Widget", Image: "reg/widget", CreatedAt: base.Add(2 * time.Minute)},
		{ID: "r-gadget", Provider: "github", FullName: "acme/gadget", Image: "reg/gadget", CreatedAt: base},
		// Same full name on another provider is a different repository.
		{ID: "r-widget-gl", Provider: "gitlab", FullName: "acme/widget", Image: "reg/widget-gl", CreatedAt: base.Add(time.Minute)},
	}
	for _, r := range repos {
		if err := s.CreateRepo(ctx, r); err != nil {
			t.Fatalf("CreateRepo %s: %v", r.ID, err)
		}
	}

	got, err := s.GetRepo(ctx, "r-widget")
	if err != nil {
		t.Fatalf("GetRepo: %v", err)
	}
	if got.FullName != "Acme/Widget" || got.Image != "reg/widget" || !got.CreatedAt.Equal(repos[0].CreatedAt) {
		t.Fatalf("GetRepo = %+v", got)
	}
	if _, err := s.GetRepo(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRepo of a missing id: err = %v, want ErrNotFound", err)
	}

	for _, name := range []string{"Acme/Widget", "acme/widget", "ACME/WIDGET"} {
		r, err := s.FindRepo(ctx, "github", name)
		if err != nil {
			t.Fatalf("FindRepo(github, %q): %v", name, err)
		}
		if r.ID != "r-widget" {
			t.Fatalf("FindRepo(github, %q) = %s, want r-widget", name, r.ID)
		}
	}
	if r, err := s.FindRepo(ctx, "gitlab", "Acme/Widget"); err != nil || r.ID != "r-widget-gl" {
		t.Fatalf("FindRepo(gitlab) = %s, %v; want r-widget-gl", r.ID, err)
	}
	if _, err := s.FindRepo(ctx, "github", "acme/other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindRepo of an unknown name: err = %v, want ErrNotFound", err)
	}

	// A second repository with the same provider and full name (any case)
	// is refused and leaves the first intact.
	dup := model.Repo{ID: "r-dup", Provider: "github", FullName: "ACME/widget", CreatedAt: base.Add(time.Hour)}
	err = s.CreateRepo(ctx, dup)
	if err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("CreateRepo of a duplicate full name: err = %v, want 'already registered'", err)
	}
	if _, err := s.GetRepo(ctx, "r-dup"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused duplicate was stored anyway: err = %v", err)
	}
	if r, _ := s.FindRepo(ctx, "github", "acme/widget"); r.ID != "r-widget" {
		t.Fatalf("duplicate replaced the index: FindRepo = %s", r.ID)
	}

	list, err := s.ListRepos(ctx)
	if err != nil {
		t.Fatalf("ListRepos: %v", err)
	}
	if ids := repoIDs(list); ids != "r-gadget,r-widget-gl,r-widget" {
		t.Fatalf("ListRepos = %s, want oldest first r-gadget,r-widget-gl,r-widget", ids)
	}

	if err := s.DeleteRepo(ctx, "r-widget"); err != nil {
		t.Fatalf("DeleteRepo: %v", err)
	}
	if _, err := s.GetRepo(ctx, "r-widget"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRepo after delete: err = %v, want ErrNotFound", err)
	}
	if _, err := s.FindRepo(ctx, "github", "acme/widget"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindRepo after delete: err = %v, want ErrNotFound", err)
	}
	list, err = s.ListRepos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids := repoIDs(list); ids != "r-gadget,r-widget-gl" {
		t.Fatalf("ListRepos after delete = %s", ids)
	}
	if err := s.DeleteRepo(ctx, "r-widget"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteRepo: err = %v, want ErrNotFound", err)
	}
	// The name is free again once the repository is gone.
	if err := s.CreateRepo(ctx, dup); err != nil {
		t.Fatalf("CreateRepo after the name was freed: %v", err)
	}
	if r, err := s.FindRepo(ctx, "github", "Acme/Widget"); err != nil || r.ID != "r-dup" {
		t.Fatalf("FindRepo after re-create = %s, %v; want r-dup", r.ID, err)
	}
}

func repoIDs(rs []model.Repo) string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return strings.Join(ids, ",")
}

func buildIDs(bs []model.Build) string {
	var ids []string
	for _, b := range bs {
		ids = append(ids, b.ID)
	}
	return strings.Join(ids, ",")
}

func TestCreateBuildReportsCreatedOrExisting(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	b := newBuild("b1", "r1", 0)
	created, err := s.CreateBuild(ctx, b)
	if err != nil || !created {
		t.Fatalf("first CreateBuild = %v, %v; want true, nil", created, err)
	}
	other := b
	other.Status = model.StatusFailed
	created, err = s.CreateBuild(ctx, other)
	if err != nil || created {
		t.Fatalf("second CreateBuild = %v, %v; want false, nil", created, err)
	}
	got, err := s.GetBuild(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != model.StatusQueued {
		t.Fatalf("existing build was overwritten: status %q", got.Status)
	}
	if _, err := s.GetBuild(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetBuild of a missing id: err = %v, want ErrNotFound", err)
	}
}

func TestUpdateBuildConcurrentWritersLoseNothing(t *testing.T) {
	e := startServer(t, t.TempDir())
	// Writers on separate connections, like a worker and a hook deliverer
	// in different processes.
	checkConcurrentUpdates(t, []*store.Store{openStore(t, e), openStore(t, e), openStore(t, e), openStore(t, e)})
}

// checkConcurrentUpdates has 20 goroutines append to one build at once
// through stores and checks that every append survived.
func checkConcurrentUpdates(t *testing.T, stores []*store.Store) {
	t.Helper()
	ctx := testCtx(t)
	if _, err := stores[0].CreateBuild(ctx, newBuild("b1", "r1", 0)); err != nil {
		t.Fatal(err)
	}

	const writers = 20
	var calls atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := stores[i%len(stores)].UpdateBuild(ctx, "b1", func(b *model.Build) error {
				calls.Add(1)
				b.Deliveries = append(b.Deliveries, model.Delivery{Hook: i, URL: fmt.Sprintf("https://hook/%d", i)})
				b.Attempts++
				return nil
			})
			if err != nil {
				errs <- fmt.Errorf("writer %d: %w", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	b, err := stores[0].GetBuild(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if b.Attempts != writers || len(b.Deliveries) != writers {
		t.Fatalf("after %d concurrent updates: attempts=%d deliveries=%d", writers, b.Attempts, len(b.Deliveries))
	}
	seen := map[int]bool{}
	for _, d := range b.Deliveries {
		if seen[d.Hook] {
			t.Fatalf("delivery %d recorded twice", d.Hook)
		}
		seen[d.Hook] = true
	}
	t.Logf("%d writers needed %d change calls (%d retries after conflicts)", writers, calls.Load(), calls.Load()-writers)
}

func TestUpdateBuildErrors(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	_, err := s.UpdateBuild(ctx, "missing", func(*model.Build) error { return nil })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateBuild of a missing build: err = %v, want ErrNotFound", err)
	}

	if _, err := s.CreateBuild(ctx, newBuild("b1", "r1", 0)); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err = s.UpdateBuild(ctx, "b1", func(b *model.Build) error {
		b.Status = model.StatusFailed
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateBuild with a failing change: err = %v, want boom", err)
	}
	got, _ := s.GetBuild(ctx, "b1")
	if got.Status != model.StatusQueued {
		t.Fatalf("a failed change was written: status %q", got.Status)
	}

	upd, err := s.UpdateBuild(ctx, "b1", func(b *model.Build) error {
		b.Status = model.StatusRunning
		return nil
	})
	if err != nil || upd.Status != model.StatusRunning {
		t.Fatalf("UpdateBuild = %+v, %v", upd, err)
	}
	if got, _ := s.GetBuild(ctx, "b1"); got.Status != model.StatusRunning {
		t.Fatalf("stored status after update = %q", got.Status)
	}
}

func TestListBuildsNewestFirstAndByRepo(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	// Created out of order on purpose: the listing must sort by CreatedAt.
	for _, b := range []model.Build{
		newBuild("a2", "repoA", 2),
		newBuild("b1", "repoB", 1),
		newBuild("a0", "repoA", 0),
		newBuild("a4", "repoA", 4),
		newBuild("b3", "repoB", 3),
	} {
		if _, err := s.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListBuilds(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if ids := buildIDs(all); ids != "a4,b3,a2,b1,a0" {
		t.Fatalf("ListBuilds(all) = %s, want a4,b3,a2,b1,a0", ids)
	}
	a, err := s.ListBuilds(ctx, "repoA")
	if err != nil {
		t.Fatal(err)
	}
	if ids := buildIDs(a); ids != "a4,a2,a0" {
		t.Fatalf("ListBuilds(repoA) = %s, want a4,a2,a0", ids)
	}
	none, err := s.ListBuilds(ctx, "repoC")
	if err != nil || len(none) != 0 {
		t.Fatalf("ListBuilds(repoC) = %s, %v; want nothing", buildIDs(none), err)
	}
}

func TestLogWriterChunksReadBackInOrder(t *testing.T) {
	e := startServer(t, t.TempDir())
	s := openStore(t, e)
	ctx := testCtx(t)

	w := s.NewLogWriter("b1", 5*time.Millisecond)
	other := s.NewLogWriter("b2", time.Hour) // flushed only by Close
	var want bytes.Buffer
	for i := range 30 {
		line := fmt.Sprintf("step %02d: %s\n", i, strings.Repeat("x", i))
		want.WriteString(line)
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			time.Sleep(20 * time.Millisecond) // let the ticker flush a chunk
		}
	}
	// One write past the 64 KiB threshold flushes without the ticker.
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000)
	want.Write(big)
	if _, err := w.Write(big); err != nil {
		t.Fatal(err)
	}
	want.WriteString("done\n")
	if _, err := w.Write([]byte("done\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Write([]byte("other build\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}

	got, err := readLog(ctx, s, "b1")
	if err != nil {
		t.Fatalf("CopyLog: %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("CopyLog wrote %d bytes, want %d in order", len(got), want.Len())
	}
	st, err := jetStream(t, e).Stream(ctx, store.LogsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs < 3 {
		t.Fatalf("log stored as %d messages; want it in several chunks", info.State.Msgs)
	}

	got, err = readLog(ctx, s, "b2")
	if err != nil || string(got) != "other build\n" {
		t.Fatalf("CopyLog(b2) = %q, %v; want Close to flush it", got, err)
	}
}

// readLog is a build's whole log, through the streaming CopyLog.
func readLog(ctx context.Context, s *store.Store, id string) ([]byte, error) {
	var buf bytes.Buffer
	n, err := s.CopyLog(ctx, id, &buf)
	if err == nil && n != int64(buf.Len()) {
		err = fmt.Errorf("CopyLog reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes(), err
}

// A megabyte written at once, flushed only by Close, is stored in chunks
// of at most 64 KiB: one message of it all would pass NATS's max_payload
// (1 MiB by default) and never be stored.
func TestLogWriterStoresChunksOfAtMost64KiB(t *testing.T) {
	e := startServer(t, t.TempDir())
	s := openStore(t, e)
	ctx := testCtx(t)
	w := s.NewLogWriter("b1", time.Hour)
	want := bytes.Repeat([]byte("0123456789abcde\n"), 1<<16) // 1 MiB
	if _, err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := readLog(ctx, s, "b1"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("log = %d bytes, %v; want the 1048576 written", len(got), err)
	}
	if n, err := s.LogSize(ctx, "b1"); n != 1048576 || err != nil {
		t.Errorf("LogSize = %d, %v; want 1048576", n, err)
	}
	if n, err := s.LogSize(ctx, "never-logged"); n != 0 || err != nil {
		t.Errorf("LogSize of no log = %d, %v; want 0", n, err)
	}
	st, err := jetStream(t, e).Stream(ctx, store.LogsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 16 {
		t.Errorf("1 MiB stored as %d messages, want 16 of 64 KiB", info.State.Msgs)
	}
}

// While the store takes nothing, a writer holds at most 4 MiB; what comes
// after is dropped, and the log says how much once the store answers.
func TestLogWriterBoundsWhatItHoldsWhileTheStoreIsDown(t *testing.T) {
	e := startServer(t, t.TempDir())
	s := openStore(t, e)
	ctx := testCtx(t)
	js := jetStream(t, e)
	if err := js.DeleteStream(ctx, store.LogsStream); err != nil {
		t.Fatal(err)
	}
	w := s.NewLogWriter("b1", time.Hour)
	line := bytes.Repeat([]byte("x"), 1<<20-1)
	line = append(line, '\n')
	for range 5 { // 5 MiB, each write failing to flush
		if n, err := w.Write(line); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v; want the build's writes to go on", n, err)
		}
	}
	openStore(t, e) // creates the stream again
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := readLog(ctx, s, "b1")
	if err != nil {
		t.Fatal(err)
	}
	want := string(bytes.Repeat(line, 4)) + "\n--- 1048576 bytes of log lost: the log store did not take them ---\n"
	if string(got) != want {
		t.Errorf("log is %d bytes ending %q; want %d ending %q", len(got), got[max(len(got)-80, 0):], len(want), want[len(want)-80:])
	}
}

func TestCopyLogOfBuildWithoutLog(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	if err := s.AppendLog(ctx, "b1", []byte("something\n")); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	got, err := readLog(ctx, s, "never-logged")
	if err != nil {
		t.Fatalf("CopyLog: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("CopyLog of a build with no log = %q, want empty", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("CopyLog of an empty log took %v", d)
	}
}

func TestRecordsAndLogsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)

	e1, err := natsd.Start(natsd.Options{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc1, err := e1.Connect()
	if err != nil {
		e1.Shutdown()
		t.Fatal(err)
	}
	s1, err := store.Open(ctx, nc1, store.Options{Replicas: 1, Keys: testKeys})
	if err != nil {
		nc1.Close()
		e1.Shutdown()
		t.Fatal(err)
	}
	_, err1 := s1.CreateBuild(ctx, newBuild("b1", "r1", 0))
	err2 := s1.AppendLog(ctx, "b1", []byte("queued\n"))
	nc1.Close()
	e1.Shutdown()
	if err1 != nil || err2 != nil {
		t.Fatalf("before restart: %v, %v", err1, err2)
	}

	s2 := openStore(t, startServer(t, dir))
	got, err := s2.GetBuild(ctx, "b1")
	if err != nil {
		t.Fatalf("build record after restart: %v", err)
	}
	if got.Status != model.StatusQueued || got.Commit != strings.Repeat("a", 40) {
		t.Fatalf("build record after restart = %+v", got)
	}
	if log, err := readLog(ctx, s2, "b1"); err != nil || string(log) != "queued\n" {
		t.Fatalf("log after restart = %q, %v", log, err)
	}
}

// TestClaimImages: repositories an older Slipway stored claimed no image;
// ClaimImages claims theirs, after which a second repository with the same
// image is refused.
func TestClaimImages(t *testing.T) {
	dir := t.TempDir()
	e := startServer(t, dir)
	s := openWith(t, e, seal.Ephemeral())
	ctx := testCtx(t)
	old := model.Repo{ID: "r-old", Provider: "github", FullName: "acme/old", Image: "127.0.0.1:5000/acme/old", CreatedAt: base}
	putRaw(t, e, "id.r-old", old) // as an older Slipway stored it: no image claim
	if _, err := s.RepoByImage(ctx, old.Image); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("before ClaimImages RepoByImage: %v, want ErrNotFound", err)
	}
	repos, err := s.ListRepos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.ClaimImages(ctx, repos); err != nil || n != 1 {
		t.Fatalf("ClaimImages = %d, %v; want 1", n, err)
	}
	if n, err := s.ClaimImages(ctx, repos); err != nil || n != 0 {
		t.Fatalf("ClaimImages again = %d, %v; want 0", n, err)
	}
	twin := model.Repo{ID: "r-twin", Provider: "github", FullName: "acme/twin", Image: old.Image, CreatedAt: base}
	err = s.CreateRepo(ctx, twin)
	if err == nil || err.Error() != "image 127.0.0.1:5000/acme/old is already claimed by another repository" {
		t.Errorf("a second claim: %v", err)
	}
	if r, err := s.RepoByImage(ctx, old.Image); err != nil || r.ID != "r-old" {
		t.Errorf("RepoByImage = %s, %v; want r-old", r.ID, err)
	}
}
