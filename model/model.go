// Package model holds the records Slipway stores and passes between its
// stages: repositories with their build rules, builds, and deploy deliveries.
package model

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
)

// Build states.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
	// StatusSkipped is a push that asked for no build: a skip marker in the
	// commit message, or only changes that the rule's path filters ignore.
	StatusSkipped = "skipped"
)

// Terminal reports whether a build in this status will never change again.
func Terminal(status string) bool {
	switch status {
	case StatusSucceeded, StatusFailed, StatusCancelled, StatusSkipped:
		return true
	}
	return false
}

// Repo is a connected Git repository and what to build from it.
type Repo struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
	FullName string `json:"full_name"`
	// Org is the organization that owns the repository and its image
	// namespace; empty means the owner part of FullName, lowercased.
	Org string `json:"organization,omitempty"`
	// PublicImage lets anyone pull the repository's image from the embedded
	// registry, like a public repository on Docker Hub.
	PublicImage   bool   `json:"public,omitempty"`
	CloneURL      string `json:"clone_url,omitempty"`
	WebhookSecret string `json:"webhook_secret,omitempty"`
	Image         string `json:"image"`
	// DefaultBranch is the branch that also tags "latest"; empty means the
	// one the Git host reports, else "main".
	DefaultBranch          string `json:"default_branch,omitempty"`
	LatestForDefaultBranch *bool  `json:"latest_for_default_branch,omitempty"`
	// CancelSuperseded cancels queued and running builds of a ref when a
	// newer push to it arrives (default true).
	CancelSuperseded *bool `json:"cancel_superseded,omitempty"`
	// BuildTimeout is a Go duration such as "45m" (default 60m).
	BuildTimeout string `json:"build_timeout,omitempty"`
	// MaxConcurrentBuilds limits builds of this repository at once (0: no
	// limit beyond the workers').
	MaxConcurrentBuilds int `json:"max_concurrent_builds,omitempty"`
	// Network is how the builds' RUN steps reach the network: "" is the
	// build bridge (egress, but not this host), NetworkNone none at all.
	Network string `json:"network,omitempty"`
	// Submodules fetches the submodules .gitmodules names (default false:
	// their directories stay empty). The repository's credentials go only
	// to submodules on its own host.
	Submodules bool `json:"submodules,omitempty"`
	// APIURL is the Git host's API root for statuses and webhooks; empty
	// means the public host's.
	APIURL string `json:"api_url,omitempty"`
	// Token authenticates clones and API calls (write-only).
	Token string `json:"token,omitempty"`
	// InstallationID makes Slipway use its GitHub App's installation token
	// instead of Token.
	InstallationID int64 `json:"installation_id,omitempty"`
	// PushInstallationID is the GitHub App installation the repository's
	// pushes come from, learned from its webhooks, so that builds no
	// webhook started (reconciled, triggered, rebuilt) clone and report
	// with it too.
	PushInstallationID int64 `json:"push_installation_id,omitempty"`
	// SSHKey is a PEM private deploy key for ssh:// clones (write-only);
	// KnownHosts holds the host keys it must present.
	SSHKey     string `json:"ssh_key,omitempty"`
	KnownHosts string `json:"known_hosts,omitempty"`
	// PullRequests says which pull requests build: PullRequestsOff,
	// PullRequestsInternal (the default: only those whose head branch is
	// in the repository itself) or PullRequestsAll (forks too: built and
	// tested without secrets, never pushed).
	PullRequests string `json:"pull_requests,omitempty"`
	// TestTimeout bounds a build's tests, a Go duration (default 20m).
	TestTimeout string `json:"test_timeout,omitempty"`
	// HookID is the webhook Slipway created on the host when connecting.
	HookID string `json:"hook_id,omitempty"`
	// BadgeKey lets whoever holds it see a private repository's status
	// badge (?key=). Slipway makes it (POST .../badge-key); it is stored
	// sealed, and shown to the repository's readers, who could see the
	// builds anyway.
	BadgeKey  string    `json:"badge_key,omitempty"`
	Rules     []Rule    `json:"rules"`
	Hooks     []Hook    `json:"hooks,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Organization is the organization that owns r.
func (r Repo) Organization() string {
	if r.Org != "" {
		return r.Org
	}
	owner, _, _ := strings.Cut(r.FullName, "/")
	return strings.ToLower(owner)
}

// NetworkNone cuts a repository's builds off every network.
const NetworkNone = "none"

// On reports a tri-state flag's value, def when unset.
func On(flag *bool, def bool) bool {
	if flag == nil {
		return def
	}
	return *flag
}

// Rule says which refs build, how, and under which tags the image is pushed.
type Rule struct {
	SourceType string            `json:"source_type"`
	Source     string            `json:"source"`
	Tags       []string          `json:"tags"`
	Dockerfile string            `json:"dockerfile,omitempty"`
	Context    string            `json:"context,omitempty"`
	Target     string            `json:"target,omitempty"`
	BuildArgs  map[string]string `json:"build_args,omitempty"`
	// Platforms is a comma-separated list such as "linux/amd64,linux/arm64".
	Platforms    string   `json:"platforms,omitempty"`
	Enabled      *bool    `json:"enabled,omitempty"`
	Cache        *bool    `json:"cache,omitempty"`
	IncludePaths []string `json:"include_paths,omitempty"`
	IgnorePaths  []string `json:"ignore_paths,omitempty"`
	Provenance   bool     `json:"provenance,omitempty"`
	// Test is what to test before anything is pushed.
	Test *Test `json:"test,omitempty"`
	// DeleteOnClose removes a pull request's tags from the registry when
	// the pull request is closed or merged (source_type pull_request).
	DeleteOnClose bool `json:"delete_on_close,omitempty"`
	// SizeWarnIncrease is a percentage such as "20%": a build whose image
	// is more than that larger than the previous build's of the same rule
	// gets a warning (never a failure). Empty warns never.
	SizeWarnIncrease string `json:"size_warn_increase,omitempty"`
}

// Test is a rule's test: a Dockerfile stage built before the image; when
// it fails, nothing is pushed.
type Test struct {
	Target string `json:"target,omitempty"`
}

// Pull request settings of a repository.
const (
	PullRequestsOff      = "off"
	PullRequestsInternal = "internal"
	PullRequestsAll      = "all"
)

// PullRequest is the pull request a build is for.
type PullRequest struct {
	Number int `json:"number"`
	// Head is the head commit; HeadRef the head branch's name.
	Head    string `json:"head"`
	HeadRef string `json:"head_ref,omitempty"`
	// Base is the branch the pull request merges into.
	Base string `json:"base"`
	// Fork says the head branch is in another repository.
	Fork bool `json:"fork"`
	// FetchRef is the ref of the registered repository that holds the
	// head commit (refs/pull/7/head on GitHub): builds clone the
	// registered repository, never the fork's URL from a payload.
	FetchRef string `json:"fetch_ref,omitempty"`
}

// Installation is the GitHub App installation whose token the repository
// uses: its own setting, else the one its pushes came from; 0 for none.
func (r Repo) Installation() int64 {
	if r.InstallationID != 0 {
		return r.InstallationID
	}
	return r.PushInstallationID
}

// WithInstallation is repo with the App installation of build b when the
// repository names none itself.
func (r Repo) WithInstallation(b Build) Repo {
	if r.InstallationID == 0 {
		r.InstallationID = b.InstallationID
	}
	if r.InstallationID == 0 {
		r.InstallationID = r.PushInstallationID
	}
	return r
}

// Hook is an outbound deploy webhook, called on the events it subscribes
// to (by default after every successful push).
type Hook struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
	// Events the hook is sent: EventImagePushed when empty.
	Events []string `json:"events,omitempty"`
	// Format of the payload: FormatDockerHub (the default) or
	// FormatCloudEvents.
	Format string `json:"format,omitempty"`
}

// Events a deploy hook may subscribe to.
const (
	EventImagePushed      = "image.pushed"
	EventBuildFailed      = "build.failed"
	EventBuildStarted     = "build.started"
	EventTestFailed       = "test.failed"
	EventPullRequestBuilt = "pull_request.built"
	FormatDockerHub       = "dockerhub"
	FormatCloudEvents     = "cloudevents"
)

// HookEvents are the events a hook may subscribe to, in the order the API
// lists them.
var HookEvents = []string{EventImagePushed, EventBuildFailed, EventBuildStarted, EventTestFailed, EventPullRequestBuilt}

// KnownEvent reports whether a hook may subscribe to event.
func KnownEvent(event string) bool {
	for _, e := range HookEvents {
		if e == event {
			return true
		}
	}
	return false
}

// HookEvent answers the event a delivery or hook job names: one made before
// hooks had events names none, and was an image push.
func HookEvent(event string) string {
	if event == "" {
		return EventImagePushed
	}
	return event
}

// Wants reports whether the hook subscribes to event.
func (h Hook) Wants(event string) bool {
	if len(h.Events) == 0 {
		return event == EventImagePushed
	}
	for _, e := range h.Events {
		if e == event {
			return true
		}
	}
	return false
}

// Public returns a copy of r without its secrets, for API answers. The
// badge key stays: it shows no more than its readers see.
func (r Repo) Public() Repo {
	r.WebhookSecret, r.Token, r.SSHKey = "", "", ""
	hooks := make([]Hook, len(r.Hooks))
	for i, h := range r.Hooks {
		hooks[i] = Hook{URL: h.URL, Events: h.Events, Format: h.Format}
	}
	r.Hooks = hooks
	return r
}

// Build is one run of one rule against one commit.
type Build struct {
	ID     string `json:"id"`
	RepoID string `json:"repo_id"`
	// Org is the organization of the build's repository when it was made:
	// who may see it, also after the repository is gone.
	Org    string   `json:"organization,omitempty"`
	Ref    string   `json:"ref"`
	Commit string   `json:"commit"`
	Status string   `json:"status"`
	Image  string   `json:"image"`
	Tags   []string `json:"tags"`
	Digest string   `json:"digest,omitempty"`
	// ImageSize is the pushed image's size in bytes: its compressed
	// layers and its config (for a multi-platform image, the platform the
	// image page shows first: linux/amd64, else the first listed).
	ImageSize int64 `json:"image_size,omitempty"`
	// Warnings are what a person should look at in a build that
	// succeeded all the same (an image that grew past its rule's
	// size_warn_increase).
	Warnings []string `json:"warnings,omitempty"`
	Error    string   `json:"error,omitempty"`
	// GaveUp says the build failed because Slipway stopped retrying it
	// after too many attempts that failed for Slipway's own reasons
	// (BuildKit, the store): the fault is not the build's, and the Git host
	// is told "error" rather than "failure".
	GaveUp bool `json:"gave_up,omitempty"`
	// TestFailed says the build failed in its test step, before anything
	// was pushed: hooks hear test.failed as well as build.failed.
	TestFailed bool `json:"test_failed,omitempty"`
	Rule       Rule `json:"rule"`
	// Rules are the indexes of the repository's rules this build serves;
	// rules that build the same thing share one build.
	Rules     []int             `json:"rules,omitempty"`
	BuildArgs map[string]string `json:"build_args,omitempty"`
	Before    string            `json:"before,omitempty"`
	Message   string            `json:"message,omitempty"`
	// DiffFilter says the Git host did not list every changed file, so the
	// worker applies the rule's path filters to a diff of Before..Commit.
	DiffFilter bool `json:"diff_filter,omitempty"`
	// BaseRef is what a new branch is compared with for the path filters:
	// the default branch.
	BaseRef string `json:"base_ref,omitempty"`
	// Reason explains a skipped or cancelled build.
	Reason       string `json:"reason,omitempty"`
	SupersededBy string `json:"superseded_by,omitempty"`
	// SkippedTags were not moved because a newer build of the ref had
	// already pushed them.
	SkippedTags []string `json:"skipped_tags,omitempty"`
	// Seq orders pushes of one ref: a later push has a larger Seq.
	Seq int64 `json:"seq"`
	// RetryingSince is when the build first found its registry
	// unreachable; it is retried until the registry budget is spent.
	RetryingSince   *time.Time `json:"retrying_since,omitempty"`
	CancelRequested bool       `json:"cancel_requested,omitempty"`
	CloneURL        string     `json:"clone_url"`
	Pusher          string     `json:"pusher,omitempty"`
	Trigger         string     `json:"trigger"`
	RebuildOf       string     `json:"rebuild_of,omitempty"`
	// Network is the repository's network setting when the build was
	// made; its RUN steps get that.
	Network string `json:"network,omitempty"`
	// PullRequest is set on a pull request's build.
	PullRequest *PullRequest `json:"pull_request,omitempty"`
	// InstallationID is the GitHub App installation the push came from.
	InstallationID int64      `json:"installation_id,omitempty"`
	DeliveryID     string     `json:"delivery_id,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	Attempts       int        `json:"attempts,omitempty"`
	Deliveries     []Delivery `json:"deliveries,omitempty"`
	// Statuses are the commit statuses posted to the Git host.
	Statuses []StatusPost `json:"statuses,omitempty"`
}

