package api_test

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/model"
)

const badgeRegistry = "registry.example:5000"

// newBadgeMatrix is the role matrix's people on a server whose embedded
// registry is badgeRegistry, where organization public_images apply.
func newBadgeMatrix(t *testing.T) *matrix {
	return newMatrixOn(t, func(s *api.Server) { s.RegistryHost = badgeRegistry })
}

// newMatrixOn is the role matrix's people (acme's reader, writer and
// admin, other's admin, a revoked token) on a server change adjusts.
func newMatrixOn(t *testing.T, change ...func(*api.Server)) *matrix {
	m := &matrix{h: newHarness(t, change...), tokens: map[string]string{site: testToken}}
	m.post("/api/v1/orgs", testToken, `{"name":"acme","owners":["carol"]}`, http.StatusCreated)
	m.post("/api/v1/orgs", testToken, `{"name":"other","owners":["dave"]}`, http.StatusCreated)
	m.put("/api/v1/orgs/acme/teams/readers", testToken, `{"role":"read","members":["alice"]}`)
	m.put("/api/v1/orgs/acme/teams/writers", testToken, `{"role":"write","members":["bob"]}`)
	m.tokens[reader] = m.issue("acme", "alice", "read", "")
	m.tokens[writer] = m.issue("acme", "bob", "write", "")
	m.tokens[admin] = m.issue("acme", "carol", "admin", "")
	m.tokens[other] = m.issue("other", "dave", "admin", "")
	m.tokens[revoked] = m.issue("acme", "carol", "admin", "")
	id, _, _ := access.Split(m.tokens[revoked])
	if code, _, raw := m.h.do("DELETE", "/api/v1/tokens/"+id, testToken, ""); code != http.StatusNoContent {
		t.Fatalf("revoke: HTTP %d %s", code, raw)
	}
	return m
}

// setState ends or starts build id as a worker would, at a fixed time.
func (h *harness) setState(id, status string, at time.Time) {
	h.t.Helper()
	_, err := h.store.UpdateBuild(testCtx(h.t), id, func(b *model.Build) error {
		b.Status = status
		if status == model.StatusRunning {
			b.StartedAt = &at
		} else {
			b.FinishedAt = &at
		}
		return nil
	})
	if err != nil {
		h.t.Fatalf("store.UpdateBuild(%s): %v", id, err)
	}
}

type badgeAnswer struct {
	code    int
	message string // the badge's right half
	colour  string
}

// getBadge asks for path with token ("" for none) and reads the badge.
func (h *harness) getBadge(path, token string) badgeAnswer {
	h.t.Helper()
	code, hdr, raw := h.do("GET", path, token, "")
	if ct := hdr.Get("Content-Type"); ct != "image/svg+xml" {
		h.t.Errorf("GET %s: Content-Type %q, want image/svg+xml", path, ct)
	}
	if cc := hdr.Get("Cache-Control"); cc != "no-cache" {
		h.t.Errorf("GET %s: Cache-Control %q, want no-cache", path, cc)
	}
	texts := regexp.MustCompile(`<text x="[0-9.]+" y="14">([^<]*)</text>`).FindAllStringSubmatch(string(raw), -1)
	colour := regexp.MustCompile(`<rect x="[0-9]+" width="[0-9]+" height="20" fill="(#[0-9a-f]+)"/>`).FindStringSubmatch(string(raw))
	if len(texts) != 2 || texts[0][1] != "build" || colour == nil {
		h.t.Fatalf("GET %s: HTTP %d, not a build badge: %s", path, code, raw)
	}
	return badgeAnswer{code, texts[1][1], colour[1]}
}

