package deploy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-build/slipway/model"
)

// CloudEvents 1.0 structured mode (JSON event format): the attributes and
// the data travel together in one JSON body of this content type.
const (
	CloudEventsSpecVersion = "1.0"
	CloudEventsContentType = "application/cloudevents+json"
	// CloudEventTypePrefix starts every CloudEvents type Slipway sends:
	// build.slipway.image.pushed, build.slipway.build.failed, ...
	CloudEventTypePrefix = "build.slipway."
)

// ContentType is the Content-Type of a hook's payloads in format.
func ContentType(format string) string {
	if format == model.FormatCloudEvents {
		return CloudEventsContentType
	}
	return "application/json"
}

// CloudEventType is the CloudEvents type of one of the hook events.
func CloudEventType(event string) string {
	return CloudEventTypePrefix + model.HookEvent(event)
}

// MessageID names one delivery: the webhook-id header, and the CloudEvents
// id. It differs per build, hook and event so that a receiver that drops
// duplicates by id never drops a build.failed as a copy of the
// build.started before it; it stays the same over a delivery's retries so
// that a receiver can drop those. An image push keeps the id it had before
// hooks had events. Signing forbids '.', so the event's dots become '_'.
func MessageID(buildID string, hook int, event string) string {
	id := "msg_" + buildID + "_" + strconv.Itoa(hook)
	if e := model.HookEvent(event); e != model.EventImagePushed {
		id += "_" + strings.ReplaceAll(e, ".", "_")
	}
	return id
}

// EventTime is when event happened to b: its start for build.started, its
// end for the rest. A record without that time falls back to its creation.
func EventTime(b model.Build, event string) time.Time {
	at := b.FinishedAt
	if model.HookEvent(event) == model.EventBuildStarted {
		at = b.StartedAt
	}
	if at == nil {
		return b.CreatedAt
	}
	return *at
}

// Encode is the body of one delivery of event about b in the hook's format
// (model.FormatDockerHub when empty). msgID is the delivery's message id;
// publicURL the address receivers reach Slipway's API at.
func Encode(format, event, msgID string, b model.Build, repo model.Repo, publicURL string) ([]byte, error) {
	event = model.HookEvent(event)
	at := EventTime(b, event)
	var v any
	switch format {
	case "", model.FormatDockerHub:
		v = hubPayload(event, b, repo, publicURL, at)
	case model.FormatCloudEvents:
		v = NewCloudEvent(event, msgID, b, repo, publicURL, at)
	default:
		return nil, fmt.Errorf("encode %s webhook for build %s: unknown format %q", event, b.ID, format)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s webhook for build %s: %w", event, b.ID, err)
	}
	return body, nil
}

// CloudEvent is a CloudEvents 1.0 event in the JSON event format, with the
// build summary as its data.
type CloudEvent struct {
	SpecVersion     string       `json:"specversion"`
	ID              string       `json:"id"`
	Source          string       `json:"source"`
	Type            string       `json:"type"`
	Subject         string       `json:"subject,omitempty"`
	Time            string       `json:"time"`
	DataContentType string       `json:"datacontenttype"`
	Data            BuildSummary `json:"data"`
}

// BuildSummary is the data of a CloudEvent: the build as the event saw it.
type BuildSummary struct {
	Repo    string `json:"repo"`
	RepoID  string `json:"repo_id"`
	BuildID string `json:"build_id"`
	// URL is the build's record in Slipway's API.
	URL    string   `json:"url"`
	Ref    string   `json:"ref"`
	Commit string   `json:"commit"`
	Image  string   `json:"image"`
	Tags   []string `json:"tags"`
	Digest string   `json:"digest,omitempty"`
	Status string   `json:"status"`
	Error  string   `json:"error,omitempty"`
	// TestFailed says a failed build failed in its test step.
	TestFailed  bool               `json:"test_failed,omitempty"`
	PullRequest *model.PullRequest `json:"pull_request,omitempty"`
}

// NewCloudEvent is the CloudEvent announcing event about b. Its source is
// the repository in Slipway's API, its subject the pushed image (by
// digest) for image.pushed and the build id for every other event.
func NewCloudEvent(event, msgID string, b model.Build, repo model.Repo, publicURL string, at time.Time) CloudEvent {
	event = model.HookEvent(event)
	repoID := repo.ID
	if repoID == "" {
		repoID = b.RepoID
	}
	subject := b.ID
	if event == model.EventImagePushed && b.Digest != "" {
		subject = b.Image + "@" + b.Digest
	}
	return CloudEvent{
		SpecVersion:     CloudEventsSpecVersion,
		ID:              msgID,
		Source:          apiURL(publicURL, "repos", repoID),
		Type:            CloudEventType(event),
		Subject:         subject,
		Time:            at.UTC().Format(time.RFC3339),
		DataContentType: "application/json",
		Data:            summary(event, b, repo.FullName, repoID, publicURL),
	}
}

// summary is b as event saw it. A build.started delivery may be sent (or
// sent again) after the build ended: it still says running, with nothing
// of the end.
func summary(event string, b model.Build, fullName, repoID, publicURL string) BuildSummary {
	s := BuildSummary{
		Repo: fullName, RepoID: repoID, BuildID: b.ID, URL: apiURL(publicURL, "builds", b.ID),
		Ref: b.Ref, Commit: b.Commit, Image: b.Image,
		// Receivers iterate this; an empty list must not arrive as null.
		Tags:   append([]string{}, b.Tags...),
		Digest: b.Digest, Status: b.Status, Error: b.Error, TestFailed: b.TestFailed,
		PullRequest: b.PullRequest,
	}
	if event == model.EventBuildStarted {
		s.Status, s.Digest, s.Error, s.TestFailed = model.StatusRunning, "", "", false
	}
	return s
}

// apiURL is the address of one record in Slipway's API.
func apiURL(publicURL, kind, id string) string {
	return strings.TrimRight(publicURL, "/") + "/api/v1/" + kind + "/" + url.PathEscape(id)
}