// StatusPost is one commit status sent to the Git host.
type StatusPost struct {
	State string    `json:"state"`
	At    time.Time `json:"at"`
	Error string    `json:"error,omitempty"`
}

// Delivery states of a deploy hook.
const (
	// DeliveryPending is being delivered, or waiting for its next try.
	DeliveryPending = "pending"
	// DeliveryDelivered was answered with a 2xx.
	DeliveryDelivered = "delivered"
	// DeliveryFailed ran out of tries, or its hook or repository is gone.
	DeliveryFailed = "failed"
)

// Delivery records the attempts to call one deploy hook about one event of
// a build.
type Delivery struct {
	Hook int `json:"hook"`
	// Event is what the delivery announces; empty (a delivery made before
	// hooks had events) is EventImagePushed.
	Event     string    `json:"event,omitempty"`
	URL       string    `json:"url"`
	MessageID string    `json:"message_id"`
	Status    string    `json:"status"` // one of the Delivery states
	Attempts  []Attempt `json:"attempts"`
	// Redelivered counts manual redeliveries; the retry schedule starts
	// again at attempt RetryFrom.
	Redelivered int `json:"redelivered,omitempty"`
	RetryFrom   int `json:"retry_from,omitempty"`
}

// Delivery answers the index of the delivery of hook about event in
// b.Deliveries, or -1.
func (b Build) Delivery(hook int, event string) int {
	for i, d := range b.Deliveries {
		if d.Hook == hook && HookEvent(d.Event) == HookEvent(event) {
			return i
		}
	}
	return -1
}

// Pushed reports whether the build pushed its image: a fork's pull request
// is built and tested but never pushed, and a build that pushed nothing has
// no digest.
func (b Build) Pushed() bool {
	fork := b.PullRequest != nil && b.PullRequest.Fork
	return b.Status == StatusSucceeded && b.Digest != "" && !fork
}

// Attempt is one HTTP call to a deploy hook.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// NewID returns a random identifier that is safe in URLs, NATS subjects and
// KV keys.
func NewID() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// BuildQuery picks builds, newest first.
type BuildQuery struct {
	// RepoID is the repository; "" lists every repository's builds, which
	// costs what the store holds.
	RepoID string
	// Status keeps builds in this status only; "" keeps any.
	Status string
	// Before is a build id, the last of the previous page: only builds
	// older than it are listed.
	Before string
	// Limit is the most builds listed; 0 lists all.
	Limit int
	// Keep, when set, drops the builds it refuses (ones the caller may
	// not see); they do not count toward Limit.
	Keep func(Build) (bool, error)
}

// BuildPage is one page of the builds a BuildQuery picks.
type BuildPage struct {
	Builds []Build
	// More says older builds may follow: ask again with Before set to the
	// last build's id.
	More bool
}
