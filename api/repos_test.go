package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/model"
)

const webhookSecret = "gh-webhook-secret-do-not-leak"

// hookSecret is a valid Standard Webhooks secret.
var hookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("deploy-hook-key-do-not-leak!"))

// validRepo is a repository every field of which passes validation: main
// builds {branch}-{short_sha} (plus latest), v-tags build {tag}.
func validRepo(fullName string) model.Repo {
	return model.Repo{
		Provider:      "github",
		FullName:      fullName,
		CloneURL:      "https://git.example/" + fullName + ".git",
		WebhookSecret: webhookSecret,
		Image:         "registry.example:5000/" + strings.ToLower(fullName),
		BuildTimeout:  "45m",
		Rules: []model.Rule{
			{SourceType: "branch", Source: "main", Tags: []string{"{branch}-{short_sha}"}},
			{SourceType: "tag", Source: "/v.*/", Tags: []string{"{tag}"}},
		},
		Hooks: []model.Hook{{URL: "https://deploy.example/hook", Secret: hookSecret}},
	}
}

// createRepo registers r through the API and returns the answer.
func (h *harness) createRepo(r model.Repo) model.Repo {
	h.t.Helper()
	code, raw := h.call("POST", "/api/v1/repos", r)
	if code != http.StatusCreated {
		h.t.Fatalf("POST /api/v1/repos %s: HTTP %d %s", r.FullName, code, raw)
	}
	return decodeInto[model.Repo](h.t, raw)
}

func (h *harness) listRepos() []model.Repo {
	h.t.Helper()
	repos, err := h.client.Repos(testCtx(h.t))
	if err != nil {
		h.t.Fatalf("client.Repos: %v", err)
	}
	return repos
}

func repoIDs(repos []model.Repo) []string {
	var ids []string
	for _, r := range repos {
		ids = append(ids, r.ID)
	}
	return ids
}

// assertNoSecrets checks a raw API answer for any trace of the secrets.
func assertNoSecrets(t *testing.T, what string, raw []byte) {
	t.Helper()
	for _, leak := range []string{webhookSecret, hookSecret, `"webhook_secret"`, `"secret"`} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("%s leaks %s: %s", what, leak, raw)
		}
	}
}

func TestCreateRepo(t *testing.T) {
	h := newHarness(t)
	in := validRepo("acme/demo")
	in.ID = "client-chosen-id" // ignored: the server assigns ids
	code, raw := h.call("POST", "/api/v1/repos", in)
	if code != http.StatusCreated {
		t.Fatalf("HTTP %d %s, want 201", code, raw)
	}
	assertNoSecrets(t, "POST answer", raw)
	got := decodeInto[model.Repo](t, raw)

	if !regexp.MustCompile(`^[0-9a-f]{20}$`).MatchString(got.ID) {
		t.Errorf("id = %q, want 20 hex characters", got.ID)
	}
	if want := base.Add(time.Second); !got.CreatedAt.Equal(want) {
		t.Errorf("created_at = %v, want %v from the server clock", got.CreatedAt, want)
	}
	want := in.Public()
	want.ID, want.CreatedAt, want.Org = got.ID, got.CreatedAt, "acme"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("answer = %+v\nwant     %+v", got, want)
	}
	if len(got.Hooks) != 1 || got.Hooks[0].URL != "https://deploy.example/hook" {
		t.Errorf("hooks = %+v, want the URL without its secret", got.Hooks)
	}

	// The store keeps the secrets: the webhook handler and the deliverer
	// need them.
	stored, err := h.store.GetRepo(testCtx(t), got.ID)
	if err != nil {
		t.Fatalf("store.GetRepo: %v", err)
	}
	if stored.WebhookSecret != webhookSecret || len(stored.Hooks) != 1 || stored.Hooks[0].Secret != hookSecret {
		t.Errorf("stored repo lost its secrets: %+v", stored)
	}

	code, raw = h.call("GET", "/api/v1/repos/"+got.ID, nil)
	if code != http.StatusOK {
		t.Fatalf("GET one: HTTP %d %s", code, raw)
	}
	assertNoSecrets(t, "GET one", raw)
	if one := decodeInto[model.Repo](t, raw); !reflect.DeepEqual(one, got) {
		t.Errorf("GET one = %+v\nwant      %+v", one, got)
	}

	code, raw = h.call("GET", "/api/v1/repos", nil)
	if code != http.StatusOK {
		t.Fatalf("GET list: HTTP %d %s", code, raw)
	}
	assertNoSecrets(t, "GET list", raw)
	if list := decodeInto[[]model.Repo](t, raw); len(list) != 1 || !reflect.DeepEqual(list[0], got) {
		t.Errorf("GET list = %+v, want [%+v]", list, got)
	}
	if list := h.listRepos(); len(list) != 1 || list[0].WebhookSecret != "" || list[0].Hooks[0].Secret != "" {
		t.Errorf("client.Repos = %+v", list)
	}
}

