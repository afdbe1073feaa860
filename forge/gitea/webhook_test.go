package gitea_test

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/forge/gitea"
	"github.com/slipway-build/slipway/trigger"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

const (
	zeroSHA = trigger.ZeroSHA
	head    = "c490155e19b789dfcc86c2ed12d81eb6e88cb9d9"
	message = "Bump base image to alpine 3.19\n\nThe old one is out of support.\n"
)

func fixture(t testing.TB, name string) []byte { return webhooktest.Fixture(t, ".", name) }

// giteaHeaders are what Gitea sends: its own headers, and Gogs' and
// GitHub's for compatibility. "" leaves Gitea's own out.
func giteaHeaders(event, delivery string) http.Header {
	h := http.Header{}
	if event != "" {
		h.Set("X-Gitea-Event", event)
		h.Set("X-Gitea-Event-Type", event)
	}
	if delivery != "" {
		h.Set("X-Gitea-Delivery", delivery)
	}
	h.Set("X-Gogs-Event", event)
	h.Set("X-Gogs-Delivery", delivery)
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", delivery)
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Go-http-client/1.1")
	return h
}

// forgejoHeaders are Forgejo's own headers only, so that reading them is
// what is tested.
func forgejoHeaders(event, delivery string) http.Header {
	h := http.Header{}
	h.Set("X-Forgejo-Event", event)
	h.Set("X-Forgejo-Event-Type", event)
	h.Set("X-Forgejo-Delivery", delivery)
	h.Set("Content-Type", "application/json")
	return h
}

