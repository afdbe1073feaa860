package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/rules"
	"github.com/slipway-build/slipway/trigger"
)

// s0 is a fixed time for checking that a hook secret can sign.
var s0 = time.Unix(0, 0)

// Pages of GET /api/v1/builds: ?limit= builds at most, 50 unless given.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// listBuilds answers the builds of the organizations the caller sees, or
// of one repository (?repo=), newest first, a page at a time: when older
// builds follow, a Link header (rel="next") names the next page, which is
// ?before=<the last build's id>.
func (s *Server) listBuilds(w http.ResponseWriter, r *http.Request) {
	q, err := buildQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if q.RepoID != "" {
		if !idRE.MatchString(q.RepoID) {
			writeError(w, http.StatusNotFound, "not found") // no repository has that id
			return
		}
		repo, err := s.Repos.GetRepo(r.Context(), q.RepoID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !s.allow(w, r, repo.Organization(), access.Read) {
			return
		}
	}
	q.Keep = func(b model.Build) (bool, error) {
		org, err := s.buildOrg(r.Context(), b)
		return err == nil && sees(r, org), err
	}
	page, err := s.Builds.QueryBuilds(r.Context(), q)
	if err != nil {
		if q.Before != "" && s.NotFound != nil && s.NotFound(err) {
			err = badf("before: no build %s", q.Before)
		}
		s.fail(w, r, err)
		return
	}
	out := page.Builds
	if out == nil {
		out = []model.Build{}
	}
	if page.More && len(out) > 0 {
		w.Header().Set("Link", nextPage(r, q.Limit, out[len(out)-1].ID))
	}
	writeJSON(w, http.StatusOK, out)
}

// buildQuery reads ?repo=, ?status=, ?before= and ?limit=.
func buildQuery(r *http.Request) (model.BuildQuery, error) {
	v := r.URL.Query()
	q := model.BuildQuery{RepoID: v.Get("repo"), Status: v.Get("status"), Before: v.Get("before"), Limit: defaultLimit}
	if q.Before != "" && !idRE.MatchString(q.Before) {
		return q, badf("before: want a build id, got %q", q.Before)
	}
	switch q.Status {
	case "", model.StatusQueued, model.StatusRunning, model.StatusSucceeded, model.StatusFailed, model.StatusCancelled, model.StatusSkipped:
	default:
		return q, badf("status: want queued, running, succeeded, failed, cancelled or skipped, got %q", q.Status)
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			return q, badf("limit: want 1 to %d, got %q", maxLimit, l)
		}
		q.Limit = n
	}
	return q, nil
}

// nextPage is the Link header naming the page after the one ending with
// the build last: the same query with ?before=last.
func nextPage(r *http.Request, limit int, last string) string {
	v := r.URL.Query()
	v.Set("before", last)
	v.Set("limit", strconv.Itoa(limit))
	return "<" + (&url.URL{Path: r.URL.Path, RawQuery: v.Encode()}).String() + `>; rel="next"`
}

func (s *Server) getBuild(w http.ResponseWriter, r *http.Request) {
	if b, ok := s.build(w, r, access.Read); ok {
		writeJSON(w, http.StatusOK, b)
	}
}

// getLog answers the log stored so far as plain text, or follows it live
// as Server-Sent Events (api/livelog.go) when the client asks for them.
func (s *Server) getLog(w http.ResponseWriter, r *http.Request) {
	b, ok := s.build(w, r, access.Read)
	if !ok {
		return
	}
	if wantsStream(r) {
		s.streamLog(w, r, b)
		return
	}
	// Streamed from the store as it is read: a log may be many megabytes.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	n, err := s.Builds.CopyLog(r.Context(), r.PathValue("id"), w)
	switch {
	case err == nil:
	case n == 0:
		s.fail(w, r, err)
	default:
		// The status line is sent; the client sees a short body.
		s.logger().Warn("build log cut off while sending", "build", r.PathValue("id"), "sent", n, "err", err)
	}
}

type triggerRequest struct {
	Ref    string `json:"ref"`
	Commit string `json:"commit"`
}

