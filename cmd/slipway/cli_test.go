package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/model"
)

// cliRun runs a command line as main does, with the test's environment
// (a config dir of its own unless the test sets XDG_CONFIG_HOME), and
// answers what it printed and its exit code.
func cliRun(t *testing.T, ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if os.Getenv("XDG_CONFIG_HOME") == "" {
		t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	c := &cli{stdin: stdin, stdout: &out, stderr: &errOut, getenv: os.Getenv}
	code = execute(ctx, c, args)
	return out.String(), errOut.String(), code
}

// fakeAPI answers the calls the CLI makes with fixed records, and
// records the Authorization header of each.
type fakeAPI struct {
	*httptest.Server
	auth []string
}

const fakeToken = "slp_fake_0123456789abcdef"

func startFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, map[string]any{"account": "alice", "organization": "acme", "role": "write", "token_id": "fake"})
	})
	mux.HandleFunc("GET /api/v1/builds", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("status") != "failed" {
			http.Error(w, `{"error":"want status=failed"}`, http.StatusBadRequest)
			return
		}
		writeTestJSON(w, testBuilds())
	})
	mux.HandleFunc("GET /api/v1/repos", func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, []model.Repo{testRepo()})
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Bearer "+fakeToken {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"unauthorized"}`))
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func writeTestJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.Local)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr[T any](v T) *T { return &v }

func testBuilds() []model.Build {
	return []model.Build{
		{ID: "b2", Status: "failed", Ref: "refs/heads/main", Commit: "c0ffee0123456789", Tags: []string{"latest", "c0ffee0"},
			CreatedAt: at("2026-03-01 10:00:00"), StartedAt: ptr(at("2026-03-01 10:00:02")), FinishedAt: ptr(at("2026-03-01 10:01:14")),
			Error: "build: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"},
		{ID: "b1", Status: "queued", Ref: "refs/tags/v1.2.3", Commit: "abc", CreatedAt: at("2026-02-28 09:30:00")},
	}
}

func testRepo() model.Repo {
	return model.Repo{ID: "r1", Provider: "github", FullName: "acme/demo", Image: "127.0.0.1:5000/acme/demo",
		CloneURL: "https://git.example.com/acme/demo.git", DefaultBranch: "main", CreatedAt: at("2026-02-01 08:00:00"),
		Rules: []model.Rule{
			{SourceType: "branch", Source: "main", Tags: []string{"latest"}},
			{SourceType: "tag", Source: `/^v?[0-9]+\.[0-9]+\.[0-9]+$/`, Tags: []string{"{version}"}, Dockerfile: "build/Dockerfile",
				Platforms: "linux/amd64,linux/arm64", Enabled: ptr(false)},
		}}
}

