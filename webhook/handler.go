package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/trigger"
)

// Repos finds the repository a webhook is about.
type Repos interface {
	FindRepo(ctx context.Context, provider, fullName string) (model.Repo, error)
	// UpdateRepo records what a push teaches about its repository.
	UpdateRepo(ctx context.Context, id string, change func(*model.Repo) error) (model.Repo, error)
}

// Queue stores builds durably.
type Queue interface {
	// Enqueue stores the build of a push (queued, or recorded when
	// skipped), optionally cancelling older pushes' builds of its ref; a
	// build stored before is answered, not queued again.
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
	h.learnInstallation(ctx, repo, ev.InstallationID, log)
	now := h.now()
	for _, push := range ev.Pushes {
		if push.Deleted {
			continue
		}
		builds, err := Builds(repo, push, ev, now)
		if err != nil {
			return ans, err
		}
		for _, b := range builds {
			q, err := h.Queue.Enqueue(ctx, b, model.On(repo.CancelSuperseded, true))
			if err != nil {
				return ans, err
			}
			logQueued(log, q)
			if q.Build.Status == model.StatusSkipped {
				ans.Skipped = append(ans.Skipped, q.Build.ID)
			} else {
				ans.Builds = append(ans.Builds, q.Build.ID)
			}
		}
	}
	return ans, nil
}

func logQueued(log *slog.Logger, q queue.Queued) {
	b := q.Build
	if q.Duplicate {
		log.Info("commit already has its build; nothing queued", "ref", b.Ref, "commit", b.Commit, "build", b.ID, "trigger", b.Trigger, "status", b.Status)
	}
	if q.CancelErr != nil {
		log.Warn("cancel superseded builds", "build", b.ID, "err", q.CancelErr)
	}
	if len(q.Cancelled) > 0 {
		log.Info("cancelled superseded builds", "ref", b.Ref, "cancelled", q.Cancelled, "by", b.ID)
	}
}

// learnInstallation remembers the GitHub App installation a repository's
// pushes come from, so that builds no webhook starts use it too. A failure
// costs only that memory: this push's builds carry the installation.
func (h *Handler) learnInstallation(ctx context.Context, repo model.Repo, id int64, log *slog.Logger) {
	if id == 0 || repo.InstallationID != 0 || repo.PushInstallationID == id {
		return
	}
	_, err := h.Repos.UpdateRepo(ctx, repo.ID, func(r *model.Repo) error {
		r.PushInstallationID = id
		return nil
	})
	if err != nil {
		log.Warn("remember the push's App installation", "installation", id, "err", err)
		return
	}
	log.Info("repository's pushes come from a GitHub App installation", "installation", id)
}

// Builds turns one ref update of a webhook into the builds its repository's
// rules ask for. They clone from the repository's registered clone URL,
// never the payload's: the payload is only as trustworthy as the webhook
// secret, and the clone carries the repository's token.
func Builds(repo model.Repo, push Push, ev Event, now time.Time) ([]model.Build, error) {
	return trigger.Builds(repo, trigger.Push{
		Ref: push.Ref, Before: push.Before, After: push.After, Message: push.Message, Pusher: push.Pusher,
		DefaultBranch: push.DefaultBranch, Files: push.Files, FilesComplete: push.FilesComplete, Time: now,
		Trigger: trigger.Webhook, DeliveryID: ev.DeliveryID, InstallationID: ev.InstallationID,
	})
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
