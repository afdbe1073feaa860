// Package forge talks to the Git hosts' own HTTP APIs: commit statuses,
// repository facts and webhook creation. Each host has one folder below
// this one holding both its Forge (the API client) and its webhook.Provider
// (the adapter that reads the webhooks it sends); package hosts lists them.
package forge

import (
	"context"
	"errors"
	"net/http"
)

// State is a build state as a commit status.
type State string

// States a build reports; each host maps them to its own words.
const (
	Pending   State = "pending"   // queued
	Running   State = "running"   // building
	Success   State = "success"   // image pushed
	Failure   State = "failure"   // the build failed (Dockerfile, clone)
	Error     State = "error"     // Slipway could not finish it
	Cancelled State = "cancelled" // cancelled or superseded
)

// Conn is how to reach one repository on its host.
type Conn struct {
	// APIURL is the host's API root, e.g. https://api.github.com/,
	// https://gitlab.example.com/api/v4, https://bitbucket.org/!api/2.0,
	// https://gitea.example.com/api/v1. Empty means the public host's.
	APIURL string
	// FullName is owner/name (GitLab: the path with namespace; Bitbucket
	// Data Center: PROJECT/repo).
	FullName string
	// Token authenticates API calls: a personal or app installation token
	// (GitHub, Gitea, GitLab), an app password as "user:password" or an
	// access token (Bitbucket).
	Token string
	// HTTP sends the requests; nil means a client with a 30 s timeout.
	HTTP *http.Client
}

// DefaultKey names a commit status whose Status.Key is empty.
const DefaultKey = "slipway"

// Status is one commit status.
type Status struct {
	Commit string
	State  State
	// Key tells apart several statuses of one commit (one per rule), e.g.
	// "slipway/latest".
	Key         string
	Description string // at most 140 characters
	URL         string // link to the build
}

// Repo is what connecting a repository needs to know.
type Repo struct {
	FullName      string
	DefaultBranch string
	CloneURL      string // HTTPS
	Private       bool
}

// Hook is a webhook on the host.
type Hook struct {
	ID  string
	URL string
}

// Forge is one Git host's API.
type Forge interface {
	// Name is the provider name used in repositories and /hooks/{name}.
	Name() string
	// SetStatus posts a commit status.
	SetStatus(ctx context.Context, c Conn, s Status) error
	// Repo reads the repository.
	Repo(ctx context.Context, c Conn) (Repo, error)
	// CreateHook adds a push webhook that posts JSON to url, signed with
	// secret.
	CreateHook(ctx context.Context, c Conn, url, secret string) (Hook, error)
	// DeleteHook removes a webhook CreateHook made.
	DeleteHook(ctx context.Context, c Conn, id string) error
}

// ErrUnauthorized means the host refused the token.
var ErrUnauthorized = errors.New("the Git host refused the credentials")

// Describe shortens a description to the 140 characters hosts accept.
func Describe(s string) string {
	r := []rune(s)
	if len(r) <= 140 {
		return s
	}
	return string(r[:139]) + "…"
}