func TestListReposOrder(t *testing.T) {
	h := newHarness(t)
	if code, raw := h.call("GET", "/api/v1/repos", nil); code != http.StatusOK || strings.TrimSpace(string(raw)) != "[]" {
		t.Fatalf("empty list: HTTP %d %s, want []", code, raw)
	}
	var want []string
	for _, name := range []string{"acme/one", "acme/two", "acme/three"} {
		want = append(want, h.createRepo(validRepo(name)).ID)
	}
	if got := repoIDs(h.listRepos()); !reflect.DeepEqual(got, want) {
		t.Errorf("list = %v, want oldest first %v", got, want)
	}
}

func TestCreateRepoInvalid(t *testing.T) {
	h := newHarness(t)
	existing := h.createRepo(validRepo("acme/demo"))
	before := h.listRepos()

	tests := []struct {
		name   string
		change func(*model.Repo)
		field  string // the error must start with "<field>:"
	}{
		{"provider unknown", func(r *model.Repo) { r.Provider = "sourcehut" }, "provider"},
		{"provider missing", func(r *model.Repo) { r.Provider = "" }, "provider"},
		{"full_name without owner", func(r *model.Repo) { r.FullName = "demo" }, "full_name"},
		{"full_name with space", func(r *model.Repo) { r.FullName = "acme/de mo" }, "full_name"},
		{"clone_url not a URL", func(r *model.Repo) { r.CloneURL = "not a url" }, "clone_url"},
		{"clone_url ftp", func(r *model.Repo) { r.CloneURL = "ftp://git.example/acme/other.git" }, "clone_url"},
		{"webhook_secret shorter than 16 bytes", func(r *model.Repo) { r.WebhookSecret = "fifteen-bytes.." }, "webhook_secret"},
		{"image missing", func(r *model.Repo) { r.Image = "" }, "image"},
		{"image with tag", func(r *model.Repo) { r.Image = "registry.example:5000/acme/other:v1" }, "image"},
		{"image with digest", func(r *model.Repo) { r.Image = "registry.example/acme/other@sha256:abc" }, "image"},
		{"image uppercase", func(r *model.Repo) { r.Image = "registry.example:5000/Acme/other" }, "image"},
		{"image without path", func(r *model.Repo) { r.Image = "registry.example:5000" }, "image"},
		{"rules nil", func(r *model.Repo) { r.Rules = nil }, "rules"},
		{"rules empty", func(r *model.Repo) { r.Rules = []model.Rule{} }, "rules"},
		{"rules[1].source bad regex", func(r *model.Repo) { r.Rules[1].Source = "/v(/" }, "rules[1].source"},
		{"rules[0].source_type", func(r *model.Repo) { r.Rules[0].SourceType = "commit" }, "rules[0].source_type"},
		{"rules[0].tags[0] unknown placeholder", func(r *model.Repo) { r.Rules[0].Tags = []string{"{nope}"} }, "rules[0].tags[0]"},
		{"rules[1].tags empty", func(r *model.Repo) { r.Rules[1].Tags = nil }, "rules[1].tags"},
		{"rules[0].size_warn_increase without %", func(r *model.Repo) { r.Rules[0].SizeWarnIncrease = "20" }, "rules[0].size_warn_increase"},
		{"rules[1].size_warn_increase zero", func(r *model.Repo) { r.Rules[1].SizeWarnIncrease = "0%" }, "rules[1].size_warn_increase"},
		{"rules[0].size_warn_increase in bytes", func(r *model.Repo) { r.Rules[0].SizeWarnIncrease = "5MB" }, "rules[0].size_warn_increase"},
		{"hooks[0].url not http", func(r *model.Repo) { r.Hooks[0].URL = "ftp://deploy.example/hook" }, "hooks[0].url"},
		{"hooks[0].url without host", func(r *model.Repo) { r.Hooks[0].URL = "deploy.example/hook" }, "hooks[0].url"},
		{"hooks[1].url", func(r *model.Repo) {
			r.Hooks = append(r.Hooks, model.Hook{URL: "://", Secret: hookSecret})
		}, "hooks[1].url"},
		{"hooks[0].secret not whsec_", func(r *model.Repo) { r.Hooks[0].Secret = "plain-secret" }, "hooks[0].secret"},
		{"hooks[0].secret not base64", func(r *model.Repo) { r.Hooks[0].Secret = "whsec_!!!" }, "hooks[0].secret"},
		{"hooks[0].secret missing", func(r *model.Repo) { r.Hooks[0].Secret = "" }, "hooks[0].secret"},
		{"build_timeout not a duration", func(r *model.Repo) { r.BuildTimeout = "soon" }, "build_timeout"},
		{"build_timeout negative", func(r *model.Repo) { r.BuildTimeout = "-5m" }, "build_timeout"},
		{"test_timeout not a duration", func(r *model.Repo) { r.TestTimeout = "later" }, "test_timeout"},
		{"test_timeout zero", func(r *model.Repo) { r.TestTimeout = "0s" }, "test_timeout"},
		{"max_concurrent_builds negative", func(r *model.Repo) { r.MaxConcurrentBuilds = -1 }, "max_concurrent_builds"},
		{"network host", func(r *model.Repo) { r.Network = "host" }, "network"},
		{"network bridge", func(r *model.Repo) { r.Network = "bridge" }, "network"},
		{"pull_requests unknown", func(r *model.Repo) { r.PullRequests = "forks" }, "pull_requests"},
		{"default_branch", func(r *model.Repo) { r.DefaultBranch = "my branch" }, "default_branch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRepo("acme/other")
			tt.change(&r)
			code, raw := h.call("POST", "/api/v1/repos", r)
			if code != http.StatusBadRequest {
				t.Fatalf("HTTP %d %s, want 400", code, raw)
			}
			if msg := errorOf(t, raw); !strings.HasPrefix(msg, tt.field+":") {
				t.Errorf("error = %q, want it to start with %q", msg, tt.field+":")
			}
		})
	}

	bodies := []struct{ name, body, want string }{
		{"unknown field", `{"provider":"github","full_name":"acme/other","branch":"main"}`, `unknown field "branch"`},
		{"not JSON", `provider=github`, "invalid JSON body"},
		{"empty body", ``, "invalid JSON body"},
		{"wrong type", `{"provider":"github","max_concurrent_builds":"two"}`, "invalid JSON body"},
	}
	for _, tt := range bodies {
		t.Run(tt.name, func(t *testing.T) {
			code, _, raw := h.do("POST", "/api/v1/repos", testToken, tt.body)
			if code != http.StatusBadRequest {
				t.Fatalf("HTTP %d %s, want 400", code, raw)
			}
			if msg := errorOf(t, raw); !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.want)
			}
		})
	}

	t.Run("nothing stored", func(t *testing.T) {
		if after := h.listRepos(); !reflect.DeepEqual(after, before) {
			t.Fatalf("repos after 400s = %+v, want %+v", after, before)
		}
		stored, err := h.store.ListRepos(testCtx(t))
		if err != nil || len(stored) != 1 || stored[0].ID != existing.ID {
			t.Fatalf("store.ListRepos = %+v, %v; want only %s", stored, err, existing.ID)
		}
		// No name index was left behind either: the name is still free.
		h.createRepo(validRepo("acme/other"))
	})
}

