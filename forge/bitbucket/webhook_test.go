package bitbucket_test

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/forge/bitbucket"
	"github.com/slipway-build/slipway/trigger"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

const (
	zeroSHA     = trigger.ZeroSHA
	cloudClone  = "https://bitbucket.org/acme/demo.git"
	serverClone = "https://bitbucket.acme.internal/scm/acme/demo.git"
)

func fixture(t testing.TB, name string) []byte { return webhooktest.Fixture(t, ".", name) }

// cloudHeaders are the headers Bitbucket Cloud sends; "" leaves one out.
func cloudHeaders(event, delivery string) http.Header {
	h := http.Header{}
	if event != "" {
		h.Set("X-Event-Key", event)
	}
	if delivery != "" {
		h.Set("X-Request-UUID", delivery)
	}
	h.Set("X-Hook-UUID", "4f9b1c2e-7d3a-4e8f-9a0b-1c2d3e4f5a6b")
	h.Set("X-Attempt-Number", "1")
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Bitbucket-Webhooks/2.0")
	return h
}

// serverHeaders are the headers Bitbucket Data Center sends.
func serverHeaders(event, delivery string) http.Header {
	h := http.Header{}
	if event != "" {
		h.Set("X-Event-Key", event)
	}
	if delivery != "" {
		h.Set("X-Request-Id", delivery)
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "Atlassian HttpClient 4.2.0 / Bitbucket-8.19.1 (8019001) / Default")
	return h
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		fixture string
		h       http.Header
		want    webhook.Event
	}{
		{
			// One delivery, two branches pushed at once: two pushes.
			fixture: "cloud-push-branch.json",
			h:       cloudHeaders("repo:push", "59667013-751b-4c3f-ad77-12ab9d1e921d"),
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "repo:push", Provider: "bitbucket",
				DeliveryID: "59667013-751b-4c3f-ad77-12ab9d1e921d", Repo: "acme/demo",
				Pushes: []webhook.Push{
					{
						Ref: "refs/heads/main", Before: "5307b37aa644658bdeda7954678577fa748cfbd4",
						After: "11acffe8a01f38ff6c91ec4ac7960db25f9267a5", Pusher: "Mona Lisa",
						Message:  "Bump base image to alpine 3.19\n\nThe old one is out of support.\n",
						CloneURL: cloudClone,
					},
					{
						Ref: "refs/heads/release", Before: "9ee72fc91dc771f75f2de818df0f0dc7bd2b187c",
						After: "584764b7ebee6c3b664d6662e2e27cd05daa9bc8", Pusher: "Mona Lisa",
						Message: "Fix health check timeout\n", CloneURL: cloudClone,
					},
				},
			},
		},
		{
			// An annotated tag: Cloud's target is already the commit.
			fixture: "cloud-push-tag.json",
			h:       cloudHeaders("repo:push", "0a515e39-99b2-4307-a355-fb1dffcbd5a6"),
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "repo:push", Provider: "bitbucket",
				DeliveryID: "0a515e39-99b2-4307-a355-fb1dffcbd5a6", Repo: "acme/demo",
				Pushes: []webhook.Push{{
					Ref: "refs/tags/v1.2.0", Before: zeroSHA,
					After: "11acffe8a01f38ff6c91ec4ac7960db25f9267a5", Pusher: "Release Bot",
					Message:  "Bump base image to alpine 3.19\n\nThe old one is out of support.\n",
					CloneURL: cloudClone,
				}},
			},
		},
		{
			fixture: "cloud-push-delete.json",
			h:       cloudHeaders("repo:push", "0ca376d4-9da6-4fdd-994c-08d973fbd43c"),
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "repo:push", Provider: "bitbucket",
				DeliveryID: "0ca376d4-9da6-4fdd-994c-08d973fbd43c", Repo: "acme/demo",
				Pushes: []webhook.Push{{
					Ref: "refs/heads/feature/login", Before: "86583542575de998495c62455f789cbe9883426e",
					After: zeroSHA, Deleted: true, Pusher: "Mona Lisa", CloneURL: cloudClone,
				}},
			},
		},
		{
			fixture: "server-refs-changed.json",
			h:       serverHeaders("repo:refs_changed", "470de9c6-affb-4cac-946a-e9cb54923840"),
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "repo:refs_changed", Provider: "bitbucket-server",
				DeliveryID: "470de9c6-affb-4cac-946a-e9cb54923840", Repo: "ACME/demo",
				Pushes: []webhook.Push{{
					Ref: "refs/heads/main", Before: "33db3cce2e896760fdf92c9d6c3142b1eea75142",
					After: "a86a176724a147f9a0d8a7bdc232efef3b3218f5", Pusher: "mona",
					// From toCommit, which newer Data Center versions send.
					Message:  "Bump base image to alpine 3.19\n\nThe old one is out of support.",
					CloneURL: serverClone,
				}},
			},
		},
		{
			fixture: "server-tag-add.json",
			h:       serverHeaders("repo:refs_changed", "8d49b481-504c-4ee9-aa39-d6b8b858f36c"),
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "repo:refs_changed", Provider: "bitbucket-server",
				DeliveryID: "8d49b481-504c-4ee9-aa39-d6b8b858f36c", Repo: "ACME/demo",
				Pushes: []webhook.Push{{
					Ref: "refs/tags/v1.2.0", Before: zeroSHA,
					After: "a86a176724a147f9a0d8a7bdc232efef3b3218f5", Pusher: "release-bot",
					CloneURL: serverClone,
				}},
			},
		},
		{
			fixture: "server-delete.json",
			h:       serverHeaders("repo:refs_changed", "735d49d4-e229-450a-a667-db2783704ca0"),
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "repo:refs_changed", Provider: "bitbucket-server",
				DeliveryID: "735d49d4-e229-450a-a667-db2783704ca0", Repo: "ACME/demo",
				Pushes: []webhook.Push{{
					Ref: "refs/heads/feature/login", Before: "84b0599758ba71e32dc21134d7cb6a2cc40bd520",
					After: zeroSHA, Deleted: true, Pusher: "mona", CloneURL: serverClone,
				}},
			},
		},
		{
			// "Test connection" names no repository.
			fixture: "server-ping.json",
			h:       serverHeaders("diagnostics:ping", "5516d5f6-eda9-4137-a6d3-b8aae01f9e27"),
			want: webhook.Event{
				Kind: webhook.KindPing, RawKind: "diagnostics:ping", Provider: "bitbucket-server",
				DeliveryID: "5516d5f6-eda9-4137-a6d3-b8aae01f9e27",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got, err := bitbucket.Webhook{}.Parse(tt.h, fixture(t, tt.fixture))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// For an annotated tag Data Center's toHash names the tag object; the
// toCommit newer versions send is the commit to build. It is only used when
// the delivery has one change, since it is the payload's, not the change's.
func TestParseServerToCommit(t *testing.T) {
	const tagObject = "827a36490801b3fe513904dd986bed3a9da11393"
	const commit = "a86a176724a147f9a0d8a7bdc232efef3b3218f5"
	body := strings.Replace(string(fixture(t, "server-tag-add.json")), `"toHash": "`+commit+`"`, `"toHash": "`+tagObject+`"`, 1)
	annotated := strings.Replace(body, `"changes": [`,
		`"toCommit": {"id": "`+commit+`", "displayId": "a86a1767247", "message": "Bump base image"},
  "changes": [`, 1)
	second := `{"ref": {"id": "refs/heads/main", "displayId": "main", "type": "BRANCH"}, "refId": "refs/heads/main",
      "fromHash": "33db3cce2e896760fdf92c9d6c3142b1eea75142", "toHash": "` + commit + `", "type": "UPDATE"},
    {`
	twoChanges := strings.Replace(annotated, `"changes": [
    {`, `"changes": [
    `+second, 1)
	if annotated == body || twoChanges == annotated {
		t.Fatal("fixture edit did not apply")
	}

	tests := []struct {
		name        string
		body        string
		wantAfter   []string
		wantMessage []string
	}{
		{"without toCommit", body, []string{tagObject}, []string{""}},
		{"annotated tag", annotated, []string{commit}, []string{"Bump base image"}},
		{"several changes", twoChanges, []string{commit, tagObject}, []string{"", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := bitbucket.Webhook{}.Parse(serverHeaders("repo:refs_changed", "d1"), []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			var after, msg []string
			for _, p := range ev.Pushes {
				after, msg = append(after, p.After), append(msg, p.Message)
			}
			if !reflect.DeepEqual(after, tt.wantAfter) || !reflect.DeepEqual(msg, tt.wantMessage) {
				t.Errorf("after, message = %q, %q; want %q, %q", after, msg, tt.wantAfter, tt.wantMessage)
			}
		})
	}
}

func TestParseOtherEvents(t *testing.T) {
	serverRepo := `{"slug": "demo", "project": {"key": "ACME"}}`
	tests := []struct {
		name         string
		h            http.Header
		body         string
		wantProvider string
		wantRepo     string
	}{
		// Pull request events that build are in pullrequest_test.go.
		{"cloud pull request comment", cloudHeaders("pullrequest:comment_created", "d1"),
			`{"repository": {"full_name": "acme/demo"}, "pullrequest": {"id": 7}}`, "bitbucket", "acme/demo"},
		{"server pull request comment names its repository under toRef", serverHeaders("pr:comment:added", "d1"),
			`{"eventKey": "pr:comment:added", "pullRequest": {"id": 7, "toRef": {"id": "refs/heads/main", "repository": ` + serverRepo + `}}}`,
			"bitbucket-server", "ACME/demo"},
		{"server repository event", serverHeaders("repo:modified", "d1"),
			`{"eventKey": "repo:modified", "repository": ` + serverRepo + `}`, "bitbucket-server", "ACME/demo"},
		{"server mirror sync", serverHeaders("mirror:repo_synchronized", "d1"),
			`{"eventKey": "mirror:repo_synchronized", "repository": ` + serverRepo + `, "changes": []}`, "bitbucket-server", "ACME/demo"},
		{"server event without a repository", serverHeaders("project:modified", "d1"),
			`{"eventKey": "project:modified", "old": {"key": "ACME"}}`, "bitbucket-server", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := bitbucket.Webhook{}.Parse(tt.h, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != webhook.KindOther || ev.Provider != tt.wantProvider || ev.Repo != tt.wantRepo || len(ev.Pushes) != 0 {
				t.Errorf("Parse = %+v; want kind other, provider %s, repo %q, no pushes", ev, tt.wantProvider, tt.wantRepo)
			}
		})
	}
}

// A repo:push is Cloud's and a refs_changed Data Center's whatever the
// headers; other events go by the delivery header each product sends.
func TestParseDialect(t *testing.T) {
	both := func(event string) http.Header {
		h := cloudHeaders(event, "cloud-id")
		h.Set("X-Request-Id", "server-id")
		return h
	}
	tests := []struct {
		name         string
		h            http.Header
		body         string
		wantProvider string
		wantDelivery string
	}{
		{"repo:push", both("repo:push"), string(fixture(t, "cloud-push-branch.json")), "bitbucket", "cloud-id"},
		{"repo:refs_changed", both("repo:refs_changed"), string(fixture(t, "server-refs-changed.json")), "bitbucket-server", "server-id"},
		{"other event from cloud", cloudHeaders("repo:updated", "cloud-id"), `{"repository": {"full_name": "acme/demo"}}`, "bitbucket", "cloud-id"},
		{"other event from server", serverHeaders("repo:forked", "server-id"), `{"repository": {"slug": "demo", "project": {"key": "ACME"}}}`, "bitbucket-server", "server-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := bitbucket.Webhook{}.Parse(tt.h, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Provider != tt.wantProvider || ev.DeliveryID != tt.wantDelivery {
				t.Errorf("provider, delivery = %s, %s; want %s, %s", ev.Provider, ev.DeliveryID, tt.wantProvider, tt.wantDelivery)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cloud := string(fixture(t, "cloud-push-branch.json"))
	server := string(fixture(t, "server-refs-changed.json"))
	tests := []struct {
		name        string
		h           http.Header
		body        string
		wantErrPart string
	}{
		{"no event key", cloudHeaders("", "d1"), cloud, "X-Event-Key"},
		{"cloud without request uuid", cloudHeaders("repo:push", ""), cloud, "X-Request-UUID"},
		{"server without request id", serverHeaders("repo:refs_changed", ""), server, "X-Request-Id"},
		{"ping without request id", serverHeaders("diagnostics:ping", ""), `{"test": true}`, "X-Request-Id"},
		{"cloud not json", cloudHeaders("repo:push", "d1"), "<xml/>", "decode repo:push payload"},
		{"cloud truncated", cloudHeaders("repo:push", "d1"), cloud[:len(cloud)/2], "decode repo:push payload"},
		{"server truncated", serverHeaders("repo:refs_changed", "d1"), server[:len(server)/2], "decode repo:refs_changed payload"},
		{"cloud without repository", cloudHeaders("repo:push", "d1"), `{"push": {"changes": []}}`, "repository.full_name"},
		{"cloud change without refs", cloudHeaders("repo:push", "d1"), `{"repository": {"full_name": "acme/demo"}, "push": {"changes": [{"new": null, "old": null}]}}`, "neither new nor old"},
		{"cloud unknown ref type", cloudHeaders("repo:push", "d1"), `{"repository": {"full_name": "acme/demo"}, "push": {"changes": [{"new": {"type": "bookmark", "name": "x", "target": {"hash": "aa"}}}]}}`, "unknown ref type"},
		{"cloud new ref without hash", cloudHeaders("repo:push", "d1"), `{"repository": {"full_name": "acme/demo"}, "push": {"changes": [{"new": {"type": "branch", "name": "main", "target": {}}}]}}`, "no new target hash"},
		{"server without repository", serverHeaders("repo:refs_changed", "d1"), `{"changes": []}`, "repository"},
		{"server repository without project", serverHeaders("repo:refs_changed", "d1"), `{"repository": {"slug": "demo"}, "changes": []}`, "repository"},
		{"server change without ref", serverHeaders("repo:refs_changed", "d1"), `{"repository": {"slug": "demo", "project": {"key": "ACME"}}, "changes": [{"toHash": "aa", "type": "UPDATE"}]}`, "no ref id"},
		{"server change without toHash", serverHeaders("repo:refs_changed", "d1"), `{"repository": {"slug": "demo", "project": {"key": "ACME"}}, "changes": [{"refId": "refs/heads/main", "type": "UPDATE"}]}`, "no toHash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bitbucket.Webhook{}.Parse(tt.h, []byte(tt.body))
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
	body := fixture(t, "server-refs-changed.json")
	sign := func(body []byte, secret string) string { return "sha256=" + webhook.SignHMAC(body, secret) }
	tampered := []byte(strings.Replace(string(body), `"refs/heads/main"`, `"refs/heads/mainx"`, 1))

	tests := []struct {
		name    string
		sig     string // X-Hub-Signature; "" leaves it out
		body    []byte
		wantErr error
	}{
		// The same HMAC as GitHub's documented vector, with Bitbucket's header.
		{"known vector", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", []byte("Hello, World!"), nil},
		{"signed body", sign(body, secret), body, nil},
		{"wrong secret", sign(body, "not the secret"), body, webhook.ErrBadSignature},
		{"tampered body", sign(body, secret), tampered, webhook.ErrBadSignature},
		{"missing header", "", body, webhook.ErrNoSignature},
		{"missing sha256= prefix", webhook.SignHMAC(body, secret), body, webhook.ErrBadSignature},
		{"sha1 prefix", "sha1=" + webhook.SignHMAC(body, secret), body, webhook.ErrBadSignature},
		{"prefix only", "sha256=", body, webhook.ErrNoSignature},
		{"not hex", "sha256=zz" + webhook.SignHMAC(body, secret)[2:], body, webhook.ErrBadSignature},
	}
	for _, tt := range tests {
		for _, dialect := range []struct {
			name string
			h    http.Header
		}{{"cloud", cloudHeaders("repo:push", "d1")}, {"server", serverHeaders("repo:refs_changed", "d1")}} {
			t.Run(tt.name+"/"+dialect.name, func(t *testing.T) {
				if tt.sig != "" {
					dialect.h.Set("X-Hub-Signature", tt.sig)
				}
				if err := (bitbucket.Webhook{}).Verify(dialect.h, tt.body, secret); !errors.Is(err, tt.wantErr) {
					t.Errorf("Verify = %v, want %v", err, tt.wantErr)
				}
			})
		}
	}
}
