package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
)

const (
	commitA = "2222222222222222222222222222222222222222"
	commitB = "3333333333333333333333333333333333333333"
	commitC = "4444444444444444444444444444444444444444"
)

func (h *harness) trigger(repoID, ref, commit string) model.Build {
	h.t.Helper()
	b, err := h.client.Trigger(testCtx(h.t), repoID, ref, commit)
	if err != nil {
		h.t.Fatalf("Trigger(%s, %q, %q): %v", repoID, ref, commit, err)
	}
	return b
}

func (h *harness) getBuild(id string) model.Build {
	h.t.Helper()
	b, err := h.client.Build(testCtx(h.t), id)
	if err != nil {
		h.t.Fatalf("client.Build(%s): %v", id, err)
	}
	return b
}

func (h *harness) buildIDs(repoID string) []string {
	h.t.Helper()
	bs, err := h.client.Builds(testCtx(h.t), repoID)
	if err != nil {
		h.t.Fatalf("client.Builds(%q): %v", repoID, err)
	}
	var ids []string
	for _, b := range bs {
		ids = append(ids, b.ID)
	}
	return ids
}

// markFinished ends a build as a worker would.
func (h *harness) markFinished(id, status string) model.Build {
	h.t.Helper()
	b, err := h.store.UpdateBuild(testCtx(h.t), id, func(b *model.Build) error {
		now := h.now()
		b.Status, b.FinishedAt = status, &now
		if status == model.StatusSucceeded {
			b.Digest = "sha256:" + strings.Repeat("d", 64)
		}
		return nil
	})
	if err != nil {
		h.t.Fatalf("store.UpdateBuild(%s): %v", id, err)
	}
	return b
}

func TestTriggerRef(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))

	b := h.trigger(repo.ID, "refs/heads/main", "")

	if got, want := h.resolveCalls(), []resolveCall{{repo.CloneURL, "refs/heads/main"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve calls = %v, want %v", got, want)
	}
	want := model.Build{
		ID: b.ID, RepoID: repo.ID, Org: "acme", Ref: "refs/heads/main", Commit: tipSHA, Status: model.StatusQueued,
		Image: repo.Image, Tags: []string{"main-1111111", "latest"},
		Rule:     model.Rule{SourceType: "branch", Source: "main", Tags: []string{"{branch}-{short_sha}"}, Dockerfile: "Dockerfile", Context: "."},
		Rules:    []int{0},
		CloneURL: repo.CloneURL, Trigger: "manual", CreatedAt: b.CreatedAt, Seq: b.Seq,
	}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("build = %+v\nwant    %+v", b, want)
	}
	if b.ID == "" || b.CreatedAt.Before(base) || b.Seq != b.CreatedAt.UnixNano() {
		t.Errorf("id %q, created_at %v, seq %d: want an id and the push order from the server clock", b.ID, b.CreatedAt, b.Seq)
	}

	if got := h.getBuild(b.ID); !reflect.DeepEqual(got, b) {
		t.Errorf("GET /builds/%s = %+v\nwant %+v", b.ID, got, b)
	}
	if got := h.buildIDs(repo.ID); !reflect.DeepEqual(got, []string{b.ID}) {
		t.Errorf("GET /builds?repo= = %v, want [%s]", got, b.ID)
	}

	// The build is on the work queue, whole, for a worker to take.
	ctx := testCtx(t)
	jobs, err := h.queue.BuildJobs(ctx)
	if err != nil {
		t.Fatalf("BuildJobs: %v", err)
	}
	job, ok, err := jobs.Next(ctx, 5*time.Second)
	if err != nil || !ok {
		t.Fatalf("no build job queued: ok=%v err=%v", ok, err)
	}
	var queued model.Build
	if err := json.Unmarshal(job.Data(), &queued); err != nil {
		t.Fatalf("decode job: %v", err)
	}
	if !reflect.DeepEqual(queued, b) {
		t.Errorf("queued job = %+v\nwant        %+v", queued, b)
	}
	if err := job.Ack(ctx); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func TestTriggerCommit(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	devRepo := validRepo("acme/dev")
	devRepo.DefaultBranch = "develop"
	devRepo.Rules = []model.Rule{{SourceType: "branch", Source: "/.*/", Tags: []string{"{branch}"}}}
	dev := h.createRepo(devRepo)

	tests := []struct {
		name        string
		repo        model.Repo
		ref, commit string
		wantRef     string
		wantTags    []string
	}{
		{"commit only: main", repo, "", commitA, "refs/heads/main", []string{"main-2222222", "latest"}},
		{"commit only: repo's default branch", dev, "", commitB, "refs/heads/develop", []string{"develop", "latest"}},
		{"ref and commit: other branch", dev, "refs/heads/feature/x", commitC, "refs/heads/feature/x", []string{"feature-x"}},
		{"ref and commit: tag", repo, "refs/tags/v1.2.0", commitC, "refs/tags/v1.2.0", []string{"v1.2.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.trigger(tt.repo.ID, tt.ref, tt.commit)
			if b.Ref != tt.wantRef || b.Commit != tt.commit || b.Status != model.StatusQueued ||
				b.Trigger != "manual" || b.RepoID != tt.repo.ID || b.Image != tt.repo.Image ||
				!reflect.DeepEqual(b.Tags, tt.wantTags) {
				t.Errorf("build = %+v\nwant ref %s, commit %s, queued, manual, tags %v", b, tt.wantRef, tt.commit, tt.wantTags)
			}
			if got := h.getBuild(b.ID); !reflect.DeepEqual(got, b) {
				t.Errorf("stored build = %+v\nwant %+v", got, b)
			}
		})
	}
	if calls := h.resolveCalls(); len(calls) != 0 {
		t.Errorf("Resolve called %v, want never when a commit is given", calls)
	}
}