func TestBadges(t *testing.T) {
	m := newBadgeMatrix(t)
	h := m.h
	base := base // the API's clock reads a few seconds after it

	// demo is private: its main succeeded 3h ago, its tag v1.2.0 failed 1h ago.
	demo := h.createRepo(validRepo("acme/demo"))
	h.setState(h.trigger(demo.ID, "refs/heads/main", commitA).ID, model.StatusSucceeded, base.Add(-3*time.Hour))
	h.setState(h.trigger(demo.ID, "refs/tags/v1.2.0", commitB).ID, model.StatusFailed, base.Add(-time.Hour))
	// open is public; its main failed two days ago.
	open := h.createRepo(validRepo("acme/open"))
	if code, raw := h.call("PATCH", "/api/v1/repos/"+open.ID, map[string]bool{"public": true}); code != http.StatusOK {
		t.Fatalf("make acme/open public: HTTP %d %s", code, raw)
	}
	h.setState(h.trigger(open.ID, "refs/heads/main", commitA).ID, model.StatusFailed, base.Add(-50*time.Hour))
	// listed is private, but acme lists its image among public_images;
	// its main build has been running for 5 minutes.
	listed := h.createRepo(validRepo("acme/listed"))
	if code, _, raw := h.do("PATCH", "/api/v1/orgs/acme", testToken, `{"public_images":["acme/listed"]}`); code != http.StatusOK {
		t.Fatalf("list acme/listed as public: HTTP %d %s", code, raw)
	}
	h.setState(h.trigger(listed.ID, "refs/heads/main", commitA).ID, model.StatusRunning, base.Add(-5*time.Minute))
	// quiet is private with no builds; queued has one waiting.
	h.createRepo(validRepo("acme/quiet"))
	queued := h.createRepo(validRepo("acme/queued"))
	h.trigger(queued.ID, "refs/heads/main", commitA)

	code, raw := h.call("POST", "/api/v1/repos/"+demo.ID+"/badge-key", nil)
	if code != http.StatusCreated {
		t.Fatalf("POST badge-key: HTTP %d %s", code, raw)
	}
	key := decodeInto[api.BadgeKey](t, raw).BadgeKey

	notFound := badgeAnswer{404, "not found", "#9f9f9f"}
	demoOK := badgeAnswer{200, "succeeded · 3h ago", "#4c1"}
	tests := []struct {
		name, path, token string
		want              badgeAnswer
	}{
		{"public repository, no token", "/badge/acme/open.svg", "", badgeAnswer{200, "failed · 2d ago", "#e05d44"}},
		{"image in public_images, no token", "/badge/acme/listed.svg", "", badgeAnswer{200, "running · 5m ago", "#dfb317"}},
		{"private, no token", "/badge/acme/demo.svg", "", notFound},
		{"private, reader's token", "/badge/acme/demo.svg", m.tokens[reader], demoOK},
		{"private, bootstrap token", "/badge/acme/demo.svg", testToken, demoOK},
		{"private, another organization's token", "/badge/acme/demo.svg", m.tokens[other], notFound},
		{"private, revoked token", "/badge/acme/demo.svg", m.tokens[revoked], notFound},
		{"private, unknown token", "/badge/acme/demo.svg", "slp_not-a-live-token", notFound},
		{"private, badge key", "/badge/acme/demo.svg?key=" + key, "", demoOK},
		{"private, wrong key", "/badge/acme/demo.svg?key=" + strings.Repeat("0", 40), "", notFound},
		{"private, key one character short", "/badge/acme/demo.svg?key=" + key[:39], "", notFound},
		{"another repository's key", "/badge/acme/quiet.svg?key=" + key, "", notFound},
		{"empty key where none is set", "/badge/acme/quiet.svg?key=", "", notFound},
		{"no builds yet", "/badge/acme/quiet.svg", m.tokens[reader], badgeAnswer{200, "no builds", "#9f9f9f"}},
		{"queued", "/badge/acme/queued.svg", m.tokens[reader], badgeAnswer{200, "queued · just now", "#dfb317"}},
		{"tag", "/badge/acme/demo/v1.2.0.svg", m.tokens[reader], badgeAnswer{200, "failed · 1h ago", "#e05d44"}},
		{"tag with key", "/badge/acme/demo/v1.2.0.svg?key=" + key, "", badgeAnswer{200, "failed · 1h ago", "#e05d44"}},
		{"tag never built", "/badge/acme/demo/v9.svg", m.tokens[reader], badgeAnswer{200, "no builds", "#9f9f9f"}},
		{"tag of a private repository, no token", "/badge/acme/demo/v1.2.0.svg", "", notFound},
		{"names in another case", "/badge/ACME/Demo.svg", m.tokens[reader], demoOK},
		{"no such repository", "/badge/acme/nope.svg", m.tokens[reader], notFound},
		{"no such organization", "/badge/nobody/demo.svg", testToken, notFound},
		{"not .svg", "/badge/acme/open.png", "", notFound},
	}
	for _, tt := range tests {
		if got := h.getBadge(tt.path, tt.token); got != tt.want {
			t.Errorf("%s: GET %s = %+v, want %+v", tt.name, tt.path, got, tt.want)
		}
	}

	t.Run("a hidden repository answers exactly what a missing one does", func(t *testing.T) {
		_, _, hidden := h.do("GET", "/badge/acme/demo.svg", "", "")
		_, _, missing := h.do("GET", "/badge/acme/nope.svg", "", "")
		if !bytes.Equal(hidden, missing) {
			t.Errorf("private badge:\n%s\nmissing badge:\n%s", hidden, missing)
		}
	})

	t.Run("a new key replaces the old; a revoked key stops working", func(t *testing.T) {
		code, raw := h.call("POST", "/api/v1/repos/"+demo.ID+"/badge-key", nil)
		fresh := decodeInto[api.BadgeKey](t, raw).BadgeKey
		if code != http.StatusCreated || fresh == key {
			t.Fatalf("second POST badge-key: HTTP %d %s, want a new key", code, raw)
		}
		if got := h.getBadge("/badge/acme/demo.svg?key="+key, ""); got != notFound {
			t.Errorf("old key after a new one = %+v", got)
		}
		if got := h.getBadge("/badge/acme/demo.svg?key="+fresh, ""); got != demoOK {
			t.Errorf("new key = %+v", got)
		}
		if code, _, raw := h.do("DELETE", "/api/v1/repos/"+demo.ID+"/badge-key", m.tokens[writer], ""); code != http.StatusNoContent {
			t.Fatalf("DELETE badge-key: HTTP %d %s", code, raw)
		}
		if got := h.getBadge("/badge/acme/demo.svg?key="+fresh, ""); got != notFound {
			t.Errorf("revoked key = %+v", got)
		}
		if got := h.getBadge("/badge/acme/demo.svg", m.tokens[reader]); got != demoOK {
			t.Errorf("reader's token after revoking = %+v", got)
		}
	})
}

