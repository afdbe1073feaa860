package deploy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
)

func TestNewPayload(t *testing.T) {
	pushed := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	build := model.Build{
		ID:     "b1c2",
		Ref:    "refs/heads/main",
		Commit: "0123456789abcdef",
		Image:  "registry.example.com/acme/web",
		Tags:   []string{"main", "sha-0123456"},
		Digest: "sha256:feed",
		Pusher: "alice",
	}
	tests := []struct {
		name      string
		fullName  string
		publicURL string
		tags      []string
		want      Payload
	}{
		{
			name: "github repo", fullName: "acme/web", publicURL: "https://ci.example.com/",
			tags: build.Tags,
			want: Payload{
				Type:        "image.pushed",
				CallbackURL: "https://ci.example.com/api/v1/builds/b1c2",
				PushData:    PushData{PushedAt: pushed.Unix(), Pusher: "alice", Tag: "main"},
				Repository: Repository{RepoName: "registry.example.com/acme/web",
					Name: "web", Namespace: "acme", Status: "Active"},
				Build: BuildInfo{ID: "b1c2", Commit: "0123456789abcdef", Ref: "refs/heads/main",
					Digest: "sha256:feed", Tags: []string{"main", "sha-0123456"}},
			},
		},
		{
			name: "nested gitlab group, no tags", fullName: "acme/platform/web",
			publicURL: "http://slipway:8080", tags: nil,
			want: Payload{
				Type:        "image.pushed",
				CallbackURL: "http://slipway:8080/api/v1/builds/b1c2",
				PushData:    PushData{PushedAt: pushed.Unix(), Pusher: "alice", Tag: ""},
				Repository: Repository{RepoName: "registry.example.com/acme/web",
					Name: "web", Namespace: "acme/platform", Status: "Active"},
				Build: BuildInfo{ID: "b1c2", Commit: "0123456789abcdef", Ref: "refs/heads/main",
					Digest: "sha256:feed", Tags: []string{}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := build
			b.Tags = tt.tags
			body, err := NewPayload(b, model.Repo{FullName: tt.fullName}, tt.publicURL, pushed)
			if err != nil {
				t.Fatal(err)
			}
			var got Payload
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("payload\n got %+v\nwant %+v", got, tt.want)
			}
			if !strings.Contains(string(body), `"tags":[`) {
				t.Errorf("build.tags must be a JSON list, got %s", body)
			}
		})
	}
}

// A Docker Hub receiver knows nothing of our types; it reads these keys.
func TestPayloadHasDockerHubKeys(t *testing.T) {
	body, err := NewPayload(model.Build{ID: "b1", Image: "acme/web", Tags: []string{"v1"}, Pusher: "bob"},
		model.Repo{FullName: "acme/web"}, "https://ci.example.com", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		path []string
		want any
	}{
		{[]string{"type"}, "image.pushed"},
		{[]string{"callback_url"}, "https://ci.example.com/api/v1/builds/b1"},
		{[]string{"push_data", "pushed_at"}, float64(1700000000)},
		{[]string{"push_data", "pusher"}, "bob"},
		{[]string{"push_data", "tag"}, "v1"},
		{[]string{"repository", "repo_name"}, "acme/web"},
		{[]string{"repository", "name"}, "web"},
		{[]string{"repository", "namespace"}, "acme"},
		{[]string{"repository", "status"}, "Active"},
		{[]string{"build", "id"}, "b1"},
	}
	for _, c := range checks {
		var got any = doc
		for _, key := range c.path {
			obj, _ := got.(map[string]any)
			got = obj[key]
		}
		if got != c.want {
			t.Errorf("%s = %#v, want %#v", strings.Join(c.path, "."), got, c.want)
		}
	}
}