func TestTriggerErrors(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	// Registration always records a clone URL now; a repository stored
	// before that may have none.
	noClone := validRepo("acme/noclone")
	noClone.CloneURL, noClone.ID = "", model.NewID()
	if err := h.store.CreateRepo(testCtx(t), noClone); err != nil {
		t.Fatal(err)
	}
	disabledRepo := validRepo("acme/disabled")
	off := false
	disabledRepo.Rules = []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"x"}, Enabled: &off}}
	disabled := h.createRepo(disabledRepo)
	anyRepo := validRepo("acme/any")
	anyRepo.Rules = []model.Rule{{SourceType: "branch", Source: "/.*/", Tags: []string{"{branch}"}}}
	anyBranch := h.createRepo(anyRepo)

	tests := []struct {
		name        string
		repoID      string
		ref, commit string
		wantCode    int
		wantMsg     string // prefix of the error message
		wantResolve bool
	}{
		{"neither ref nor commit", repo.ID, "", "", 400, "ref or commit:", false},
		{"pull request ref", repo.ID, "refs/pull/1/head", "", 400, "ref:", false},
		{"pull request ref with commit", repo.ID, "refs/pull/1/head", commitA, 400, "ref:", false},
		{"short branch name", repo.ID, "main", "", 400, "ref:", false},
		{"bare refs/heads/", repo.ID, "refs/heads/", "", 400, "ref:", false},
		{"short commit", repo.ID, "", "abc1234", 400, "commit:", false},
		{"uppercase commit", repo.ID, "refs/heads/main", strings.ToUpper("abcdef" + commitA[6:]), 400, "commit:", false},
		{"no rule matches", repo.ID, "refs/heads/feature", commitA, 422, "no enabled rule of this repository builds refs/heads/feature", false},
		{"only a disabled rule matches", disabled.ID, "", commitA, 422, "no enabled rule of this repository builds refs/heads/main", false},
		{"no rule matches, so the remote is not asked", repo.ID, "refs/heads/gone", "", 422, "no enabled rule of this repository builds refs/heads/gone", false},
		{"resolve fails", anyBranch.ID, "refs/heads/gone", "", 422, "ls-remote " + anyRepo.CloneURL + ": no ref refs/heads/gone on the remote", true},
		{"no clone_url", noClone.ID, "refs/heads/main", "", 422, "repository has no clone_url", false},
		{"unknown repo", "0123456789abcdef0123", "refs/heads/main", "", 404, "not found", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.resolveCalls())
			_, err := h.client.Trigger(testCtx(t), tt.repoID, tt.ref, tt.commit)
			if msg := apiError(t, err, tt.wantCode); !strings.HasPrefix(msg, tt.wantMsg) {
				t.Errorf("error = %q, want it to start with %q", msg, tt.wantMsg)
			}
			calls := h.resolveCalls()[before:]
			if tt.wantResolve != (len(calls) > 0) {
				t.Errorf("Resolve calls = %v, want called: %v", calls, tt.wantResolve)
			}
		})
	}

	bodies := []struct{ name, body, want string }{
		{"empty object", `{}`, "ref or commit:"},
		{"unknown field", `{"ref":"refs/heads/main","branch":"main"}`, `invalid JSON body: json: unknown field "branch"`},
		{"not JSON", `refs/heads/main`, "invalid JSON body"},
	}
	for _, tt := range bodies {
		t.Run(tt.name, func(t *testing.T) {
			code, _, raw := h.do("POST", "/api/v1/repos/"+repo.ID+"/builds", testToken, tt.body)
			if code != http.StatusBadRequest {
				t.Fatalf("HTTP %d %s, want 400", code, raw)
			}
			if msg := errorOf(t, raw); !strings.HasPrefix(msg, tt.want) {
				t.Errorf("error = %q, want it to start with %q", msg, tt.want)
			}
		})
	}

	if bs := h.storedBuilds(""); len(bs) != 0 {
		t.Errorf("failed triggers stored %d builds: %+v", len(bs), bs)
	}
}

