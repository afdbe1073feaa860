package gitlab_test

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/forge/gitlab"
	"github.com/slipway-build/slipway/trigger"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

const (
	zeroSHA = trigger.ZeroSHA
	clone   = "https://gitlab.acme.internal/acme/platform/demo.git"
	head    = "ceac7ba0748011632bdf90ae77cb72d000d3a41e"
)

func fixture(t testing.TB, name string) []byte { return webhooktest.Fixture(t, ".", name) }

// headers are the headers GitLab sends; "" leaves one out.
func headers(event, eventUUID, idempotencyKey string) http.Header {
	h := http.Header{}
	if event != "" {
		h.Set("X-Gitlab-Event", event)
	}
	if eventUUID != "" {
		h.Set("X-Gitlab-Event-UUID", eventUUID)
	}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	h.Set("X-Gitlab-Webhook-UUID", "2c1e5b7a-0d3f-4a9e-8b6c-5f4e3d2c1b0a")
	h.Set("X-Gitlab-Instance", "https://gitlab.acme.internal")
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitLab/17.9.1")
	return h
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		fixture string
		h       http.Header
		want    webhook.Event
	}{
		{
			fixture: "push.json",
			h:       headers("Push Hook", "833f7736-ca57-4438-af70-5a120c3e7f95", "d869c390-69be-4a11-babc-eef377deb9be"),
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "Push Hook",
				// Idempotency-Key survives retries; the event UUID may not.
				DeliveryID: "d869c390-69be-4a11-babc-eef377deb9be",
				Repo:       "acme/platform/demo",
				Pushes: []webhook.Push{{
					Ref: "refs/heads/main", Before: "b4350c218e690f05e4eb45f8cc8466e268dda197", After: head,
					Pusher: "mona", Message: "Bump base image to alpine 3.19\n\nThe old one is out of support.\n",
					CloneURL: clone, DefaultBranch: "main",
					// Both commits are listed: the file list is complete.
					Files:         []string{"health.go", "main.go", "legacy/start.sh", "Dockerfile"},
					FilesComplete: true,
				}},
			},
		},
		{
			// An annotated tag: "after" is the tag object, checkout_sha the
			// commit to build.
			fixture: "tag-push.json",
			h:       headers("Tag Push Hook", "59667013-751b-4c3f-ad77-12ab9d1e921d", ""),
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "Tag Push Hook",
				DeliveryID: "59667013-751b-4c3f-ad77-12ab9d1e921d",
				Repo:       "acme/platform/demo",
				Pushes: []webhook.Push{{
					Ref: "refs/tags/v1.2.0", Before: zeroSHA, After: head,
					Pusher: "release-bot", CloneURL: clone, DefaultBranch: "main",
				}},
			},
		},
		{
			fixture: "push-delete.json",
			h:       headers("Push Hook", "0a515e39-99b2-4307-a355-fb1dffcbd5a6", ""),
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "Push Hook",
				DeliveryID: "0a515e39-99b2-4307-a355-fb1dffcbd5a6",
				Repo:       "acme/platform/demo",
				Pushes: []webhook.Push{{
					Ref: "refs/heads/feature/login", Before: "0bf68c9fb20a63531b37d7914867b45d3ed9f720", After: zeroSHA,
					Deleted: true, Pusher: "mona", CloneURL: clone, DefaultBranch: "main",
				}},
			},
		},
		{
			fixture: "note.json",
			h:       headers("Note Hook", "0ca376d4-9da6-4fdd-994c-08d973fbd43c", ""),
			want: webhook.Event{
				Kind: webhook.KindOther, RawKind: "Note Hook",
				DeliveryID: "0ca376d4-9da6-4fdd-994c-08d973fbd43c",
				Repo:       "acme/platform/demo",
			},
		},
		{
			// System hooks carry push payloads too, but are not project hooks.
			fixture: "push.json",
			h:       headers("System Hook", "470de9c6-affb-4cac-946a-e9cb54923840", ""),
			want: webhook.Event{
				Kind: webhook.KindOther, RawKind: "System Hook",
				DeliveryID: "470de9c6-affb-4cac-946a-e9cb54923840",
				Repo:       "acme/platform/demo",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+"/"+tt.want.RawKind, func(t *testing.T) {
			got, err := gitlab.Webhook{}.Parse(tt.h, fixture(t, tt.fixture))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// pushWith edits push.json's before, commits and total.
func pushWith(t *testing.T, edit func(p map[string]any)) []byte {
	return webhooktest.EditJSON(t, fixture(t, "push.json"), edit)
}

func TestFilesComplete(t *testing.T) {
	commit := func(i int) map[string]any {
		return map[string]any{"id": fmt.Sprintf("%040x", i), "message": "m", "added": []string{fmt.Sprintf("f%d", i)}, "modified": []string{}, "removed": []string{}}
	}
	commits := func(n int) []any {
		var out []any
		for i := 1; i <= n; i++ {
			out = append(out, commit(i))
		}
		return out
	}
	tests := []struct {
		name string
		edit func(p map[string]any)
		want bool
	}{
		{"fixture", func(map[string]any) {}, true},
		{"twenty commits, all listed", func(p map[string]any) { p["commits"], p["total_commits_count"] = commits(20), 20 }, true},
		// GitLab lists 20 of a longer push.
		{"more than listed", func(p map[string]any) { p["commits"], p["total_commits_count"] = commits(20), 21 }, false},
		{"more than twenty listed", func(p map[string]any) { p["commits"], p["total_commits_count"] = commits(21), 21 }, false},
		// A new branch's commits are not its changes against anything.
		{"new branch", func(p map[string]any) { p["before"] = zeroSHA }, false},
		{"no before", func(p map[string]any) { delete(p, "before") }, false},
		// A push that moves a branch back lists no commits.
		{"no commits", func(p map[string]any) { p["commits"], p["total_commits_count"] = []any{}, 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := gitlab.Webhook{}.Parse(headers("Push Hook", "u1", ""), pushWith(t, tt.edit))
			if err != nil {
				t.Fatal(err)
			}
			if got := ev.Pushes[0].FilesComplete; got != tt.want {
				t.Errorf("FilesComplete = %v, want %v (files %v)", got, tt.want, ev.Pushes[0].Files)
			}
		})
	}
}

// A lightweight tag has no checkout_sha different from after; a tag push
// without one keeps after.
func TestParseTagWithoutCheckoutSHA(t *testing.T) {
	body := `{"object_kind":"tag_push","ref":"refs/tags/v0.1.0","before":"` + zeroSHA + `","after":"1111111111111111111111111111111111111111",` +
		`"checkout_sha":null,"user_username":"mona","project":{"path_with_namespace":"acme/platform/demo"},"commits":[],"total_commits_count":0}`
	ev, err := gitlab.Webhook{}.Parse(headers("Tag Push Hook", "u1", ""), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Pushes) != 1 || ev.Pushes[0].After != "1111111111111111111111111111111111111111" {
		t.Fatalf("Pushes = %+v, want one push with after 1111…", ev.Pushes)
	}
}

func TestParseErrors(t *testing.T) {
	push := string(fixture(t, "push.json"))
	tests := []struct {
		name        string
		h           http.Header
		body        string
		wantErrPart string
	}{
		{"no event header", headers("", "u1", "k1"), push, "X-Gitlab-Event"},
		{"no delivery headers", headers("Push Hook", "", ""), push, "Idempotency-Key"},
		{"not json", headers("Push Hook", "u1", ""), "<xml/>", "decode Push Hook payload"},
		{"truncated json", headers("Push Hook", "u1", ""), push[:len(push)/2], "decode Push Hook payload"},
		{"no project", headers("Push Hook", "u1", ""), `{"ref":"refs/heads/main","after":"` + head + `"}`, "path_with_namespace"},
		{"note without project", headers("Note Hook", "u1", ""), `{"object_kind":"note"}`, "path_with_namespace"},
		{"push without ref", headers("Push Hook", "u1", ""), `{"after":"` + head + `","project":{"path_with_namespace":"a/b"}}`, "lacks ref or after"},
		{"push without after", headers("Push Hook", "u1", ""), `{"ref":"refs/heads/main","project":{"path_with_namespace":"a/b"}}`, "lacks ref or after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gitlab.Webhook{}.Parse(tt.h, []byte(tt.body))
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
	const secret = "glwht-3f9c1e7a0b2d4c6e"
	tests := []struct {
		name    string
		token   string // X-Gitlab-Token; "" leaves it out
		secret  string
		wantErr error
	}{
		{"token matches", secret, secret, nil},
		{"missing token", "", secret, webhook.ErrNoSignature},
		{"wrong token", "glwht-3f9c1e7a0b2d4c6f", secret, webhook.ErrBadSignature},
		{"prefix of the secret", secret[:10], secret, webhook.ErrBadSignature},
		{"secret plus more", secret + "x", secret, webhook.ErrBadSignature},
		{"different case", strings.ToUpper(secret), secret, webhook.ErrBadSignature},
		// GitLab sends the token itself, not an HMAC of the body.
		{"hmac of the body", webhook.SignHMAC(fixture(t, "push.json"), secret), secret, webhook.ErrBadSignature},
		{"repository without a secret", "anything", "", webhook.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := headers("Push Hook", "u1", "")
			if tt.token != "" {
				h.Set("X-Gitlab-Token", tt.token)
			}
			if err := (gitlab.Webhook{}).Verify(h, fixture(t, "push.json"), tt.secret); !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
