package github_test

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/forge/github"
	"github.com/slipway-build/slipway/webhook"
	"github.com/slipway-build/slipway/webhook/webhooktest"
)

const zeroSHA = "0000000000000000000000000000000000000000"

func fixture(t testing.TB, name string) []byte { return webhooktest.Fixture(t, ".", name) }

func headers(event, delivery, contentType string) http.Header {
	h := http.Header{}
	if event != "" {
		h.Set("X-GitHub-Event", event)
	}
	if delivery != "" {
		h.Set("X-GitHub-Delivery", delivery)
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	h.Set("User-Agent", "GitHub-Hookshot/a1b2c3d")
	return h
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		fixture  string
		event    string
		delivery string
		want     webhook.Event
	}{
		{
			fixture:  "push-branch.json",
			event:    "push",
			delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "push",
				DeliveryID: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
				Repo:       "acme/demo",
				Pushes: []webhook.Push{{
					Ref:      "refs/heads/main",
					Before:   "9b2c6f0a1d4e8b7c3a5f2e1d0c9b8a7f6e5d4c3b",
					After:    "4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5",
					Pusher:   "mona",
					Message:  "Bump base image to alpine 3.19\n\nThe old one is out of support.",
					CloneURL: "https://github.com/acme/demo.git",
					// A fast-forward push lists every changed file.
					DefaultBranch: "main",
					Files:         []string{"health.go", "main.go", "Dockerfile"},
					FilesComplete: true,
				}},
			},
		},
		{
			// An annotated tag: "after" is the tag object, head_commit the
			// commit it points at. The build must get the commit.
			fixture:  "push-tag.json",
			event:    "push",
			delivery: "9e0c1d2a-da11-11ee-8f2b-2a4c6e1b7f00",
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "push",
				DeliveryID: "9e0c1d2a-da11-11ee-8f2b-2a4c6e1b7f00",
				Repo:       "acme/demo",
				Pushes: []webhook.Push{{
					Ref:      "refs/tags/v1.2.0",
					Before:   zeroSHA,
					After:    "4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5",
					Pusher:   "hubot",
					Message:  "Bump base image to alpine 3.19\n\nThe old one is out of support.",
					CloneURL: "https://github.com/acme/demo.git",
					// A new ref's payload does not list every file.
					DefaultBranch: "main",
				}},
			},
		},
		{
			fixture:  "push-delete.json",
			event:    "push",
			delivery: "0b7d9c10-da12-11ee-9c3e-6f1d2b3a4c5d",
			want: webhook.Event{
				Kind: webhook.KindPush, RawKind: "push",
				DeliveryID: "0b7d9c10-da12-11ee-9c3e-6f1d2b3a4c5d",
				Repo:       "acme/demo",
				Pushes: []webhook.Push{{
					Ref:           "refs/heads/feature/login",
					Before:        "8a7b6c5d4e3f20112233445566778899aabbccdd",
					After:         zeroSHA,
					Deleted:       true,
					Pusher:        "mona",
					CloneURL:      "https://github.com/acme/demo.git",
					DefaultBranch: "main",
				}},
			},
		},
		{
			fixture:  "ping.json",
			event:    "ping",
			delivery: "5d1b4f6e-da10-11ee-8a1c-1f2e3d4c5b6a",
			want: webhook.Event{
				Kind: webhook.KindPing, RawKind: "ping",
				DeliveryID: "5d1b4f6e-da10-11ee-8a1c-1f2e3d4c5b6a",
				Repo:       "acme/demo",
			},
		},
		{
			fixture:  "issues.json",
			event:    "issues",
			delivery: "e3a1f2b4-da13-11ee-9d4f-7a8b9c0d1e2f",
			want: webhook.Event{
				Kind: webhook.KindOther, RawKind: "issues",
				DeliveryID: "e3a1f2b4-da13-11ee-9d4f-7a8b9c0d1e2f",
				Repo:       "acme/demo",
			},
		},
	}
	for _, tt := range tests {
		body := fixture(t, tt.fixture)
		encodings := []struct {
			name, contentType string
			body              []byte
		}{
			{"json", "application/json", body},
			{"form", "application/x-www-form-urlencoded", []byte("payload=" + url.QueryEscape(string(body)))},
		}
		for _, enc := range encodings {
			t.Run(tt.fixture+"/"+enc.name, func(t *testing.T) {
				got, err := github.Webhook{}.Parse(headers(tt.event, tt.delivery, enc.contentType), enc.body)
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Parse =\n %+v\nwant\n %+v", got, tt.want)
				}
			})
		}
	}
}

// A lightweight tag points straight at a commit, so after and head_commit.id
// agree; a tag push without head_commit keeps after.
func TestParseTagWithoutHeadCommit(t *testing.T) {
	body := `{"ref":"refs/tags/v0.1.0","before":"` + zeroSHA + `","after":"1111111111111111111111111111111111111111",` +
		`"created":true,"deleted":false,"head_commit":null,"pusher":{"name":"mona"},` +
		`"repository":{"full_name":"acme/demo","clone_url":"https://github.com/acme/demo.git"}}`
	ev, err := github.Webhook{}.Parse(headers("push", "d1", "application/json"), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Pushes) != 1 || ev.Pushes[0].After != "1111111111111111111111111111111111111111" {
		t.Fatalf("Pushes = %+v, want one push with after 1111…", ev.Pushes)
	}
}

