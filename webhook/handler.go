package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/redact"
	"github.com/slipway-build/slipway/telemetry"
	"github.com/slipway-build/slipway/trigger"
)

// Repos finds the repository a webhook is about.
type Repos interface {
	FindRepo(ctx context.Context, provider, fullName string) (model.Repo, error)
	// UpdateRepo records what a push teaches about its repository.
	UpdateRepo(ctx context.Context, id string, change func(*model.Repo) error) (model.Repo, error)
}

// FreshRepos is Repos that may answer from a cache: FindRepoFresh reads
// past it. A signature that fails against a cached repository is checked
// once more against the stored one, whose secret may have just changed.
type FreshRepos interface {
	FindRepoFresh(ctx context.Context, provider, fullName string) (model.Repo, error)
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
	// Deliveries remembers what each push delivery made; nil remembers
	// nothing, and a replay is then answered by the builds' identity alone.
	Deliveries Deliveries
	// PullRequests stops a closed pull request's builds; Tags deletes its
	// tags (delete_on_close). Either may be nil.
	PullRequests PullRequests
	Tags         TagDeleter
	// Heads answers the commit a ref of the registered repository names,
	// for hosts that send short head hashes; nil refuses them.
	Heads func(ctx context.Context, repo model.Repo, ref string) (string, error)
	// BodyBudget bounds the bytes of bodies read at once (zero means
	// DefaultBodyBudget); a request that does not fit is answered 503.
	BodyBudget int64
	// Traces makes a "webhook" span of each request and an "enqueue"
	// span of each build it queues; nil makes none.
	Traces trace.TracerProvider
	// Metrics counts requests and rejections; nil counts nothing.
	Metrics Metrics

	bodies bodies
}

// Metrics counts webhook requests by git host (a provider's name, or
// unknownHost), and rejections by host and a one-word reason.
type Metrics interface {
	WebhookReceived(host string)
	WebhookRejected(host, reason string)
}

// unknownHost stands for every path that names no git host Slipway knows:
// the path is the sender's choice, and each name would be a new series.
const unknownHost = "unknown"

func hostOf(p Provider) string {
	if p == nil {
		return unknownHost
	}
	return p.Name()
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
// always means nothing can be lost. The signature is checked before the
// payload is decoded in full, and a delivery seen before is answered from
// its record without queueing anything.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	// A webhook starts a trace of its own: anyone may post to /hooks, so
	// a traceparent header the request brings is not followed.
	ctx, span := telemetry.Tracer(h.Traces).Start(r.Context(), "webhook", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(telemetry.Host.String(r.PathValue("provider"))))
	defer span.End()
	r = r.WithContext(ctx)
	w := &statusWriter{ResponseWriter: rw}
	defer func() { answered(span, w.code) }()
	p := h.providerFor(r)
	if h.Metrics != nil {
		h.Metrics.WebhookReceived(hostOf(p))
	}
	if p == nil {
		h.reject(w, unknownHost, "unknown_host", http.StatusNotFound, "unknown git host", "provider", r.PathValue("provider"))
		return
	}
	h.bodies.init(h.BodyBudget)
	// The body is read through the server's own writer, which
	// MaxBytesReader tells to close the connection of a body too large.
	body, release, err := h.bodies.read(rw, r, p.MaxBody())
	if err != nil {
		h.readFailed(w, p, err)
		return
	}
	defer release()
	peek, err := p.Peek(r.Header, body)
	if err != nil {
		h.reject(w, p.Name(), "malformed", http.StatusBadRequest, err.Error(), "provider", p.Name(), "delivery", peek.DeliveryID)
		return
	}
	provider := providerOf(peek, p)
	span.SetAttributes(telemetry.Host.String(provider), telemetry.Delivery.String(peek.DeliveryID),
		telemetry.Repository.String(peek.Repo), attribute.String("slipway.event", peek.RawKind))
	log := h.logger().With("provider", provider, "delivery", peek.DeliveryID, "repo", peek.Repo, "event", peek.RawKind)
	if peek.Repo == "" {
		h.withoutRepo(w, p.Name(), peek, log)
		return
	}
	repo, ok := h.verified(w, r, p, provider, peek, body, log)
	if !ok {
		return
	}
	span.SetAttributes(telemetry.Organization.String(repo.Organization()))
	log = log.With("org", repo.Organization())
	switch peek.Kind {
	case KindPing:
		log.Info("webhook ping")
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
		return
	case KindOther:
		log.Info("webhook ignored: event is not a push")
		writeJSON(w, http.StatusAccepted, map[string]any{"builds": []string{}, "ignored": "event " + peek.RawKind + " does not build"})
		return
	}
	h.push(w, r, p, repo, peek, body, log)
}

