package deploy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/slipway-build/slipway/model"
)

// EventImagePushed is the event Docker Hub's webhooks announce, and the one
// a hook without events subscribes to.
const EventImagePushed = model.EventImagePushed

// Payload is the deploy webhook body in model.FormatDockerHub. Its shape
// follows Docker Hub's webhook so existing Docker Hub receivers work
// unchanged; Build carries what Docker Hub has no field for. Type names the
// event: image.pushed is Docker Hub's, the others are Slipway's, in the
// same shape.
type Payload struct {
	Type        string     `json:"type"`
	CallbackURL string     `json:"callback_url"`
	PushData    PushData   `json:"push_data"`
	Repository  Repository `json:"repository"`
	Build       BuildInfo  `json:"build"`
}

// PushData describes the push, as in Docker Hub's push_data.
type PushData struct {
	PushedAt int64  `json:"pushed_at"` // unix seconds; when the event happened
	Pusher   string `json:"pusher"`
	Tag      string `json:"tag"`
}

// Repository names the image repository, as in Docker Hub's repository.
type Repository struct {
	RepoName  string `json:"repo_name"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Status    string `json:"status"`
}

// BuildInfo is Slipway's own record of the build that produced the image.
type BuildInfo struct {
	ID     string   `json:"id"`
	Commit string   `json:"commit"`
	Ref    string   `json:"ref"`
	Digest string   `json:"digest"`
	Tags   []string `json:"tags"`
	// Status is the build's as the event saw it (running for
	// build.started); Error and TestFailed tell why a build failed.
	Status      string             `json:"status,omitempty"`
	Error       string             `json:"error,omitempty"`
	TestFailed  bool               `json:"test_failed,omitempty"`
	PullRequest *model.PullRequest `json:"pull_request,omitempty"`
}

// NewPayload encodes the webhook body for a pushed build. publicURL is the
// address receivers can reach Slipway's API at.
func NewPayload(b model.Build, repo model.Repo, publicURL string, pushedAt time.Time) ([]byte, error) {
	body, err := json.Marshal(hubPayload(EventImagePushed, b, repo, publicURL, pushedAt))
	if err != nil {
		return nil, fmt.Errorf("encode webhook payload for build %s: %w", b.ID, err)
	}
	return body, nil
}

// hubPayload is the Docker Hub shaped body announcing event about b.
func hubPayload(event string, b model.Build, repo model.Repo, publicURL string, at time.Time) Payload {
	namespace, name := splitFullName(repo.FullName)
	s := summary(event, b, repo.FullName, repo.ID, publicURL)
	return Payload{
		Type:        event,
		CallbackURL: strings.TrimRight(publicURL, "/") + "/api/v1/builds/" + url.PathEscape(b.ID),
		PushData: PushData{
			PushedAt: at.Unix(),
			Pusher:   b.Pusher,
			Tag:      firstOr(b.Tags, ""),
		},
		Repository: Repository{
			RepoName:  b.Image,
			Name:      name,
			Namespace: namespace,
			Status:    "Active",
		},
		Build: BuildInfo{
			ID: b.ID, Commit: b.Commit, Ref: b.Ref, Digest: s.Digest, Tags: s.Tags,
			Status: s.Status, Error: s.Error, TestFailed: s.TestFailed, PullRequest: s.PullRequest,
		},
	}
}

// splitFullName splits "group/sub/project" into "group/sub" and "project";
// GitLab-style nested groups keep everything but the last element.
func splitFullName(fullName string) (namespace, name string) {
	namespace, name = path.Split(strings.Trim(fullName, "/"))
	return strings.TrimSuffix(namespace, "/"), name
}

func firstOr(s []string, fallback string) string {
	if len(s) == 0 {
		return fallback
	}
	return s[0]
}