func TestParseFixtures(t *testing.T) {
	branchPush := func(delivery, cloneURL string) webhook.Event {
		return webhook.Event{
			Kind: webhook.KindPush, RawKind: "push", DeliveryID: delivery, Repo: "acme/demo",
			Pushes: []webhook.Push{{
				Ref: "refs/heads/main", Before: "43871092b6e31984356bd2349e6d3f16d21893ad", After: head,
				Pusher: "mona", Message: message, CloneURL: cloneURL, DefaultBranch: "main",
				// Gitea lists the newest commit first.
				Files:         []string{"legacy/start.sh", "Dockerfile", "main.go", "health.go"},
				FilesComplete: true,
			}},
		}
	}
	tests := []struct {
		name    string
		fixture string
		h       http.Header
		want    webhook.Event
	}{
		{
			name: "push", fixture: "push.json",
			h:    giteaHeaders("push", "59667013-751b-4c3f-ad77-12ab9d1e921d"),
			want: branchPush("59667013-751b-4c3f-ad77-12ab9d1e921d", "https://gitea.acme.internal/acme/demo.git"),
		},
		{
			name: "push from forgejo", fixture: "push-forgejo.json",
			h:    forgejoHeaders("push", "0a515e39-99b2-4307-a355-fb1dffcbd5a6"),
			want: branchPush("0a515e39-99b2-4307-a355-fb1dffcbd5a6", "https://forgejo.acme.internal/acme/demo.git"),
		},
		{
			// An annotated tag: "after" is the tag object, head_commit the
			// commit to build.
			name: "tag push", fixture: "push-tag.json",
			h: giteaHeaders("push", "0ca376d4-9da6-4fdd-994c-08d973fbd43c"),
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "push", DeliveryID: "0ca376d4-9da6-4fdd-994c-08d973fbd43c", Repo: "acme/demo",
				Pushes: []webhook.Push{{
					Ref: "refs/tags/v1.2.0", Before: zeroSHA, After: head, Pusher: "release-bot", Message: message,
					CloneURL: "https://gitea.acme.internal/acme/demo.git", DefaultBranch: "main",
				}},
			},
		},
		{
			// Gitea sends a push event for a deleted tag (a deleted branch
			// only gets a delete event).
			name: "tag deleted", fixture: "push-delete.json",
			h: giteaHeaders("push", "470de9c6-affb-4cac-946a-e9cb54923840"),
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "push", DeliveryID: "470de9c6-affb-4cac-946a-e9cb54923840", Repo: "acme/demo",
				Pushes: []webhook.Push{{
					Ref: "refs/tags/v1.2.0", Before: "1d95f36434184acfba210059cc8b7828eefc6b04", After: zeroSHA, Deleted: true,
					Pusher: "release-bot", CloneURL: "https://gitea.acme.internal/acme/demo.git", DefaultBranch: "main",
				}},
			},
		},
		{
			name: "delete event", fixture: "delete-branch.json",
			h: giteaHeaders("delete", "8d49b481-504c-4ee9-aa39-d6b8b858f36c"),
			want: webhook.Event{
				Kind: webhook.KindOther, RawKind: "delete", DeliveryID: "8d49b481-504c-4ee9-aa39-d6b8b858f36c", Repo: "acme/demo",
			},
		},
		{
			// A create event accompanies a new ref's push event.
			name: "create event", fixture: "push-tag.json",
			h: forgejoHeaders("create", "735d49d4-e229-450a-a667-db2783704ca0"),
			want: webhook.Event{
				Kind: webhook.KindOther, RawKind: "create", DeliveryID: "735d49d4-e229-450a-a667-db2783704ca0", Repo: "acme/demo",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gitea.Webhook{}.Parse(tt.h, fixture(t, tt.fixture))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// pushWith edits push.json.
func pushWith(t *testing.T, edit func(p map[string]any)) []byte {
	return webhooktest.EditJSON(t, fixture(t, "push.json"), edit)
}

func TestParseVariants(t *testing.T) {
	tests := []struct {
		name         string
		edit         func(p map[string]any)
		wantPusher   string
		wantComplete bool
	}{
		{"fixture", func(map[string]any) {}, "mona", true},
		// Gitea lists the newest few commits (FEED_MAX_COMMIT_NUM, 5).
		{"truncated commit list", func(p map[string]any) { p["total_commits"] = 7 }, "mona", false},
		// Without a count the list cannot be known to be whole.
		{"no total", func(p map[string]any) { delete(p, "total_commits") }, "mona", false},
		// A new branch lists the commits before its head, not its changes.
		{"new branch", func(p map[string]any) { p["before"] = zeroSHA }, "mona", false},
		{"no commits", func(p map[string]any) { p["commits"], p["total_commits"] = []any{}, 0 }, "mona", false},
		{"pusher without login", func(p map[string]any) {
			p["pusher"] = map[string]any{"id": 5, "username": "mona-u"}
		}, "mona-u", true},
		{"no pusher", func(p map[string]any) { p["pusher"] = nil }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := gitea.Webhook{}.Parse(giteaHeaders("push", "d1"), pushWith(t, tt.edit))
			if err != nil {
				t.Fatal(err)
			}
			p := ev.Pushes[0]
			if p.Pusher != tt.wantPusher || p.FilesComplete != tt.wantComplete {
				t.Errorf("pusher, complete = %q, %v; want %q, %v", p.Pusher, p.FilesComplete, tt.wantPusher, tt.wantComplete)
			}
		})
	}
}

// Forgejo sends Gitea's headers as well as its own; its own win.
func TestParsePrefersForgejoHeaders(t *testing.T) {
	h := forgejoHeaders("push", "forgejo-id")
	h.Set("X-Gitea-Event", "push")
	h.Set("X-Gitea-Delivery", "gitea-id")
	ev, err := gitea.Webhook{}.Parse(h, fixture(t, "push-forgejo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.DeliveryID != "forgejo-id" {
		t.Errorf("DeliveryID = %q, want forgejo-id", ev.DeliveryID)
	}
}

func TestParseErrors(t *testing.T) {
	push := string(fixture(t, "push.json"))
	githubOnly := http.Header{}
	githubOnly.Set("X-GitHub-Event", "push")
	githubOnly.Set("X-GitHub-Delivery", "d1")
	tests := []struct {
		name        string
		h           http.Header
		body        string
		wantErrPart string
	}{
		{"no event header", giteaHeaders("", "d1"), push, "X-Gitea-Event"},
		{"github headers only", githubOnly, push, "X-Gitea-Event"},
		{"no delivery header", giteaHeaders("push", ""), push, "X-Gitea-Delivery"},
		{"not json", giteaHeaders("push", "d1"), "<xml/>", "decode push payload"},
		{"truncated json", giteaHeaders("push", "d1"), push[:len(push)/2], "decode push payload"},
		{"no repository", giteaHeaders("push", "d1"), `{"ref":"refs/heads/main","after":"` + head + `"}`, "repository.full_name"},
		{"push without ref", giteaHeaders("push", "d1"), `{"after":"` + head + `","repository":{"full_name":"acme/demo"}}`, "lacks ref or after"},
		{"push without after", giteaHeaders("push", "d1"), `{"ref":"refs/heads/main","repository":{"full_name":"acme/demo"}}`, "lacks ref or after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gitea.Webhook{}.Parse(tt.h, []byte(tt.body))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantErrPart) {
				t.Errorf("error %q does not mention %q", err, tt.wantErrPart)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	const secret = "It's a Secret to Everybody"
	body := fixture(t, "push.json")
	sig := webhook.SignHMAC(body, secret)
	tampered := []byte(strings.Replace(string(body), `"refs/heads/main"`, `"refs/heads/mainx"`, 1))
	tests := []struct {
		name    string
		headers map[string]string
		body    []byte
		wantErr error
	}{
		{"known vector", map[string]string{"X-Gitea-Signature": "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}, []byte("Hello, World!"), nil},
		{"gitea signature", map[string]string{"X-Gitea-Signature": sig}, body, nil},
		{"forgejo signature", map[string]string{"X-Forgejo-Signature": sig}, body, nil},
		{"forgejo's own header is the one checked", map[string]string{"X-Forgejo-Signature": webhook.SignHMAC(body, "guess"), "X-Gitea-Signature": sig}, body, webhook.ErrBadSignature},
		{"wrong secret", map[string]string{"X-Gitea-Signature": webhook.SignHMAC(body, "guess")}, body, webhook.ErrBadSignature},
		{"tampered body", map[string]string{"X-Gitea-Signature": sig}, tampered, webhook.ErrBadSignature},
		{"unsigned", nil, body, webhook.ErrNoSignature},
		// GitHub's header alone is not Gitea's signature.
		{"github header only", map[string]string{"X-Hub-Signature-256": "sha256=" + sig}, body, webhook.ErrNoSignature},
		// Gitea's signature has no prefix.
		{"sha256= prefix", map[string]string{"X-Gitea-Signature": "sha256=" + sig}, body, webhook.ErrBadSignature},
		{"truncated", map[string]string{"X-Gitea-Signature": sig[:40]}, body, webhook.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := giteaHeaders("push", "d1")
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			if err := (gitea.Webhook{}).Verify(h, tt.body, secret); !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