func (h *Handler) readFailed(w http.ResponseWriter, p Provider, err error) {
	var tooBig errTooBig
	switch {
	case errors.Is(err, errBusy):
		w.Header().Set("Retry-After", retryAfter)
		h.reject(w, p.Name(), "busy", http.StatusServiceUnavailable, err.Error(), "provider", p.Name())
	case errors.As(err, &tooBig):
		h.reject(w, p.Name(), "too_large", http.StatusRequestEntityTooLarge, err.Error(), "provider", p.Name())
	default:
		h.reject(w, p.Name(), "unreadable", http.StatusBadRequest, err.Error(), "provider", p.Name())
	}
}

func providerOf(ev Event, p Provider) string {
	if ev.Provider != "" {
		return ev.Provider
	}
	return p.Name()
}

// withoutRepo answers an event that names no repository. Bitbucket Data
// Center's "Test connection" ping names none, so there is no secret to
// check it against; an event that builds nothing can be answered without
// one.
func (h *Handler) withoutRepo(w http.ResponseWriter, host string, ev Event, log *slog.Logger) {
	switch ev.Kind {
	case KindPing:
		log.Info("webhook ping without a repository")
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	case KindOther, KindPullRequest:
		log.Info("webhook ignored: event is not a push")
		writeJSON(w, http.StatusAccepted, map[string]any{"builds": []string{}, "ignored": "event " + ev.RawKind + " does not build"})
	default:
		h.rejectLog(w, log, host, "no_repository", http.StatusBadRequest, "push event names no repository")
	}
}

// verified finds the repository a request names and checks its signature
// with that repository's secret; it answers the request itself when either
// fails.
func (h *Handler) verified(w http.ResponseWriter, r *http.Request, p Provider, provider string, peek Event, body []byte, log *slog.Logger) (model.Repo, bool) {
	repo, err := h.Repos.FindRepo(r.Context(), provider, peek.Repo)
	if err != nil {
		if h.IsNotFound != nil && h.IsNotFound(err) {
			h.rejectLog(w, log, p.Name(), "not_registered", http.StatusNotFound, fmt.Sprintf("%s repository %s is not registered", provider, peek.Repo))
			return repo, false
		}
		h.rejectLog(w, log, p.Name(), "lookup_failed", http.StatusServiceUnavailable, "look up repository: "+err.Error())
		return repo, false
	}
	err = p.Verify(r.Header, body, repo.WebhookSecret)
	if fresh, ok := h.Repos.(FreshRepos); ok && err != nil {
		if repo, err = fresh.FindRepoFresh(r.Context(), provider, peek.Repo); err == nil {
			err = p.Verify(r.Header, body, repo.WebhookSecret)
		}
	}
	if err != nil {
		h.rejectLog(w, log, p.Name(), "bad_signature", http.StatusUnauthorized, err.Error())
		return repo, false
	}
	return repo, true
}