func TestTriggerSupersedes(t *testing.T) {
	off := false
	tests := []struct {
		name          string
		cancel        *bool
		wantOldStatus string
	}{
		{"default cancels the older build", nil, model.StatusCancelled},
		{"cancel_superseded false keeps it", &off, model.StatusQueued},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			r := validRepo("acme/demo")
			r.CancelSuperseded = tt.cancel
			repo := h.createRepo(r)
			old := h.trigger(repo.ID, "", commitA)
			other := h.trigger(repo.ID, "refs/tags/v1.0.0", commitA) // another ref: untouched
			newer := h.trigger(repo.ID, "refs/heads/main", "")
			if newer.Seq <= old.Seq {
				t.Fatalf("newer seq %d <= older %d", newer.Seq, old.Seq)
			}
			got := h.getBuild(old.ID)
			if got.Status != tt.wantOldStatus {
				t.Errorf("older build of the ref: %s, want %s", got.Status, tt.wantOldStatus)
			}
			if tt.wantOldStatus == model.StatusCancelled && got.SupersededBy != newer.ID {
				t.Errorf("superseded_by = %q, want %s", got.SupersededBy, newer.ID)
			}
			for _, id := range []string{newer.ID, other.ID} {
				if s := h.getBuild(id).Status; s != model.StatusQueued {
					t.Errorf("build %s: %s, want queued", id, s)
				}
			}
		})
	}
}

func TestListBuilds(t *testing.T) {
	h := newHarness(t)
	a := h.createRepo(validRepo("acme/a"))
	b := h.createRepo(validRepo("acme/b"))

	for _, path := range []string{"/api/v1/builds", "/api/v1/builds?repo=" + a.ID} {
		if code, raw := h.call("GET", path, nil); code != http.StatusOK || strings.TrimSpace(string(raw)) != "[]" {
			t.Fatalf("GET %s with no builds: HTTP %d %s, want []", path, code, raw)
		}
	}

	a1 := h.trigger(a.ID, "", commitA)
	b1 := h.trigger(b.ID, "", commitA)
	a2 := h.trigger(a.ID, "refs/tags/v2.0.0", commitB)
	a3 := h.trigger(a.ID, "refs/heads/main", "")

	if got, want := h.buildIDs(a.ID), []string{a3.ID, a2.ID, a1.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("builds of a = %v, want newest first %v", got, want)
	}
	if got, want := h.buildIDs(b.ID), []string{b1.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("builds of b = %v, want %v", got, want)
	}
	if got, want := h.buildIDs(""), []string{a3.ID, a2.ID, b1.ID, a1.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("all builds = %v, want newest first %v", got, want)
	}
	if _, err := h.client.Builds(testCtx(t), "0123456789abcdef0123"); apiError(t, err, http.StatusNotFound) != "not found" {
		t.Errorf("builds of an unknown repo: %v, want 404 not found", err)
	}
}