// TestBadgeKeyShownToReaders: the key is made by a writer, shown in GET
// repo to readers, never chosen by the registration, and gone once
// revoked.
func TestBadgeKeyShownToReaders(t *testing.T) {
	m := newBadgeMatrix(t)
	h := m.h
	in := validRepo("acme/demo")
	in.BadgeKey = "chosen-by-the-caller"
	repo := h.createRepo(in)
	if repo.BadgeKey != "" {
		t.Errorf("registration kept the caller's badge_key %q", repo.BadgeKey)
	}
	if code, _, raw := h.do("POST", "/api/v1/repos/"+repo.ID+"/badge-key", m.tokens[reader], ""); code != http.StatusForbidden {
		t.Errorf("POST badge-key as reader: HTTP %d %s, want 403", code, raw)
	}
	code, _, raw := h.do("POST", "/api/v1/repos/"+repo.ID+"/badge-key", m.tokens[writer], "")
	key := decodeInto[api.BadgeKey](t, raw).BadgeKey
	if code != http.StatusCreated || !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(key) {
		t.Fatalf("POST badge-key as writer: HTTP %d %s, want 201 and 40 hex digits", code, raw)
	}
	for _, who := range []string{reader, writer, admin} {
		code, _, raw := h.do("GET", "/api/v1/repos/"+repo.ID, m.tokens[who], "")
		if code != http.StatusOK || decodeInto[model.Repo](t, raw).BadgeKey != key {
			t.Errorf("GET repo as %s: HTTP %d %s, want badge_key %s", who, code, raw, key)
		}
	}
	if code, _, raw := h.do("GET", "/api/v1/repos/"+repo.ID, m.tokens[other], ""); code != http.StatusNotFound || bytes.Contains(raw, []byte(key)) {
		t.Errorf("GET repo as another organization: HTTP %d %s", code, raw)
	}
	if err := h.client.RevokeBadgeKey(testCtx(t), repo.ID); err != nil {
		t.Fatalf("RevokeBadgeKey: %v", err)
	}
	code, _, raw = h.do("GET", "/api/v1/repos/"+repo.ID, m.tokens[reader], "")
	if code != http.StatusOK || bytes.Contains(raw, []byte(`"badge_key"`)) {
		t.Errorf("GET repo after revoking: HTTP %d %s, want no badge_key", code, raw)
	}
	again, err := h.client.NewBadgeKey(testCtx(t), repo.ID)
	if err != nil || again == key || len(again) != 40 {
		t.Errorf("NewBadgeKey = %q, %v; want a fresh 40-digit key", again, err)
	}
}