func TestCreateRepoDuplicate(t *testing.T) {
	h := newHarness(t)
	first := h.createRepo(validRepo("acme/demo"))

	for _, name := range []string{"acme/demo", "ACME/Demo"} {
		t.Run(name, func(t *testing.T) {
			r := validRepo(name)
			r.Image = "registry.example/acme/elsewhere"
			code, raw := h.call("POST", "/api/v1/repos", r)
			if code != http.StatusConflict {
				t.Fatalf("HTTP %d %s, want 409", code, raw)
			}
			if msg := errorOf(t, raw); !strings.Contains(msg, "already registered") {
				t.Errorf("error = %q", msg)
			}
			if got := repoIDs(h.listRepos()); !reflect.DeepEqual(got, []string{first.ID}) {
				t.Errorf("repos = %v, want only %s", got, first.ID)
			}
		})
	}
}

func TestGetDeleteRepo(t *testing.T) {
	h := newHarness(t)
	keep := h.createRepo(validRepo("acme/keep"))
	gone := h.createRepo(validRepo("acme/gone"))

	for _, method := range []string{"GET", "DELETE"} {
		t.Run(method+" unknown", func(t *testing.T) {
			code, raw := h.call(method, "/api/v1/repos/0123456789abcdef0123", nil)
			if code != http.StatusNotFound {
				t.Fatalf("HTTP %d %s, want 404", code, raw)
			}
			if msg := errorOf(t, raw); msg != "not found" {
				t.Errorf("error = %q", msg)
			}
		})
	}

	code, raw := h.call("DELETE", "/api/v1/repos/"+gone.ID, nil)
	if code != http.StatusNoContent || len(raw) != 0 {
		t.Fatalf("DELETE: HTTP %d %q, want 204 and no body", code, raw)
	}
	if code, raw := h.call("GET", "/api/v1/repos/"+gone.ID, nil); code != http.StatusNotFound {
		t.Fatalf("GET after DELETE: HTTP %d %s, want 404", code, raw)
	}
	if code, raw := h.call("DELETE", "/api/v1/repos/"+gone.ID, nil); code != http.StatusNotFound {
		t.Fatalf("second DELETE: HTTP %d %s, want 404", code, raw)
	}
	if got := repoIDs(h.listRepos()); !reflect.DeepEqual(got, []string{keep.ID}) {
		t.Fatalf("list after DELETE = %v, want [%s]", got, keep.ID)
	}
	if code, raw := h.call("GET", "/api/v1/repos/"+keep.ID, nil); code != http.StatusOK {
		t.Fatalf("GET of the other repo: HTTP %d %s", code, raw)
	}

	again := h.createRepo(validRepo("acme/gone"))
	if again.ID == gone.ID {
		t.Errorf("re-registered repo reuses id %s", gone.ID)
	}
	if got := repoIDs(h.listRepos()); !reflect.DeepEqual(got, []string{keep.ID, again.ID}) {
		t.Errorf("list = %v, want [%s %s]", got, keep.ID, again.ID)
	}
	if r, err := h.store.FindRepo(testCtx(t), "github", "acme/gone"); err != nil || r.ID != again.ID {
		t.Errorf("store.FindRepo(acme/gone) = %s, %v; want %s", r.ID, err, again.ID)
	}
}