func TestParseErrors(t *testing.T) {
	push := string(fixture(t, "push-branch.json"))
	tests := []struct {
		name        string
		h           http.Header
		body        string
		wantErrPart string
	}{
		{"no event header", headers("", "d1", "application/json"), push, "X-GitHub-Event"},
		{"no delivery header", headers("push", "", "application/json"), push, "X-GitHub-Delivery"},
		{"not json", headers("push", "d1", "application/json"), "<xml/>", "decode push payload"},
		{"truncated json", headers("push", "d1", "application/json"), push[:len(push)/2], "decode push payload"},
		{"form without payload", headers("push", "d1", "application/x-www-form-urlencoded"), "data=" + url.QueryEscape(push), "no payload field"},
		{"bad form encoding", headers("push", "d1", "application/x-www-form-urlencoded"), "payload=%zz", "decode form body"},
		{"form body sent as json", headers("push", "d1", "application/json"), "payload=" + url.QueryEscape(push), "decode push payload"},
		{"no repository", headers("push", "d1", "application/json"), `{"ref":"refs/heads/main","after":"4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5"}`, "repository.full_name"},
		{"ping without repository", headers("ping", "d1", "application/json"), `{"zen":"Design for failure.","hook_id":1}`, "repository.full_name"},
		{"push without ref", headers("push", "d1", "application/json"), `{"after":"4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5","repository":{"full_name":"acme/demo"}}`, "lacks ref or after"},
		{"push without after", headers("push", "d1", "application/json"), `{"ref":"refs/heads/main","repository":{"full_name":"acme/demo"}}`, "lacks ref or after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := github.Webhook{}.Parse(tt.h, []byte(tt.body))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantErrPart) {
				t.Errorf("error %q does not mention %q", err, tt.wantErrPart)
			}
		})
	}
}

// The deleted flag lets a push without a new commit through.
func TestParseDeletionNeedsNoAfter(t *testing.T) {
	body := `{"ref":"refs/heads/old","before":"8a7b6c5d4e3f20112233445566778899aabbccdd","after":"","deleted":true,"repository":{"full_name":"acme/demo"}}`
	ev, err := github.Webhook{}.Parse(headers("push", "d1", "application/json"), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Pushes) != 1 || !ev.Pushes[0].Deleted {
		t.Fatalf("Pushes = %+v, want one deletion", ev.Pushes)
	}
}

func TestVerify(t *testing.T) {
	const secret = "It's a Secret to Everybody"
	json := fixture(t, "push-branch.json")
	form := []byte("payload=" + url.QueryEscape(string(json)))
	sign := func(body []byte, secret string) string { return "sha256=" + webhook.SignHMAC(body, secret) }
	tampered := []byte(strings.Replace(string(json), `"refs/heads/main"`, `"refs/heads/mainx"`, 1))

	tests := []struct {
		name    string
		sig     string // X-Hub-Signature-256; "" leaves it out
		body    []byte
		secret  string
		wantErr error
	}{
		// The test vector from GitHub's "Validating webhook deliveries" page.
		{"github docs vector", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", []byte("Hello, World!"), secret, nil},
		{"json body", sign(json, secret), json, secret, nil},
		{"form body signed whole", sign(form, secret), form, secret, nil},
		{"form body signed over the json only", sign(json, secret), form, secret, webhook.ErrBadSignature},
		{"wrong secret", sign(json, "not the secret"), json, secret, webhook.ErrBadSignature},
		{"tampered body", sign(json, secret), tampered, secret, webhook.ErrBadSignature},
		{"missing header", "", json, secret, webhook.ErrNoSignature},
		{"missing sha256= prefix", webhook.SignHMAC(json, secret), json, secret, webhook.ErrBadSignature},
		{"sha1 prefix", "sha1=" + webhook.SignHMAC(json, secret), json, secret, webhook.ErrBadSignature},
		{"prefix only", "sha256=", json, secret, webhook.ErrNoSignature},
		{"not hex", "sha256=zz" + webhook.SignHMAC(json, secret)[2:], json, secret, webhook.ErrBadSignature},
		{"truncated", sign(json, secret)[:40], json, secret, webhook.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := headers("push", "d1", "application/json")
			if tt.sig != "" {
				h.Set("X-Hub-Signature-256", tt.sig)
			}
			err := github.Webhook{}.Verify(h, tt.body, tt.secret)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// GitHub also sends the legacy SHA-1 X-Hub-Signature; it must not be enough.
func TestVerifyIgnoresSHA1Header(t *testing.T) {
	h := headers("push", "d1", "application/json")
	h.Set("X-Hub-Signature", "sha1=d03207e4b030cf234e3447bac4d93add4c6643d8")
	err := github.Webhook{}.Verify(h, []byte("Hello, World!"), "It's a Secret to Everybody")
	if !errors.Is(err, webhook.ErrNoSignature) {
		t.Errorf("Verify = %v, want %v", err, webhook.ErrNoSignature)
	}
}

// An App's webhook names its installation, whose token clones and reports.
func TestParseInstallation(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main","before":"` + zeroSHA + `","after":"4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5",` +
		`"installation":{"id":77,"node_id":"MDIz"},"repository":{"full_name":"acme/demo"}}`)
	ev, err := github.Webhook{}.Parse(headers("push", "d-app", "application/json"), body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.InstallationID != 77 {
		t.Errorf("InstallationID = %d, want 77", ev.InstallationID)
	}
	ev, _ = github.Webhook{}.Parse(headers("push", "d-plain", "application/json"), fixture(t, "push-branch.json"))
	if ev.InstallationID != 0 {
		t.Errorf("a repository webhook has no installation, got %d", ev.InstallationID)
	}
}