// triggerBuild builds a ref's tip, or a given commit, as if it had just
// been pushed. A commit without a ref builds with the default branch's
// rules.
func (s *Server) triggerBuild(w http.ResponseWriter, r *http.Request) {
	repo, ok := s.repo(w, r, access.Write)
	if !ok {
		return
	}
	var req triggerRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Ref == "" && req.Commit == "" {
		s.fail(w, r, badf("ref or commit: give at least one"))
		return
	}
	if req.Ref == "" {
		req.Ref = "refs/heads/" + defaultBranch(repo)
	}
	if kind, _ := rules.Ref(req.Ref); kind == "" {
		s.fail(w, r, badf("ref: want refs/heads/<branch> or refs/tags/<tag>, got %q", req.Ref))
		return
	}
	if req.Commit != "" && !shaRE.MatchString(req.Commit) {
		s.fail(w, r, badf("commit: want a full 40-character hash, got %q", req.Commit))
		return
	}
	if repo.CloneURL == "" {
		writeError(w, http.StatusUnprocessableEntity, "repository has no clone_url; set it to build by hand")
		return
	}
	// Check the rules before asking the remote, so that a ref no rule
	// builds is answered without a network call.
	if probe, err := rules.Plans(repo, rules.Push{Ref: req.Ref, Commit: strings.Repeat("0", 40), Time: s.now()}); err != nil || len(probe) == 0 {
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeError(w, http.StatusUnprocessableEntity, "no enabled rule of this repository builds "+req.Ref)
		return
	}
	if req.Commit == "" {
		var err error
		if req.Commit, err = s.Resolve(r.Context(), repo, req.Ref); err != nil {
			writeError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
	}
	builds, err := trigger.Builds(repo, trigger.Push{Ref: req.Ref, After: req.Commit, Time: s.now(), Trigger: trigger.Manual})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(builds) == 0 {
		writeError(w, http.StatusUnprocessableEntity, "no enabled rule of this repository builds "+req.Ref)
		return
	}
	for _, b := range builds {
		if err := s.submit(r, b, model.On(repo.CancelSuperseded, true)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusAccepted, builds[0])
}

func (s *Server) submit(r *http.Request, b model.Build, cancelOlder bool) error {
	q, err := s.Queue.Enqueue(r.Context(), b, cancelOlder)
	if q.CancelErr != nil {
		s.logger().Warn("cancel superseded builds", "build", b.ID, "err", q.CancelErr)
	}
	return err
}

func (s *Server) cancelBuild(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.build(w, r, access.Write); !ok {
		return
	}
	id := r.PathValue("id")
	active, err := s.Queue.Cancel(r.Context(), id, "cancelled through the API", "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := s.Builds.GetBuild(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !active {
		writeJSON(w, http.StatusConflict, map[string]any{"error": "build already finished: " + b.Status, "build": b})
		return
	}
	writeJSON(w, http.StatusAccepted, b)
}

// rebuildBuild runs a finished build again. It keeps the original push's
// place in the ref's order, so rebuilding an old commit never moves a tag
// away from a newer one.
func (s *Server) rebuildBuild(w http.ResponseWriter, r *http.Request) {
	old, ok := s.build(w, r, access.Write)
	if !ok {
		return
	}
	if !model.Terminal(old.Status) {
		writeError(w, http.StatusConflict, "build is still "+old.Status)
		return
	}
	b := trigger.Again(old, s.now())
	if _, err := s.Queue.SubmitBuild(r.Context(), b); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, b)
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

func defaultBranch(repo model.Repo) string {
	if repo.DefaultBranch != "" {
		return repo.DefaultBranch
	}
	return "main"
}

// redeliver sends a build's deploy hook again, with a fresh retry schedule.
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.build(w, r, access.Write); !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		s.fail(w, r, badf("delivery: want its index, got %q", r.PathValue("n")))
		return
	}
	var (
		round int
		job   queue.HookJob
	)
	b, err := s.Builds.UpdateBuild(r.Context(), r.PathValue("id"), func(b *model.Build) error {
		if n < 0 || n >= len(b.Deliveries) {
			return badf("delivery: build has %d deliveries, no %d", len(b.Deliveries), n)
		}
		d := &b.Deliveries[n]
		if d.Status == model.DeliveryPending {
			return conflict("delivery %d is still being delivered", n)
		}
		d.Redelivered++
		d.Status, d.RetryFrom, round = model.DeliveryPending, len(d.Attempts), d.Redelivered
		// n counts deliveries, one per hook and event: the job names both.
		job = queue.HookJob{BuildID: b.ID, Hook: d.Hook, Event: d.Event, Round: round}
		return nil
	})
	if err != nil {
		var c conflictError
		if errors.As(err, &c) {
			writeError(w, http.StatusConflict, c.Error())
			return
		}
		s.fail(w, r, err)
		return
	}
	if err := s.Queue.SubmitHook(r.Context(), job); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, b.Deliveries[n])
}

// conflictError is a request that does not fit the build's state.
type conflictError struct{ msg string }

func (c conflictError) Error() string { return c.msg }

func conflict(format string, a ...any) error { return conflictError{fmt.Sprintf(format, a...)} }