func TestCreateRepoValidVariants(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		change func(*model.Repo)
	}{
		{"scp-style clone_url", func(r *model.Repo) { r.CloneURL = "git@git.example:acme/x.git" }},
		{"public addresses", func(r *model.Repo) {
			r.CloneURL, r.APIURL, r.Hooks[0].URL = "https://public.example/acme/x.git", "https://public.example/api/v3/", "http://140.82.112.3/hook"
		}},
		{"ssh clone_url", func(r *model.Repo) { r.CloneURL = "ssh://git@git.example/acme/x.git" }},
		{"image on localhost with port", func(r *model.Repo) { r.Image = "127.0.0.1:5000/acme/demo-app_x.y" }},
		{"nested full_name", func(r *model.Repo) { r.FullName = "group/sub/project" }},
		{"no hooks", func(r *model.Repo) { r.Hooks = nil }},
		{"no build_timeout", func(r *model.Repo) { r.BuildTimeout = "" }},
		{"max_concurrent_builds", func(r *model.Repo) { r.MaxConcurrentBuilds = 2 }},
		{"network none", func(r *model.Repo) { r.Network = "none" }},
		{"pull_requests all", func(r *model.Repo) {
			r.PullRequests = "all"
			r.Rules = append(r.Rules, model.Rule{SourceType: "pull_request", Source: "main", Tags: []string{"pr-{pr}"}, DeleteOnClose: true})
		}},
		{"default_branch", func(r *model.Repo) { r.DefaultBranch = "release/1.x" }},
		{"size_warn_increase", func(r *model.Repo) { r.Rules[0].SizeWarnIncrease = "20%"; r.Rules[1].SizeWarnIncrease = "2.5%" }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRepo(fmt.Sprintf("acme/variant%d", i))
			tt.change(&r)
			got := h.createRepo(r)
			want := r.Public()
			want.ID, want.CreatedAt, want.Org = got.ID, got.CreatedAt, "acme"
			if tt.name == "nested full_name" {
				want.Org = "group"
			}
			if len(want.Hooks) == 0 {
				want.Hooks = nil // omitted from the JSON
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("answer = %+v\nwant     %+v", got, want)
			}
		})
	}
	if n := len(h.listRepos()); n != len(tests) {
		t.Errorf("%d repos stored, want %d", n, len(tests))
	}
}

