// Package model holds the records Slipway stores and passes between its
// stages: repositories with their build rules, builds, and deploy deliveries.
package model

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Build states.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Terminal reports whether a build in this status will never change again.
func Terminal(status string) bool {
	switch status {
	case StatusSucceeded, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Repo is a connected Git repository and what to build from it.
type Repo struct {
	ID            string    `json:"id"`
	Provider      string    `json:"provider"`
	FullName      string    `json:"full_name"`
	CloneURL      string    `json:"clone_url,omitempty"`
	WebhookSecret string    `json:"webhook_secret,omitempty"`
	Image         string    `json:"image"`
	Rules         []Rule    `json:"rules"`
	Hooks         []Hook    `json:"hooks,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// Rule says which refs build and under which tags the image is pushed.
type Rule struct {
	SourceType string   `json:"source_type"`
	Source     string   `json:"source"`
	Tags       []string `json:"tags"`
	Dockerfile string   `json:"dockerfile,omitempty"`
	Context    string   `json:"context,omitempty"`
}

// Hook is an outbound deploy webhook, called after every successful build.
type Hook struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

// Public returns a copy of r without its secrets, for API answers.
func (r Repo) Public() Repo {
	r.WebhookSecret = ""
	hooks := make([]Hook, len(r.Hooks))
	for i, h := range r.Hooks {
		hooks[i] = Hook{URL: h.URL}
	}
	r.Hooks = hooks
	return r
}

// Build is one run of one rule against one commit.
type Build struct {
	ID         string     `json:"id"`
	RepoID     string     `json:"repo_id"`
	Ref        string     `json:"ref"`
	Commit     string     `json:"commit"`
	Status     string     `json:"status"`
	Image      string     `json:"image"`
	Tags       []string   `json:"tags"`
	Digest     string     `json:"digest,omitempty"`
	Error      string     `json:"error,omitempty"`
	Rule       Rule       `json:"rule"`
	CloneURL   string     `json:"clone_url"`
	Pusher     string     `json:"pusher,omitempty"`
	Trigger    string     `json:"trigger"`
	DeliveryID string     `json:"delivery_id,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Attempts   int        `json:"attempts,omitempty"`
	Deliveries []Delivery `json:"deliveries,omitempty"`
}

// Delivery records the attempts to call one deploy hook for a build.
type Delivery struct {
	Hook      int       `json:"hook"`
	URL       string    `json:"url"`
	MessageID string    `json:"message_id"`
	Status    string    `json:"status"` // pending, delivered, failed
	Attempts  []Attempt `json:"attempts"`
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
