package deploy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/deploy/cloudeventstest"
	"github.com/slipway-build/slipway/model"
)

var (
	eventStarted  = time.Date(2025, 3, 1, 11, 58, 0, 0, time.UTC)
	eventFinished = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

// eventBuild is a finished build as the store holds it.
func eventBuild(status string) model.Build {
	b := model.Build{
		ID: "b1c2", RepoID: "r9", Ref: "refs/heads/main", Commit: "0123456789abcdef",
		Image: "registry.example.com/acme/web", Tags: []string{"main"}, Status: status,
		StartedAt: &eventStarted, FinishedAt: &eventFinished, Pusher: "alice",
	}
	switch status {
	case model.StatusSucceeded:
		b.Digest = "sha256:feed"
	case model.StatusFailed:
		b.Error = "build: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"
	}
	return b
}

var eventRepo = model.Repo{ID: "r9", FullName: "acme/web"}

// The bodies are compared as written out, so that a renamed or dropped key
// fails here before a receiver notices.
func TestEncodeCloudEvents(t *testing.T) {
	pr := eventBuild(model.StatusSucceeded)
	pr.PullRequest = &model.PullRequest{Number: 7, Head: "0123456789abcdef", HeadRef: "feature", Base: "main", FetchRef: "refs/pull/7/head"}
	tests := []struct {
		name, event, msgID string
		build              model.Build
		want               string
	}{
		{
			name: "image pushed", event: model.EventImagePushed, msgID: "msg_b1c2_0",
			build: eventBuild(model.StatusSucceeded),
			want: `{"specversion":"1.0","id":"msg_b1c2_0","source":"https://ci.example.com/api/v1/repos/r9",` +
				`"type":"build.slipway.image.pushed","subject":"registry.example.com/acme/web@sha256:feed",` +
				`"time":"2025-03-01T12:00:00Z","datacontenttype":"application/json",` +
				`"data":{"repo":"acme/web","repo_id":"r9","build_id":"b1c2","url":"https://ci.example.com/api/v1/builds/b1c2",` +
				`"ref":"refs/heads/main","commit":"0123456789abcdef","image":"registry.example.com/acme/web",` +
				`"tags":["main"],"digest":"sha256:feed","status":"succeeded"}}`,
		},
		{
			name: "build failed", event: model.EventBuildFailed, msgID: "msg_b1c2_1_build_failed",
			build: eventBuild(model.StatusFailed),
			want: `{"specversion":"1.0","id":"msg_b1c2_1_build_failed","source":"https://ci.example.com/api/v1/repos/r9",` +
				`"type":"build.slipway.build.failed","subject":"b1c2",` +
				`"time":"2025-03-01T12:00:00Z","datacontenttype":"application/json",` +
				`"data":{"repo":"acme/web","repo_id":"r9","build_id":"b1c2","url":"https://ci.example.com/api/v1/builds/b1c2",` +
				`"ref":"refs/heads/main","commit":"0123456789abcdef","image":"registry.example.com/acme/web",` +
				`"tags":["main"],"status":"failed",` +
				`"error":"build: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"}}`,
		},
		{
			// Sent after the build failed: it still tells of the start.
			name: "build started, delivered late", event: model.EventBuildStarted, msgID: "msg_b1c2_0_build_started",
			build: eventBuild(model.StatusFailed),
			want: `{"specversion":"1.0","id":"msg_b1c2_0_build_started","source":"https://ci.example.com/api/v1/repos/r9",` +
				`"type":"build.slipway.build.started","subject":"b1c2",` +
				`"time":"2025-03-01T11:58:00Z","datacontenttype":"application/json",` +
				`"data":{"repo":"acme/web","repo_id":"r9","build_id":"b1c2","url":"https://ci.example.com/api/v1/builds/b1c2",` +
				`"ref":"refs/heads/main","commit":"0123456789abcdef","image":"registry.example.com/acme/web",` +
				`"tags":["main"],"status":"running"}}`,
		},
		{
			name: "pull request built", event: model.EventPullRequestBuilt, msgID: "msg_b1c2_0_pull_request_built",
			build: pr,
			want: `{"specversion":"1.0","id":"msg_b1c2_0_pull_request_built","source":"https://ci.example.com/api/v1/repos/r9",` +
				`"type":"build.slipway.pull_request.built","subject":"b1c2",` +
				`"time":"2025-03-01T12:00:00Z","datacontenttype":"application/json",` +
				`"data":{"repo":"acme/web","repo_id":"r9","build_id":"b1c2","url":"https://ci.example.com/api/v1/builds/b1c2",` +
				`"ref":"refs/heads/main","commit":"0123456789abcdef","image":"registry.example.com/acme/web",` +
				`"tags":["main"],"digest":"sha256:feed","status":"succeeded",` +
				`"pull_request":{"number":7,"head":"0123456789abcdef","head_ref":"feature","base":"main","fork":false,"fetch_ref":"refs/pull/7/head"}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := Encode(model.FormatCloudEvents, tt.event, tt.msgID, tt.build, eventRepo, "https://ci.example.com/")
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != tt.want {
				t.Errorf("body\n got %s\nwant %s", body, tt.want)
			}
			if err := cloudeventstest.Validate(body); err != nil {
				t.Errorf("schema: %v", err)
			}
		})
	}
}

func TestEncodeCloudEventsTestFailed(t *testing.T) {
	b := eventBuild(model.StatusFailed)
	b.TestFailed, b.Error, b.Tags = true, "test: exit code: 1", nil
	body, err := Encode(model.FormatCloudEvents, model.EventTestFailed, "msg_b1c2_0_test_failed", b, eventRepo, "http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"specversion":"1.0","id":"msg_b1c2_0_test_failed","source":"http://127.0.0.1:8080/api/v1/repos/r9",` +
		`"type":"build.slipway.test.failed","subject":"b1c2",` +
		`"time":"2025-03-01T12:00:00Z","datacontenttype":"application/json",` +
		`"data":{"repo":"acme/web","repo_id":"r9","build_id":"b1c2","url":"http://127.0.0.1:8080/api/v1/builds/b1c2",` +
		`"ref":"refs/heads/main","commit":"0123456789abcdef","image":"registry.example.com/acme/web",` +
		`"tags":[],"status":"failed","error":"test: exit code: 1","test_failed":true}}`
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
	if err := cloudeventstest.Validate(body); err != nil {
		t.Errorf("schema: %v", err)
	}
}

// The schema check must be able to fail, or the tests above prove nothing.
func TestCloudEventsSchemaRejects(t *testing.T) {
	tests := map[string]string{
		"no specversion":    `{"id":"1","source":"/r","type":"t"}`,
		"empty id":          `{"specversion":"1.0","id":"","source":"/r","type":"t"}`,
		"source not a URI":  `{"specversion":"1.0","id":"1","source":"http://a b/%zz","type":"t"}`,
		"time not RFC 3339": `{"specversion":"1.0","id":"1","source":"/r","type":"t","time":"2025-03-01 12:00"}`,
		"empty time":        `{"specversion":"1.0","id":"1","source":"/r","type":"t","time":""}`,
	}
	for name, body := range tests {
		if err := cloudeventstest.Validate([]byte(body)); err == nil {
			t.Errorf("%s: %s passed the schema", name, body)
		}
	}
}

func TestEncodeDockerHubBuildFailed(t *testing.T) {
	b := eventBuild(model.StatusFailed)
	b.TestFailed = true
	body, err := Encode("", model.EventBuildFailed, "msg_b1c2_0_build_failed", b, eventRepo, "https://ci.example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"build.failed","callback_url":"https://ci.example.com/api/v1/builds/b1c2",` +
		`"push_data":{"pushed_at":1740830400,"pusher":"alice","tag":"main"},` +
		`"repository":{"repo_name":"registry.example.com/acme/web","name":"web","namespace":"acme","status":"Active"},` +
		`"build":{"id":"b1c2","commit":"0123456789abcdef","ref":"refs/heads/main","digest":"","tags":["main"],` +
		`"status":"failed","error":"build: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3","test_failed":true}}`
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
}

// The Docker Hub image.pushed body is NewPayload's, byte for byte: hooks
// without a format get what they got before hooks had events.
func TestEncodeDockerHubImagePushedIsNewPayload(t *testing.T) {
	b := eventBuild(model.StatusSucceeded)
	got, err := Encode(model.FormatDockerHub, "", "msg_b1c2_0", b, eventRepo, "https://ci.example.com")
	if err != nil {
		t.Fatal(err)
	}
	want, err := NewPayload(b, eventRepo, "https://ci.example.com", eventFinished)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Encode\n got %s\nwant %s", got, want)
	}
}

func TestEncodeUnknownFormat(t *testing.T) {
	_, err := Encode("xml", model.EventImagePushed, "msg_b1c2_0", eventBuild(model.StatusSucceeded), eventRepo, "")
	if err == nil || !strings.Contains(err.Error(), `unknown format "xml"`) {
		t.Errorf("err = %v, want unknown format", err)
	}
}

func TestMessageID(t *testing.T) {
	tests := []struct {
		event string
		hook  int
		want  string
	}{
		{"", 0, "msg_b1_0"},
		{model.EventImagePushed, 2, "msg_b1_2"},
		{model.EventBuildFailed, 0, "msg_b1_0_build_failed"},
		{model.EventBuildStarted, 0, "msg_b1_0_build_started"},
		{model.EventTestFailed, 1, "msg_b1_1_test_failed"},
		{model.EventPullRequestBuilt, 0, "msg_b1_0_pull_request_built"},
	}
	for _, tt := range tests {
		got := MessageID("b1", tt.hook, tt.event)
		if got != tt.want {
			t.Errorf("MessageID(b1, %d, %q) = %q, want %q", tt.hook, tt.event, got, tt.want)
		}
		if _, err := Sign(vectorSecret, got, time.Unix(vectorTimestamp, 0), nil); err != nil {
			t.Errorf("MessageID %q cannot be signed: %v", got, err)
		}
	}
}

func TestSendCloudEventsContentType(t *testing.T) {
	var got http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	hook := model.Hook{URL: srv.URL, Secret: vectorSecret, Format: model.FormatCloudEvents}
	sent := []byte(`{"specversion":"1.0"}`)
	now := time.Now()
	if a := (Sender{}).Send(t.Context(), hook, "msg_b1_0_build_failed", sent, now); !Succeeded(a) {
		t.Fatalf("attempt %+v", a)
	}
	if ct := got.Get("Content-Type"); ct != "application/cloudevents+json" {
		t.Errorf("Content-Type %q, want application/cloudevents+json", ct)
	}
	if err := Verify(vectorSecret, got, body, time.Minute, now); err != nil {
		t.Errorf("CloudEvents delivery must be signed like any other: %v", err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(body, &decoded); err != nil || decoded["specversion"] != "1.0" {
		t.Errorf("body arrived as %s (%v)", body, err)
	}
}