func TestGetBuildNotFound(t *testing.T) {
	h := newHarness(t)
	_, err := h.client.Build(testCtx(t), "0123456789abcdef0123")
	if msg := apiError(t, err, http.StatusNotFound); msg != "not found" {
		t.Errorf("message = %q", msg)
	}
	_, err = h.client.Log(testCtx(t), "0123456789abcdef0123")
	apiError(t, err, http.StatusNotFound)
}

func TestCancelBuild(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	queued := h.trigger(repo.ID, "", commitA)

	got, err := h.client.Cancel(testCtx(t), queued.ID)
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if got.ID != queued.ID || got.Status != model.StatusCancelled || got.Reason != "cancelled through the API" || got.FinishedAt == nil {
		t.Errorf("cancelled build = %+v, want status cancelled with reason and finished_at", got)
	}
	if stored := h.getBuild(queued.ID); !reflect.DeepEqual(stored, got) {
		t.Errorf("stored = %+v\nwant   %+v", stored, got)
	}

	_, err = h.client.Cancel(testCtx(t), queued.ID)
	if msg := apiError(t, err, http.StatusConflict); msg != "build already finished: cancelled" {
		t.Errorf("second cancel: message = %q", msg)
	}
	code, raw := h.call("POST", "/api/v1/builds/"+queued.ID+"/cancel", nil)
	answer := decodeInto[struct {
		Build model.Build `json:"build"`
	}](t, raw)
	if code != http.StatusConflict || answer.Build.ID != queued.ID || answer.Build.Status != model.StatusCancelled {
		t.Errorf("third cancel: HTTP %d %s, want 409 with the build", code, raw)
	}

	t.Run("finished build", func(t *testing.T) {
		b := h.trigger(repo.ID, "refs/tags/v1.0.0", commitB)
		h.markFinished(b.ID, model.StatusSucceeded)
		_, err := h.client.Cancel(testCtx(t), b.ID)
		if msg := apiError(t, err, http.StatusConflict); msg != "build already finished: succeeded" {
			t.Errorf("message = %q", msg)
		}
		if s := h.getBuild(b.ID); s.Status != model.StatusSucceeded || s.Reason != "" {
			t.Errorf("finished build changed: %+v", s)
		}
	})

	t.Run("running build", func(t *testing.T) {
		b := h.trigger(repo.ID, "refs/tags/v1.1.0", commitC)
		if _, err := h.store.UpdateBuild(testCtx(t), b.ID, func(b *model.Build) error {
			b.Status = model.StatusRunning
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		got, err := h.client.Cancel(testCtx(t), b.ID)
		if err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		if got.Status != model.StatusRunning || !got.CancelRequested || got.Reason != "cancelled through the API" {
			t.Errorf("cancelled running build = %+v, want still running with cancel_requested", got)
		}
	})

	t.Run("unknown build", func(t *testing.T) {
		_, err := h.client.Cancel(testCtx(t), "0123456789abcdef0123")
		apiError(t, err, http.StatusNotFound)
	})
}

func TestRebuild(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	orig := h.trigger(repo.ID, "refs/heads/main", "")

	_, err := h.client.Rebuild(testCtx(t), orig.ID)
	if msg := apiError(t, err, http.StatusConflict); msg != "build is still queued" {
		t.Errorf("rebuild of a queued build: message = %q", msg)
	}
	if ids := h.buildIDs(repo.ID); len(ids) != 1 {
		t.Fatalf("refused rebuild stored a build: %v", ids)
	}

	h.markFinished(orig.ID, model.StatusSucceeded)
	// A newer push of the same ref is waiting; rebuilding the old one must
	// neither cancel it nor be cancelled by it.
	newer := h.trigger(repo.ID, "", commitA)

	rb, err := h.client.Rebuild(testCtx(t), orig.ID)
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if rb.ID == "" || rb.ID == orig.ID {
		t.Errorf("rebuild id = %q, want a new one (original %s)", rb.ID, orig.ID)
	}
	if rb.RebuildOf != orig.ID || rb.Trigger != "rebuild" || rb.Status != model.StatusQueued {
		t.Errorf("rebuild = %+v, want rebuild_of %s, trigger rebuild, queued", rb, orig.ID)
	}
	if rb.Commit != orig.Commit || rb.Ref != orig.Ref || rb.Image != orig.Image || rb.CloneURL != orig.CloneURL ||
		!reflect.DeepEqual(rb.Tags, orig.Tags) || !reflect.DeepEqual(rb.Rule, orig.Rule) || !reflect.DeepEqual(rb.Rules, orig.Rules) {
		t.Errorf("rebuild = %+v\nwant the original's commit, ref, image and tags: %+v", rb, orig)
	}
	if rb.Seq != orig.Seq {
		t.Errorf("rebuild seq = %d, want the original's %d", rb.Seq, orig.Seq)
	}
	if rb.Digest != "" || rb.FinishedAt != nil {
		t.Errorf("rebuild carries the original's outcome: %+v", rb)
	}
	if stored := h.getBuild(rb.ID); !reflect.DeepEqual(stored, rb) {
		t.Errorf("stored rebuild = %+v\nwant %+v", stored, rb)
	}
	if s := h.getBuild(orig.ID).Status; s != model.StatusSucceeded {
		t.Errorf("original: %s, want succeeded", s)
	}
	if s := h.getBuild(newer.ID).Status; s != model.StatusQueued {
		t.Errorf("newer push after the rebuild: %s, want still queued", s)
	}
	if got, want := h.buildIDs(repo.ID), []string{rb.ID, newer.ID, orig.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("builds = %v, want %v", got, want)
	}

	t.Run("of a rebuild", func(t *testing.T) {
		h.markFinished(rb.ID, model.StatusFailed)
		again, err := h.client.Rebuild(testCtx(t), rb.ID)
		if err != nil {
			t.Fatalf("Rebuild: %v", err)
		}
		if again.RebuildOf != rb.ID || again.Seq != orig.Seq || again.Commit != orig.Commit {
			t.Errorf("rebuild of rebuild = %+v", again)
		}
	})

	t.Run("unknown build", func(t *testing.T) {
		_, err := h.client.Rebuild(testCtx(t), "0123456789abcdef0123")
		apiError(t, err, http.StatusNotFound)
	})
}

func TestBuildLog(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	b := h.trigger(repo.ID, "", commitA)
	other := h.trigger(repo.ID, "refs/tags/v1.0.0", commitB)

	if log, err := h.client.Log(testCtx(t), b.ID); err != nil || len(log) != 0 {
		t.Fatalf("log before any output = %q, %v; want empty", log, err)
	}

	chunks := []string{"#1 [internal] load build definition\n", "#2 RUN make\n", "#2 DONE 1.2s\n", "pushed main-2222222\n"}
	ctx := testCtx(t)
	for i, c := range chunks {
		if err := h.store.AppendLog(ctx, b.ID, []byte(c)); err != nil {
			t.Fatalf("AppendLog: %v", err)
		}
		if i == 1 { // interleave another build's output
			if err := h.store.AppendLog(ctx, other.ID, []byte("other build\n")); err != nil {
				t.Fatalf("AppendLog: %v", err)
			}
		}
	}

	log, err := h.client.Log(testCtx(t), b.ID)
	if err != nil {
		t.Fatalf("Log: %v", err)
	}
	if want := strings.Join(chunks, ""); string(log) != want {
		t.Errorf("log = %q\nwant  %q", log, want)
	}
	code, hdr, raw := h.do("GET", "/api/v1/builds/"+other.ID+"/log", testToken, "")
	if code != http.StatusOK || string(raw) != "other build\n" {
		t.Errorf("other log: HTTP %d %q", code, raw)
	}
	if ct := hdr.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("log Content-Type = %q", ct)
	}
}

// A log of many chunks is sent whole and in order, streamed from the store.
func TestBuildLogOfManyChunks(t *testing.T) {
	h := newHarness(t)
	repo := h.createRepo(validRepo("acme/demo"))
	b := h.trigger(repo.ID, "", commitA)
	ctx := testCtx(t)
	var want strings.Builder
	for i := range 80 { // 80 chunks of 64 KiB: 5 MiB
		chunk := strings.Repeat(fmt.Sprintf("chunk %02d\n", i), 64<<10/9) + strings.Repeat("-", 64<<10%9)
		want.WriteString(chunk)
		if err := h.store.AppendLog(ctx, b.ID, []byte(chunk)); err != nil {
			t.Fatalf("AppendLog: %v", err)
		}
	}
	log, err := h.client.Log(testCtx(t), b.ID)
	if err != nil {
		t.Fatalf("Log: %v", err)
	}
	if len(log) != 5<<20 || string(log) != want.String() {
		t.Errorf("log is %d bytes, want the 5242880 stored, in order", len(log))
	}
}

// TestListBuildsPages: a repository's builds come a page at a time, newest
// first; the Link header names the next page until the last; ?status=
// keeps one status; the client follows every page.
func TestListBuildsPages(t *testing.T) {
	h := newHarness(t)
	a := h.createRepo(validRepo("acme/a"))
	other := h.createRepo(validRepo("acme/b"))
	ctx := testCtx(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var ids []string // newest first
	for i := range 503 {
		b := model.Build{
			ID: fmt.Sprintf("p%04d", i), RepoID: a.ID, Org: a.Organization(), Ref: "refs/heads/main",
			Commit: commitA, Status: model.StatusSucceeded, CreatedAt: t0.Add(time.Duration(i) * time.Second),
		}
		if i%100 == 7 {
			b.Status = model.StatusFailed
		}
		if _, err := h.store.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
		ids = append([]string{b.ID}, ids...)
	}
	if _, err := h.store.CreateBuild(ctx, model.Build{ID: "q0", RepoID: other.ID, Org: other.Organization(), Status: model.StatusFailed, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}

	page := func(path string) ([]string, string) {
		t.Helper()
		code, hdr, raw := h.do("GET", path, testToken, "")
		if code != http.StatusOK {
			t.Fatalf("GET %s: HTTP %d %s", path, code, raw)
		}
		var got []string
		for _, b := range decodeInto[[]model.Build](t, raw) {
			got = append(got, b.ID)
		}
		return got, hdr.Get("Link")
	}
	got, link := page("/api/v1/builds?repo=" + a.ID)
	if !reflect.DeepEqual(got, ids[:50]) {
		t.Errorf("first page: %d builds %v..., want the newest 50 (%s...)", len(got), got[:min(len(got), 3)], ids[0])
	}
	wantLink := `</api/v1/builds?before=p0453&limit=50&repo=` + a.ID + `>; rel="next"`
	if link != wantLink {
		t.Errorf("Link = %s, want %s", link, wantLink)
	}
	got, link = page("/api/v1/builds?repo=" + a.ID + "&limit=500&before=p0005")
	if want := []string{"p0004", "p0003", "p0002", "p0001", "p0000"}; !reflect.DeepEqual(got, want) || link != "" {
		t.Errorf("last page: %v, Link %q; want %v and no Link", got, link, want)
	}
	got, link = page("/api/v1/builds?repo=" + a.ID + "&status=failed&limit=2")
	if want := []string{"p0407", "p0307"}; !reflect.DeepEqual(got, want) || link == "" {
		t.Errorf("failed builds: %v, Link %q; want %v and a next page", got, link, want)
	}
	got, _ = page("/api/v1/builds?status=failed&limit=500")
	if want := []string{"p0407", "p0307", "p0207", "p0107", "p0007", "q0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("failed builds of every repository: %v, want %v", got, want)
	}

	all, err := h.client.Builds(ctx, a.ID)
	if err != nil || len(all) != 503 || all[0].ID != ids[0] || all[502].ID != ids[502] {
		t.Errorf("client.Builds: %d builds, %v; want all 503 newest first", len(all), err)
	}

	for _, tt := range []struct{ query, want string }{
		{"limit=0", "limit: want 1 to 500, got \"0\""},
		{"limit=501", "limit: want 1 to 500, got \"501\""},
		{"limit=ten", "limit: want 1 to 500, got \"ten\""},
		{"status=done", "status: want queued, running, succeeded, failed, cancelled or skipped, got \"done\""},
		{"before=nope", "before: no build nope"},
		{"before=a*b", "before: want a build id, got \"a*b\""},
	} {
		code, _, raw := h.do("GET", "/api/v1/builds?repo="+a.ID+"&"+tt.query, testToken, "")
		if msg := decodeInto[map[string]string](t, raw)["error"]; code != http.StatusBadRequest || msg != tt.want {
			t.Errorf("?%s: HTTP %d %q, want 400 %q", tt.query, code, msg, tt.want)
		}
	}
	if code, _, _ := h.do("GET", "/api/v1/builds?repo=a*b", testToken, ""); code != http.StatusNotFound {
		t.Errorf("?repo=a*b: HTTP %d, want 404", code)
	}
}
