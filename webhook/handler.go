package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/rules"
)

// Repos finds the repository a webhook is about.
type Repos interface {
	FindRepo(ctx context.Context, provider, fullName string) (model.Repo, error)
}

// Queue stores builds durably.
type Queue interface {
	// Enqueue stores the build of a push (queued, or recorded when
	// skipped), optionally cancelling older pushes' builds of its ref.
	Enqueue(ctx context.Context, b model.Build, cancelOlder bool) (queue.Queued, error)
}

// Handler serves /hooks/{provider}.
type Handler struct {
	Providers []Provider
	Repos     Repos
	Queue     Queue
	Logger    *slog.Logger
	Now       func() time.Time
	// IsNotFound tells whether an error from Repos means "no such repo".
	IsNotFound func(error) bool
}

func (h *Handler) provider(name string) Provider {
	for _, p := range h.Providers {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

// providerFor picks the provider of a request from its path. Gitea and
// Forgejo also send GitHub's headers, so a webhook of theirs configured as a
// GitHub one is recognised by their own headers first.
func (h *Handler) providerFor(r *http.Request) Provider {
	name := r.PathValue("provider")
	if name == "github" && (r.Header.Get("X-Gitea-Event") != "" || r.Header.Get("X-Forgejo-Event") != "") {
		if p := h.provider("gitea"); p != nil {
			return p
		}
	}
	return h.provider(name)
}

// ServeHTTP answers a webhook only after its builds are stored, so a 2xx
// always means nothing can be lost.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.providerFor(r)
	if p == nil {
		h.reject(w, http.StatusNotFound, "unknown git host", "provider", r.PathValue("provider"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.MaxBody()))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.reject(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", p.MaxBody()), "provider", p.Name())
			return
		}
		h.reject(w, http.StatusBadRequest, "read body: "+err.Error(), "provider", p.Name())
		return
	}
	ev, err := p.Parse(r.Header, body)
	if err != nil {
		h.reject(w, http.StatusBadRequest, err.Error(), "provider", p.Name(), "delivery", ev.DeliveryID)
		return
	}
	provider := ev.Provider
	if provider == "" {
		provider = p.Name()
	}
	log := h.logger().With("provider", provider, "delivery", ev.DeliveryID, "repo", ev.Repo, "event", ev.RawKind)
	if ev.Repo == "" {
		// Bitbucket Data Center's "Test connection" ping names no
		// repository, so there is no secret to check it against; an event
		// that builds nothing can be answered without one.
		switch ev.Kind {
		case KindPing:
			log.Info("webhook ping without a repository")
			writeJSON(w, http.StatusOK, map[string]any{"ok": true})
		case KindOther:
			log.Info("webhook ignored: event is not a push")
			writeJSON(w, http.StatusAccepted, map[string]any{"builds": []string{}, "ignored": "event " + ev.RawKind + " does not build"})
		default:
			h.rejectLog(w, log, http.StatusBadRequest, "push event names no repository")
		}
		return
	}
	repo, err := h.Repos.FindRepo(r.Context(), provider, ev.Repo)
	if err != nil {
		if h.IsNotFound != nil && h.IsNotFound(err) {
			h.rejectLog(w, log, http.StatusNotFound, fmt.Sprintf("%s repository %s is not registered", provider, ev.Repo))
			return
		}
		h.rejectLog(w, log, http.StatusServiceUnavailable, "look up repository: "+err.Error())
		return
	}
	if err := p.Verify(r.Header, body, repo.WebhookSecret); err != nil {
		h.rejectLog(w, log, http.StatusUnauthorized, err.Error())
		return
	}
	switch ev.Kind {
	case KindPing:
		log.Info("webhook ping")
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
		return
	case KindOther:
		log.Info("webhook ignored: event is not a push")
		writeJSON(w, http.StatusAccepted, map[string]any{"builds": []string{}, "ignored": "event " + ev.RawKind + " does not build"})
		return
	}
	ans, err := h.submit(r.Context(), repo, ev, log)
	if err != nil {
		h.rejectLog(w, log, http.StatusServiceUnavailable, "queue builds: "+err.Error())
		return
	}
	log.Info("webhook accepted", "builds", ans.Builds, "skipped", ans.Skipped)
	writeJSON(w, http.StatusAccepted, ans)
}

// Answer is what a webhook answers: the queued builds and the recorded
// skipped ones.
type Answer struct {
	Builds  []string `json:"builds"`
	Skipped []string `json:"skipped,omitempty"`
}

func (h *Handler) submit(ctx context.Context, repo model.Repo, ev Event, log *slog.Logger) (Answer, error) {
	ans := Answer{Builds: []string{}}
	now := h.now()
	for _, push := range ev.Pushes {
		if push.Deleted {
			continue
		}
		builds, err := Builds(repo, push, ev.DeliveryID, now)
		if err != nil {
			return ans, err
		}
		for _, b := range builds {
			b.InstallationID = ev.InstallationID
			q, err := h.Queue.Enqueue(ctx, b, model.On(repo.CancelSuperseded, true))
			if err != nil {
				return ans, err
			}
			if q.CancelErr != nil {
				log.Warn("cancel superseded builds", "err", q.CancelErr)
			}
			if len(q.Cancelled) > 0 {
				log.Info("cancelled superseded builds", "ref", b.Ref, "cancelled", q.Cancelled, "by", b.ID)
			}
			if b.Status == model.StatusSkipped {
				ans.Skipped = append(ans.Skipped, b.ID)
			} else {
				ans.Builds = append(ans.Builds, b.ID)
			}
		}
	}
	return ans, nil
}

// Builds turns a push into the builds its matching rules ask for. Build ids
// derive from the delivery, so a redelivered webhook names the same builds.
func Builds(repo model.Repo, push Push, deliveryID string, now time.Time) ([]model.Build, error) {
	plans, err := rules.Plans(repo, rules.Push{
		Ref: push.Ref, Commit: push.After, Message: push.Message, DefaultBranch: push.DefaultBranch,
		Time: now, Files: push.Files, FilesComplete: push.FilesComplete,
	})
	if err != nil {
		return nil, err
	}
	cloneURL := repo.CloneURL
	if cloneURL == "" {
		cloneURL = push.CloneURL
	}
	var out []model.Build
	for _, p := range plans {
		b := NewBuild(repo, p, push.Ref, push.After, now)
		b.ID = BuildID(repo.ID, deliveryID, push.Ref, push.After, p.Rules[0])
		b.CloneURL, b.Pusher, b.Trigger, b.DeliveryID = cloneURL, push.Pusher, "webhook", deliveryID
		b.Before, b.Message, b.DiffFilter = push.Before, push.Message, p.NeedsDiff
		if p.NeedsDiff && (push.Before == "" || IsZeroSHA(push.Before)) {
			b.BaseRef = "refs/heads/" + rules.DefaultBranch(repo, push.DefaultBranch)
		}
		out = append(out, b)
	}
	return out, nil
}

// NewBuild makes the record of one plan; a plan that skips is recorded
// finished.
func NewBuild(repo model.Repo, p rules.Plan, ref, commit string, now time.Time) model.Build {
	now = now.UTC()
	b := model.Build{
		ID: model.NewID(), RepoID: repo.ID, Ref: ref, Commit: commit, Status: model.StatusQueued,
		Image: repo.Image, Tags: p.Tags, Rule: p.Rule, Rules: p.Rules, BuildArgs: p.BuildArgs,
		CloneURL: repo.CloneURL, CreatedAt: now, Seq: now.UnixNano(),
	}
	if p.Skip != "" {
		b.Status, b.Reason, b.FinishedAt = model.StatusSkipped, p.Skip, &now
	}
	return b
}

// BuildID is deterministic in its inputs.
func BuildID(repoID, deliveryID, ref, commit string, rule int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%d", repoID, deliveryID, ref, commit, rule)))
	return hex.EncodeToString(sum[:10])
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

func (h *Handler) reject(w http.ResponseWriter, code int, msg string, attrs ...any) {
	h.rejectLog(w, h.logger().With(attrs...), code, msg)
}

func (h *Handler) rejectLog(w http.ResponseWriter, log *slog.Logger, code int, msg string) {
	log.Warn("webhook rejected", "status", code, "reason", msg)
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