// push queues the builds of a verified push event, unless its delivery or
// its very body was seen before.
func (h *Handler) push(w http.ResponseWriter, r *http.Request, p Provider, repo model.Repo, peek Event, body []byte, log *slog.Logger) {
	keys := deliveryKeys(peek.DeliveryID, body)
	if ans, ok := h.seen(r.Context(), repo, keys, log); ok {
		trace.SpanFromContext(r.Context()).SetAttributes(telemetry.BuildIDs.StringSlice(ans.Builds), attribute.Bool("slipway.replay", true))
		log.Info("webhook delivery seen before; nothing queued", "builds", ans.Builds, "skipped", ans.Skipped)
		writeJSON(w, http.StatusAccepted, ans)
		return
	}
	ev, err := p.Parse(r.Header, body)
	if err != nil {
		h.rejectLog(w, log, p.Name(), "malformed", http.StatusBadRequest, err.Error())
		return
	}
	// The secret checked was that of the repository Peek read; a payload
	// that names another one in full is not what was signed for.
	if ev.Repo != peek.Repo || providerOf(ev, p) != providerOf(peek, p) || ev.Kind != peek.Kind {
		h.rejectLog(w, log, p.Name(), "ambiguous", http.StatusBadRequest, "payload is ambiguous about its repository or event")
		return
	}
	ans, complete, err := h.submit(r.Context(), repo, ev, log)
	trace.SpanFromContext(r.Context()).SetAttributes(telemetry.BuildIDs.StringSlice(ans.Builds))
	var bad badEvent
	if errors.As(err, &bad) {
		h.rejectLog(w, log, p.Name(), "bad_event", http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		h.rejectLog(w, log, p.Name(), "queue_failed", http.StatusServiceUnavailable, "queue builds: "+err.Error())
		return
	}
	if complete {
		h.remember(r.Context(), repo, keys, ans, log)
	}
	log.Info("webhook accepted", "builds", ans.Builds, "skipped", ans.Skipped, "cancelled", ans.Cancelled, "ignored", ans.Ignored)
	writeJSON(w, http.StatusAccepted, ans)
}

// Answer is what a webhook answers: the queued builds and the recorded
// skipped ones.
type Answer struct {
	Builds  []string `json:"builds"`
	Skipped []string `json:"skipped,omitempty"`
	// Cancelled are a closed pull request's builds it stopped.
	Cancelled []string `json:"cancelled,omitempty"`
	// Ignored says why an event built nothing and recorded nothing
	// (pull_requests is off); Reason why its builds were skipped (a fork).
	Ignored string `json:"ignored,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// submit queues a push or pull request event's builds. complete says
// every step of every build was done, so a later delivery of the event has
// nothing to repair.
func (h *Handler) submit(ctx context.Context, repo model.Repo, ev Event, log *slog.Logger) (Answer, bool, error) {
	h.learnInstallation(ctx, repo, ev.InstallationID, log)
	if ev.Kind == KindPullRequest {
		return h.submitPullRequest(ctx, repo, ev, log)
	}
	ans, complete := Answer{Builds: []string{}}, true
	now := h.now()
	for _, push := range ev.Pushes {
		if push.Deleted {
			continue
		}
		builds, err := Builds(repo, push, ev, now)
		if err != nil {
			return ans, false, err
		}
		got, ok, err := h.enqueue(ctx, repo, builds, log)
		ans.Builds, ans.Skipped = append(ans.Builds, got.Builds...), append(ans.Skipped, got.Skipped...)
		if err != nil {
			return ans, false, err
		}
		complete = complete && ok
	}
	return ans, complete, nil
}

// enqueue stores builds, cancelling what they supersede as the repository
// asks.
func (h *Handler) enqueue(ctx context.Context, repo model.Repo, builds []model.Build, log *slog.Logger) (Answer, bool, error) {
	ans, complete := Answer{Builds: []string{}}, true
	for _, b := range builds {
		q, err := h.enqueueOne(ctx, repo, b)
		if err != nil {
			return ans, false, err
		}
		logQueued(log, q)
		complete = complete && q.CancelErr == nil
		if q.Build.Status == model.StatusSkipped {
			ans.Skipped = append(ans.Skipped, q.Build.ID)
		} else {
			ans.Builds = append(ans.Builds, q.Build.ID)
		}
	}
	return ans, complete, nil
}

// enqueueOne stores one build under the span "enqueue", whose trace
// context its job carries to the worker (queue injects it into the
// message's headers).
func (h *Handler) enqueueOne(ctx context.Context, repo model.Repo, b model.Build) (queue.Queued, error) {
	ctx, span := telemetry.Tracer(h.Traces).Start(ctx, "enqueue", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(telemetry.Of(b, repo).Attrs()...),
		trace.WithAttributes(attribute.String("slipway.ref", b.Ref), attribute.String("slipway.commit", b.Commit)))
	defer span.End()
	q, err := h.Queue.Enqueue(ctx, b, model.On(repo.CancelSuperseded, true))
	telemetry.Fail(span, err)
	span.SetAttributes(attribute.Bool("slipway.duplicate", q.Duplicate), attribute.String("slipway.build.status", q.Build.Status))
	return q, err
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

func (h *Handler) reject(w http.ResponseWriter, host, why string, code int, msg string, attrs ...any) {
	h.rejectLog(w, h.logger().With(attrs...), host, why, code, msg)
}

// rejectLog answers msg redacted: anyone may post to /hooks, and a store
// error may quote a URL with credentials in it. The rejection is counted
// by host and why, a word from a fixed set: msg may name anything.
func (h *Handler) rejectLog(w http.ResponseWriter, log *slog.Logger, host, why string, code int, msg string) {
	if h.Metrics != nil {
		h.Metrics.WebhookRejected(host, why)
	}
	msg = redact.Text(msg)
	log.Warn("webhook rejected", "status", code, "reason", msg)
	writeJSON(w, code, map[string]string{"error": msg})
}

// statusWriter remembers the status a response was answered with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// answered records the webhook's answer on its span; a 5xx (Slipway could
// not store it) marks the span failed, a refusal of the sender does not.
func answered(span trace.Span, code int) {
	span.SetAttributes(attribute.Int("http.response.status_code", code))
	if code >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, http.StatusText(code))
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