// TestBadgeOfOnePush: a push that several rules build shows the worst of
// its builds; a rebuild stands alone; a skipped push leaves the badge on
// the last real result.
func TestBadgeOfOnePush(t *testing.T) {
	h := newHarness(t)
	in := validRepo("acme/multi")
	off := false
	in.LatestForDefaultBranch = &off // so that only the first rule pushes latest
	in.Rules = []model.Rule{
		{SourceType: "branch", Source: "main", Tags: []string{"latest"}},
		{SourceType: "branch", Source: "main", Tags: []string{"slim"}, Target: "slim"},
	}
	repo := h.createRepo(in)
	first := h.trigger(repo.ID, "refs/heads/main", commitA)
	byTag := map[string]string{}
	for _, b := range h.storedBuilds(repo.ID) {
		byTag[strings.Join(b.Tags, ",")] = b.ID
	}
	if len(byTag) != 2 || byTag["latest"] == "" || byTag["slim"] == "" {
		t.Fatalf("one push of two rules made builds tagged %v, want one latest and one slim", byTag)
	}
	h.setState(byTag["latest"], model.StatusSucceeded, base.Add(-2*time.Hour))
	h.setState(byTag["slim"], model.StatusRunning, base.Add(-3*time.Hour))
	want := func(path, message string) {
		t.Helper()
		if got := h.getBadge(path, testToken); got.message != message {
			t.Errorf("GET %s = %q, want %q", path, got.message, message)
		}
	}
	// The running build decides the state; the time is the latest change.
	want("/badge/acme/multi.svg", "running · 2h ago")
	want("/badge/acme/multi/slim.svg", "running · 3h ago")
	want("/badge/acme/multi/latest.svg", "succeeded · 2h ago")
	h.setState(byTag["slim"], model.StatusFailed, base.Add(-time.Hour))
	want("/badge/acme/multi.svg", "failed · 1h ago")

	code, raw := h.call("POST", "/api/v1/builds/"+first.ID+"/rebuild", nil)
	if code != http.StatusAccepted {
		t.Fatalf("rebuild: HTTP %d %s", code, raw)
	}
	rebuilt := decodeInto[model.Build](t, raw)
	if rebuilt.Seq != first.Seq {
		t.Fatalf("the rebuild's seq %d differs from its push's %d: this test means a rebuild of the same push", rebuilt.Seq, first.Seq)
	}
	h.setState(rebuilt.ID, model.StatusSucceeded, base.Add(-30*time.Minute))
	want("/badge/acme/multi.svg", "succeeded · 30m ago")

	h.trigger(repo.ID, "refs/heads/main", commitB)
	for _, b := range h.storedBuilds(repo.ID) {
		if b.Commit == commitB {
			h.setState(b.ID, model.StatusSkipped, base)
		}
	}
	want("/badge/acme/multi.svg", "succeeded · 30m ago")
}