// TestCreateRepoRefusesInternalTargets: with no allow list, every URL that
// would make Slipway connect to loopback, a private network or a metadata
// service is refused with 400 naming its field, as are clone URL schemes
// that read locally or run commands, and URLs with credentials.
func TestCreateRepoRefusesInternalTargets(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		field string
		set   func(*model.Repo)
	}{
		{"clone_url", func(r *model.Repo) { r.CloneURL = "https://127.0.0.1/acme/x.git" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "https://[::1]:8443/acme/x.git" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "https://169.254.169.254/latest/meta-data/" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "https://0x7f000001/acme/x.git" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "https://2130706433/acme/x.git" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "https://evil.example/acme/x.git" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "ssh://git@10.0.0.1/acme/x.git" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "git@192.168.1.1:acme/x.git" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "https://[::ffff:127.0.0.1]/acme/x.git" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "http://public.example/acme/x.git" }}, // plain http, public
		{"clone_url", func(r *model.Repo) { r.CloneURL = "file:///srv/git/x.git" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "/srv/git/x.git" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "ext::sh -c touch% /tmp/pwned" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "git://git.example/acme/x.git" }},
		{"clone_url", func(r *model.Repo) { r.CloneURL = "https://user:hunter2@git.example/acme/x.git" }},
		{"api_url", func(r *model.Repo) { r.APIURL = "http://127.0.0.1:3000/api/v1" }},
		{"api_url", func(r *model.Repo) { r.APIURL = "https://evil.example/api/v3/" }},
		{"api_url", func(r *model.Repo) { r.APIURL = "http://100.100.100.200/" }},
		{"api_url", func(r *model.Repo) { r.APIURL = "https://user:hunter2@git.example/api/v4" }},
		{"api_url", func(r *model.Repo) { r.APIURL = "https://hunter2@git.example/api/v4" }}, // a token as the user
		{"clone_url", func(r *model.Repo) { r.CloneURL = "https://hunter2@git.example/acme/x.git" }},
		{"hooks[0].url", func(r *model.Repo) { r.Hooks[0].URL = "http://169.254.169.254/latest/meta-data/" }},
		{"hooks[0].url", func(r *model.Repo) { r.Hooks[0].URL = "http://10.0.0.1/hook" }},
		{"hooks[0].url", func(r *model.Repo) { r.Hooks[0].URL = "http://172.16.0.1/hook" }},
		{"hooks[0].url", func(r *model.Repo) { r.Hooks[0].URL = "http://100.64.0.1/hook" }},
		{"hooks[0].url", func(r *model.Repo) { r.Hooks[0].URL = "http://[fd00::1]/hook" }},
		{"hooks[0].url", func(r *model.Repo) { r.Hooks[0].URL = "http://[fe80::1]/hook" }},
		{"hooks[0].url", func(r *model.Repo) { r.Hooks[0].URL = "http://0.0.0.0:8080/hook" }},
		{"hooks[0].url", func(r *model.Repo) { r.Hooks[0].URL = "http://evil.example/hook" }},
		{"hooks[0].url", func(r *model.Repo) { r.Hooks[0].URL = "https://user:hunter2@deploy.example/hook" }},
		{"image", func(r *model.Repo) { r.Image = "127.0.0.1:5001/acme/x" }}, // not the embedded registry
		{"image", func(r *model.Repo) { r.Image = "10.0.0.1:5000/acme/x" }},
		{"image", func(r *model.Repo) { r.Image = "evil.example/acme/x" }},
		{"image", func(r *model.Repo) { r.Image = "169.254.169.254/acme/x" }},
	}
	for i, tt := range tests {
		r := validRepo(fmt.Sprintf("acme/refused%d", i))
		tt.set(&r)
		code, raw := h.call("POST", "/api/v1/repos", r)
		if code != http.StatusBadRequest {
			t.Errorf("%d %s: HTTP %d %s, want 400", i, tt.field, code, raw)
			continue
		}
		msg := errorOf(t, raw)
		if !strings.HasPrefix(msg, tt.field+":") || strings.Contains(msg, "hunter2") {
			t.Errorf("%d: error = %q, want it to start with %q and show no password", i, msg, tt.field+":")
		}
	}
	if n := len(h.listRepos()); n != 0 {
		t.Errorf("%d repositories stored, want none", n)
	}
}