func TestBuildsTable(t *testing.T) {
	var out bytes.Buffer
	if err := printBuilds(&out, testBuilds()); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"ID  STATUS  REF               COMMIT   TAGS            CREATED              TOOK\n" +
		"b2  failed  refs/heads/main   c0ffee0  latest,c0ffee0  2026-03-01 10:00:00  1m12s\n" +
		"b1  queued  refs/tags/v1.2.3  abc      -               2026-02-28 09:30:00  -\n"
	if out.String() != want {
		t.Errorf("builds table:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestBuildShow(t *testing.T) {
	var out bytes.Buffer
	b := testBuilds()[0]
	b.RepoID, b.Trigger, b.Image = "r1", "webhook", "127.0.0.1:5000/acme/demo"
	if err := printBuild(&out, b); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"build:      b2\n" +
		"repository: r1\n" +
		"status:     failed\n" +
		"ref:        refs/heads/main\n" +
		"commit:     c0ffee0123456789\n" +
		"trigger:    webhook\n" +
		"image:      127.0.0.1:5000/acme/demo\n" +
		"tags:       latest, c0ffee0\n" +
		"created:    2026-03-01 10:00:00\n" +
		"started:    2026-03-01 10:00:02\n" +
		"finished:   2026-03-01 10:01:14 (took 1m12s)\n" +
		"error:      build: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3\n"
	if out.String() != want {
		t.Errorf("build show:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestRepoShowAndRules(t *testing.T) {
	var out bytes.Buffer
	if err := printRepo(&out, testRepo()); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"repository:     acme/demo\n" +
		"id:             r1\n" +
		"provider:       github\n" +
		"organization:   acme\n" +
		"clone url:      https://git.example.com/acme/demo.git\n" +
		"image:          127.0.0.1:5000/acme/demo\n" +
		"default branch: main\n" +
		"created:        2026-02-01 08:00:00\n" +
		"\n" +
		"INDEX  TYPE    SOURCE                        TAGS       DOCKERFILE        CONTEXT  PLATFORMS                ENABLED\n" +
		"0      branch  main                          latest     -                 -        -                        yes\n" +
		"1      tag     /^v?[0-9]+\\.[0-9]+\\.[0-9]+$/  {version}  build/Dockerfile  -        linux/amd64,linux/arm64  no\n"
	if out.String() != want {
		t.Errorf("repo show:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestTokensTable(t *testing.T) {
	now := at("2026-03-01 12:00:00")
	list := []access.Token{
		{ID: "t1", Name: "ci", Org: "acme", Account: "acme+ci", Role: access.Write, CreatedAt: at("2026-01-01 00:00:00"),
			LastUsed: ptr(at("2026-02-27 16:20:00"))},
		{ID: "t2", Name: "laptop", Org: "acme", Account: "carol", Role: access.Admin, CreatedAt: at("2026-01-01 00:00:00"),
			ExpiresAt: ptr(at("2026-02-01 00:00:00"))},
		{ID: "t3", Name: "old", Org: "acme", Account: "bob", Role: access.Read, CreatedAt: at("2026-01-01 00:00:00"),
			RevokedAt: ptr(at("2026-01-02 00:00:00"))},
	}
	var out bytes.Buffer
	if err := printTokens(&out, list, now); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"ID  NAME    ORG   ACCOUNT  ROLE   EXPIRES           LAST USED         STATE\n" +
		"t1  ci      acme  acme+ci  write  -                 2026-02-27 16:20  active\n" +
		"t2  laptop  acme  carol    admin  2026-02-01 00:00  -                 expired\n" +
		"t3  old     acme  bob      read   -                 -                 revoked\n"
	if out.String() != want {
		t.Errorf("token list:\n%s\nwant:\n%s", out.String(), want)
	}
}

// `builds --status failed` against a server: a table by default, the
// API's JSON with -o json.
func TestBuildsCommandTableAndJSON(t *testing.T) {
	f := startFakeAPI(t)
	t.Setenv("SLIPWAY_URL", f.URL)
	t.Setenv("SLIPWAY_API_TOKEN", fakeToken)
	ctx := context.Background()
	out, errOut, code := cliRun(t, ctx, nil, "builds", "--status", "failed")
	if code != 0 {
		t.Fatalf("builds: exit %d: %s", code, errOut)
	}
	if lines := strings.Split(out, "\n"); len(lines) != 4 || !strings.HasPrefix(lines[1], "b2  failed  refs/heads/main") {
		t.Errorf("builds printed:\n%s", out)
	}
	out, errOut, code = cliRun(t, ctx, nil, "builds", "--status", "failed", "-o", "json")
	if code != 0 {
		t.Fatalf("builds -o json: exit %d: %s", code, errOut)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("builds -o json printed %q: %v", out, err)
	}
	if len(got) != 2 || got[0]["id"] != "b2" || got[0]["status"] != "failed" || got[1]["ref"] != "refs/tags/v1.2.3" {
		t.Errorf("builds -o json = %v", got)
	}
	// The old spelling lists the same.
	old, _, code := cliRun(t, ctx, nil, "builds", "list", "--status", "failed", "-o", "json")
	if code != 0 || old != out {
		t.Errorf("builds list -o json: exit %d\n%s\nwant the same as builds -o json", code, old)
	}
}

func TestRepoListJSONIsTheAPIs(t *testing.T) {
	f := startFakeAPI(t)
	t.Setenv("SLIPWAY_URL", f.URL)
	t.Setenv("SLIPWAY_API_TOKEN", fakeToken)
	out, errOut, code := cliRun(t, context.Background(), nil, "repo", "list", "-o", "json")
	if code != 0 {
		t.Fatalf("repo list -o json: exit %d: %s", code, errOut)
	}
	var got []model.Repo
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 || got[0].ID != "r1" || got[0].Rules[1].Dockerfile != "build/Dockerfile" {
		t.Fatalf("repo list -o json printed %s (%v)", out, err)
	}
	out, _, _ = cliRun(t, context.Background(), nil, "repo", "list")
	want := "" +
		"ID  PROVIDER  REPOSITORY  IMAGE                     RULES\n" +
		"r1  github    acme/demo   127.0.0.1:5000/acme/demo  2\n"
	if out != want {
		t.Errorf("repo list:\n%s\nwant:\n%s", out, want)
	}
}

// `slipway login` checks the token, writes the config file 0600 in a
// 0700 directory, and later commands use it; flags and the environment
// override it, and its token never goes to another server.
func TestLoginWritesConfigAndIsUsed(t *testing.T) {
	f := startFakeAPI(t)
	cfgHome := filepath.Join(t.TempDir(), "cfg")
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	t.Setenv("SLIPWAY_URL", "")
	t.Setenv("SLIPWAY_API_TOKEN", "")
	t.Setenv("SLIPWAY_DATA_DIR", t.TempDir()) // no api-token file there
	ctx := context.Background()

	out, errOut, code := cliRun(t, ctx, strings.NewReader(fakeToken+"\n"), "login", "--server", f.URL+"/", "--token-stdin")
	if code != 0 {
		t.Fatalf("login: exit %d: %s", code, errOut)
	}
	path := filepath.Join(cfgHome, "slipway", "config.json")
	if want := "logged in to " + f.URL + " as alice (write in acme)\nsaved in " + path + "\n"; out != want {
		t.Errorf("login printed %q, want %q", out, want)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v, %v; want mode 0600", info, err)
	}
	if dir, err := os.Stat(filepath.Dir(path)); err != nil || dir.Mode().Perm() != 0o700 {
		t.Fatalf("config dir: %v, %v; want mode 0700", dir, err)
	}
	raw, _ := os.ReadFile(path)
	if want := "{\n  \"server\": \"" + f.URL + "\",\n  \"token\": \"" + fakeToken + "\"\n}\n"; string(raw) != want {
		t.Errorf("config file holds %q, want %q", raw, want)
	}
	if strings.Contains(out+errOut, fakeToken) {
		t.Errorf("login printed the token")
	}

	out, errOut, code = cliRun(t, ctx, nil, "whoami")
	if code != 0 || out != "alice (write in acme) on "+f.URL+"\n" {
		t.Errorf("whoami after login: exit %d %q %s", code, out, errOut)
	}

	// SLIPWAY_API_TOKEN overrides the file, --token overrides both.
	t.Setenv("SLIPWAY_API_TOKEN", "slp_env_token")
	_, errOut, code = cliRun(t, ctx, nil, "whoami")
	if code != 1 || !strings.Contains(errOut, "HTTP 401") || !strings.Contains(errOut, "run `slipway login --server "+f.URL+"`") {
		t.Errorf("whoami with a wrong SLIPWAY_API_TOKEN: exit %d: %s", code, errOut)
	}
	if _, errOut, code = cliRun(t, ctx, nil, "whoami", "--token", fakeToken); code != 0 {
		t.Errorf("whoami --token: exit %d: %s", code, errOut)
	}
	t.Setenv("SLIPWAY_API_TOKEN", "")

	// Another server never gets the login's token.
	other := startFakeAPI(t)
	_, errOut, code = cliRun(t, ctx, nil, "whoami", "--server", other.URL)
	if code != 1 || !strings.Contains(errOut, "no API token for "+other.URL+": run `slipway login --server "+other.URL+"`") || len(other.auth) != 0 {
		t.Errorf("whoami on another server: exit %d, %d requests: %s", code, len(other.auth), errOut)
	}

	// A wrong token is refused and the file stays.
	_, errOut, code = cliRun(t, ctx, nil, "login", "--server", f.URL, "--token", "slp_wrong")
	if code != 1 || !strings.Contains(errOut, "HTTP 401") {
		t.Errorf("login with a wrong token: exit %d: %s", code, errOut)
	}
	if raw2, _ := os.ReadFile(path); !bytes.Equal(raw, raw2) {
		t.Errorf("a refused login changed the config file to %s", raw2)
	}
}

func TestExitCodes(t *testing.T) {
	ctx := context.Background()
	t.Setenv("SLIPWAY_URL", "http://127.0.0.1:1")
	t.Setenv("SLIPWAY_API_TOKEN", fakeToken)
	cases := []struct {
		args     []string
		code     int
		stderr   string
		noStdout bool
	}{
		{[]string{"bogus"}, 2, `unknown command "bogus" for "slipway"`, true},
		{[]string{"webhook,bogus"}, 2, `unknown command "webhook,bogus"`, true},
		{[]string{"repo", "lst"}, 2, `unknown command "lst" for "slipway repo"; did you mean list?`, true},
		{[]string{"logs"}, 2, "slipway logs: want BUILD", true},
		{[]string{"builds", "--nope"}, 2, "unknown flag: --nope", true},
		{[]string{"builds", "-o", "yaml"}, 2, "-o yaml: want table or json", true},
		{[]string{"repo"}, 2, "Usage:", true},
		{[]string{"trigger", "r1"}, 2, "what to build? Give --branch, --tag, --ref or --commit", true},
		{[]string{"trigger", "r1", "--branch", "main", "--tag", "v1"}, 2, "give one of --branch, --tag and --ref", true},
		{[]string{"repo", "list"}, 1, "is Slipway running at http://127.0.0.1:1?", true},
	}
	for _, c := range cases {
		out, errOut, code := cliRun(t, ctx, nil, c.args...)
		if code != c.code || !strings.Contains(errOut, c.stderr) || (c.noStdout && out != "") {
			t.Errorf("slipway %v: exit %d, stdout %q, stderr %q; want exit %d and %q", c.args, code, out, errOut, c.code, c.stderr)
		}
	}
	out, _, code := cliRun(t, ctx, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "slipway dev commit ") {
		t.Errorf("version: exit %d %q", code, out)
	}
}

// On a terminal the progress line shows once output has been quiet for a
// second, and output clears it first.
func TestProgressLine(t *testing.T) {
	var out bytes.Buffer
	p := &progress{w: &out, on: true}
	start := at("2026-03-01 10:00:00")
	p.Set("building", start)
	p.last = start
	p.draw(start.Add(500 * time.Millisecond)) // output was too recent
	p.draw(start.Add(12*time.Second + 400*time.Millisecond))
	if _, err := p.Write([]byte("step 2\n")); err != nil {
		t.Fatal(err)
	}
	if want := "\r\x1b[Kbuilding… 12s\r\x1b[Kstep 2\n"; out.String() != want {
		t.Errorf("terminal got %q, want %q", out.String(), want)
	}
	// Not after half a line, and never off a terminal.
	out.Reset()
	_, _ = p.Write([]byte("half"))
	p.draw(start.Add(time.Hour))
	off := &progress{w: &out}
	off.Set("building", start)
	off.draw(start.Add(time.Hour))
	if out.String() != "half" {
		t.Errorf("got %q, want only the output", out.String())
	}
}

// serveEvents answers GET /api/v1/builds/{id}/log as the live log stream
// of contract 1: a status event, the log in two pieces, the final status
// and the end.
func serveEvents(t *testing.T, final model.Build) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/builds/{id}/log", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "want the stream", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		running := final
		running.Status, running.FinishedAt, running.Error = model.StatusRunning, nil, ""
		status := func(b model.Build) string {
			raw, _ := json.Marshal(b)
			return "event: status\ndata: " + string(raw) + "\n\n"
		}
		_, _ = io.WriteString(w, status(running)+
			"event: log\nid: 8\ndata: {\"text\":\"#1 step\\n\"}\n\n"+
			": keepalive\n\n"+
			"event: log\nid: 14\ndata: {\"text\":\"#2 end\"}\n\n"+
			status(final)+
			"event: end\ndata: {\"status\":\""+final.Status+"\"}\n\n")
	})
	mux.HandleFunc("GET /api/v1/builds/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, final)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestLogsFollowExitCodes(t *testing.T) {
	ctx := context.Background()
	t.Setenv("SLIPWAY_API_TOKEN", fakeToken)
	ok := testBuilds()[0]
	ok.Status, ok.Error = model.StatusSucceeded, ""
	srv := serveEvents(t, ok)
	out, errOut, code := cliRun(t, ctx, nil, "logs", "-f", "b2", "--server", srv.URL)
	if code != 0 || out != "#1 step\n#2 end\n" || errOut != "" {
		t.Errorf("logs -f of a build that succeeds: exit %d, stdout %q, stderr %q; want 0 and the log", code, out, errOut)
	}

	srv = serveEvents(t, testBuilds()[0]) // failed, exit code 3
	out, errOut, code = cliRun(t, ctx, nil, "logs", "-f", "b2", "--server", srv.URL)
	want := "slipway: build b2 failed: build: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3\n"
	if code != 1 || out != "#1 step\n#2 end\n" || errOut != want {
		t.Errorf("logs -f of a build that fails: exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
	// The old spelling follows too.
	if _, _, code = cliRun(t, ctx, nil, "builds", "log", "-f", "b2", "--server", srv.URL); code != 1 {
		t.Errorf("builds log -f of a failed build: exit %d, want 1", code)
	}
}