// TestCreateRepoAllowListOpensRanges: SLIPWAY_OUTBOUND_ALLOW_CIDRS opens
// ranges on purpose, plain http included, but never a metadata address.
func TestCreateRepoAllowListOpensRanges(t *testing.T) {
	h := newHarness(t, func(s *api.Server) {
		s.Outbound.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16")}
	})
	r := validRepo("acme/local")
	r.CloneURL, r.APIURL, r.Hooks[0].URL = "http://127.0.0.1:3000/acme/local.git", "http://evil.example:3000/api/v1", "http://127.0.0.1:9000/hook"
	h.createRepo(r)
	r = validRepo("acme/metadata")
	r.Hooks[0].URL = "http://169.254.169.254/latest/meta-data/"
	if code, raw := h.call("POST", "/api/v1/repos", r); code != http.StatusBadRequest {
		t.Errorf("metadata hook with 169.254.0.0/16 open: HTTP %d %s, want 400", code, raw)
	}
}

// TestCreateRepoCloneURLFromHost: without clone_url, registration records
// the clone URL the host's API gives for the full name, and refuses (400
// naming clone_url) when it cannot get one.
func TestCreateRepoCloneURLFromHost(t *testing.T) {
	h := newHarness(t)
	r := validRepo("acme/fromhost")
	r.Provider, r.CloneURL, r.Token = "fakehost", "", "host-token"
	got := h.createRepo(r)
	if want := "https://git.example/acme/fromhost.git"; got.CloneURL != want {
		t.Errorf("clone_url = %q, want the host's %q", got.CloneURL, want)
	}
	tests := []struct{ name, fullName, token, want string }{
		{"host does not know it", "acme/gone", "host-token", "404"},
		{"no token to ask with", "acme/notoken", "", "token"},
		{"host answers a local path", "acme/sneaky", "host-token", "file"},
	}
	for _, tt := range tests {
		r := validRepo(tt.fullName)
		r.Provider, r.CloneURL, r.Token = "fakehost", "", tt.token
		code, raw := h.call("POST", "/api/v1/repos", r)
		msg := errorOf(t, raw)
		if code != http.StatusBadRequest || !strings.HasPrefix(msg, "clone_url:") || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: HTTP %d %q, want 400 clone_url: … %s", tt.name, code, msg, tt.want)
		}
	}
}

// TestCreateRepoRefusesCredentialsInURLs points at the secret fields, which
// are stored apart and never served, instead of a URL that is shown.
func TestCreateRepoRefusesCredentialsInURLs(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		set  func(*model.Repo)
		want string
	}{
		{func(r *model.Repo) { r.CloneURL = "https://x-access-token:hunter2@git.example/acme/x.git" },
			`clone_url: credentials in the URL are refused; put the token in "token" (or "ssh_key" for ssh://)`},
		{func(r *model.Repo) { r.CloneURL = "https://git.example/acme/x.git?private_token=hunter2" },
			`clone_url: credentials in the URL are refused; put the token in "token" (or "ssh_key" for ssh://)`},
		{func(r *model.Repo) { r.CloneURL = "ssh://git:hunter2@git.example/acme/x.git" },
			`clone_url: credentials in the URL are refused; put the token in "ssh_key"`},
		{func(r *model.Repo) { r.APIURL = "https://git.example/api/v4?Access_Token=hunter2" },
			`api_url: credentials in the URL are refused; put the token in "token"`},
		{func(r *model.Repo) { r.Hooks[0].URL = "https://deploy.example/hook?sig=hunter2" },
			`hooks[0].url: credentials in the URL are refused; the hook is signed with its "secret"`},
	}
	for i, tt := range tests {
		r := validRepo(fmt.Sprintf("acme/creds%d", i))
		tt.set(&r)
		code, raw := h.call("POST", "/api/v1/repos", r)
		if msg := errorOf(t, raw); code != http.StatusBadRequest || msg != tt.want {
			t.Errorf("%d: HTTP %d %q, want 400 %q", i, code, msg, tt.want)
		}
	}
}

func TestCreateRepoAcceptsAnSSHAccountName(t *testing.T) {
	h := newHarness(t)
	r := validRepo("acme/ssh")
	r.CloneURL, r.SSHKey, r.KnownHosts = "ssh://git@git.example/acme/ssh.git", "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n", "git.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	h.createRepo(r)
}
