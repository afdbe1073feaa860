package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// chromiumPath is Debian's chromium, which `make deps` installs.
const chromiumPath = "/usr/bin/chromium"

// slowRun prints dashboard-101, waits, then prints dashboard-202.
const slowRun = "echo dashboard-$((100+1)) && sleep 8 && echo dashboard-$((200+2)) && echo built > /built.txt"

// TestDashboard drives the web dashboard in real headless Chromium, as a
// person would: sign in with the API token, connect a repository from a
// local stand-in of GitHub's API, push, watch the log stream into the open
// build page until it succeeds, read the image's layers, rebuild; then sign
// in with a read token and find no button that changes anything.
// Screenshots of the repository, build and image pages go to the test's
// artifact directory (go test -artifacts keeps them).
func TestDashboard(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "acme-dash")
	src.Commit("first", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo first > /built.txt")})
	src.Push("main")
	host := rig.StartHostAPI(t)
	host.Repo = map[string]any{"full_name": "acme/dash", "default_branch": "main", "clone_url": src.CloneURL, "private": true}
	shots := t.ArtifactDir()

	b := startBrowser(t)

	// Sign in with the bootstrap admin's token, from the keyboard.
	b.do(chromedp.Navigate(s.URL()+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	b.do(chromedp.SendKeys(chromedp.ID("token"), s.Token+kb.Enter))
	b.wait("the repositories page, signed in as the site admin", `document.querySelector('h1')?.textContent === 'Repositories' &&
		document.querySelector('#who')?.textContent.includes('site admin')`)
	if got := b.text(".empty-state"); !strings.Contains(got, "No repositories yet.") {
		t.Errorf("a new server's repositories page says %q, want it to say there are none yet", got)
	}

	// Connect the repository through the form, as `slipway repo connect` would.
	b.do(chromedp.Click(chromedp.CSS(`a[href="#/connect"]`)), chromedp.WaitVisible(chromedp.ID("c-name")))
	b.do(chromedp.SetValue(chromedp.ID("c-host"), "github"),
		chromedp.SendKeys(chromedp.ID("c-name"), "acme/dash"),
		chromedp.SendKeys(chromedp.ID("c-token"), "host-token"))
	if got, want := b.value("c-image"), s.RegistryAddr+"/acme/dash"; got != want {
		t.Errorf("the image field proposes %q, want %q (this server's registry, organization, name)", got, want)
	}
	b.do(chromedp.Click(chromedp.CSS("details.more summary")), chromedp.WaitVisible(chromedp.ID("c-api")),
		chromedp.SendKeys(chromedp.ID("c-api"), host.URL+"/"),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	b.wait("the connected repository's page", `location.hash.startsWith('#/repos/') && document.querySelector('h1')?.textContent === 'acme/dash'`)
	repoID := strings.TrimPrefix(b.eval(`location.hash`), "#/repos/")
	secret := ""
	for _, r := range host.Requests() {
		if r.Method == "POST" && r.Path == "/repos/acme/dash/hooks" {
			cfg, _ := r.Body["config"].(map[string]any)
			secret, _ = cfg["secret"].(string)
		}
	}
	if len(secret) < 32 {
		t.Fatalf("connecting from the page made no webhook with a secret on the host: %+v", host.Requests())
	}
	var repo model.Repo
	if code := s.Do("GET", "/api/v1/repos/"+repoID, nil, &repo); code != http.StatusOK || repo.FullName != "acme/dash" ||
		repo.CloneURL != src.CloneURL || repo.Image != s.RegistryAddr+"/acme/dash" || repo.HookID != "4242" {
		t.Fatalf("repository %s after connecting: HTTP %d %+v", repoID, code, repo)
	}

	// Rules are edited on the page and checked by the API: a rule with no
	// source is refused naming the field, which is marked and focused.
	b.press("Edit rules")
	b.wait("the rules form", `document.querySelectorAll('fieldset.rule-edit').length === 2`)
	b.press("Add a rule")
	b.do(chromedp.SendKeys(chromedp.ID("rule-2-tags"), "edge"))
	b.press("Save rules")
	b.wait("the API's refusal", `document.querySelector('form.rules-form [role="alert"]')?.textContent.includes('rules[2].source: must not be empty')`)
	if got := b.eval(`document.activeElement.id + ' ' + document.activeElement.getAttribute('aria-invalid')`); got != "rule-2-source true" {
		t.Errorf("after the refusal the focus is on %q, want the invalid field rule-2-source marked aria-invalid", got)
	}
	b.do(chromedp.SendKeys(chromedp.ID("rule-2-source"), "develop"))
	b.press("Save rules")
	b.wait("the saved rules", `document.querySelectorAll('ol.rules > li').length === 3 && document.querySelector('ol.rules').textContent.includes('develop')`)
	if code := s.Do("GET", "/api/v1/repos/"+repoID, nil, &repo); code != http.StatusOK || len(repo.Rules) != 3 ||
		repo.Rules[2].SourceType != "branch" || repo.Rules[2].Source != "develop" || strings.Join(repo.Rules[2].Tags, ",") != "edge" {
		t.Fatalf("rules after saving on the page: HTTP %d %+v", code, repo.Rules)
	}

	// A deploy hook, so that the build has a delivery to show and redeliver.
	recv := rig.StartReceiver(t, 0)
	if code := s.Do("PATCH", "/api/v1/repos/"+repoID, map[string]any{"hooks": []model.Hook{{URL: recv.URL + "/deploy", Secret: deploy.GenerateSecret()}}}, nil); code != http.StatusOK {
		t.Fatalf("add a deploy hook: HTTP %d", code)
	}

	// Push a commit whose build takes a while between two lines of output,
	// and open its page at once. The shell computes the lines
	// (dashboard-101, dashboard-202), so that they are not in the log
	// before the step prints them: BuildKit's log names the command.
	commit := src.Commit("slow build", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, slowRun)})
	src.Push("main")
	body, headers := githubRender(rig.Push{Repo: "acme/dash", CloneURL: src.CloneURL, Ref: "refs/heads/main", After: commit, Message: "slow build"}, "dashboard-push", secret)
	hook := rig.SendHook(t, s.URL()+"/hooks/github", headers, body)
	if hook.Code != http.StatusAccepted || len(hook.Builds) != 1 {
		t.Fatalf("push signed with the secret the page's connect made: %+v", hook)
	}
	buildID := hook.Builds[0]
	b.do(chromedp.Navigate(s.URL() + "/#/builds/" + buildID))
	b.wait("the build page", `document.querySelector('#build-status') !== null && document.querySelector('#log') !== null`)
	// The page is never reloaded: this mark would be gone.
	b.eval(`window.stillTheSamePage = 'yes'`)

	// The log arrives while the build runs: the first line shows, with
	// the status "running", before the build has written the second.
	b.wait("the first line in the log while the build is running", `document.querySelector('#build-status').textContent.trim() === 'running' &&
		document.querySelector('#log').textContent.includes('dashboard-101') &&
		!document.querySelector('#log').textContent.includes('dashboard-202')`)
	live := time.Now()
	b.waitFor(3*time.Minute, "succeeded, with the whole log", `document.querySelector('#build-status').textContent.trim() === 'succeeded' &&
		document.querySelector('#log').textContent.includes('dashboard-202')`)
	t.Logf("the page showed the step's first line %.1f s before it showed succeeded", time.Since(live).Seconds())
	if got := b.eval(`window.stillTheSamePage`); got != "yes" {
		t.Errorf("the build page was reloaded while it followed the log")
	}
	if got := b.eval(`document.querySelector('#log-state').textContent`); got != "The log is complete." {
		t.Errorf("after the build the log says %q, want %q", got, "The log is complete.")
	}
	if got, want := b.text(".pull code"), "docker pull "+s.RegistryAddr+"/acme/dash@"+s.Build(buildID).Digest; got != want {
		t.Errorf("the pull line reads %q, want %q", got, want)
	}
	b.wait("the deploy hook's delivery", `document.querySelector('.deliveries-list')?.textContent.includes('delivered') &&
		document.querySelector('.deliveries-list').textContent.includes('1 try · HTTP 204')`)
	b.shot(filepath.Join(shots, "build.png"))
	if dst := os.Getenv("SLIPWAY_DASHBOARD_SHOT"); dst != "" {
		// For the README: SLIPWAY_DASHBOARD_SHOT=$PWD/docs/dashboard.png.
		b.shot(dst)
	}
	b.press("Redeliver")
	recv.WaitCalls(t, 2, time.Minute)
	b.wait("the redelivery on the page", `document.querySelector('.deliveries-list').textContent.includes('2 tries · HTTP 204')`)

	// The image page lists the layers with the instructions that made them.
	b.do(chromedp.Click(chromedp.CSS(`a[href="#/builds/` + buildID + `/image"]`)))
	b.wait("the image's layers", `document.querySelectorAll('tr.layer').length > 0`)
	layers := b.eval(`[...document.querySelectorAll('tr.layer td.instr')].map((td) => td.textContent).join('\n')`)
	for _, want := range []string{"RUN " + slowRun, "COPY . /src"} {
		if !strings.Contains(layers, want) {
			t.Errorf("the layers table lacks %q; it lists:\n%s", want, layers)
		}
	}
	if got := b.eval(`document.querySelector('.stat-value')?.textContent ?? ''`); !strings.HasSuffix(got, "kB") && !strings.HasSuffix(got, "MB") {
		t.Errorf("the total size reads %q, want a size in kB or MB", got)
	}
	b.shot(filepath.Join(shots, "image.png"))

	// Rebuild from the build page: the page moves to the new build.
	b.do(chromedp.Navigate(s.URL() + "/#/builds/" + buildID))
	b.press("Rebuild")
	b.wait("the new build's page", `location.hash.startsWith('#/builds/') && location.hash !== '#/builds/`+buildID+`'`)
	rebuildID := strings.TrimPrefix(b.eval(`location.hash`), "#/builds/")
	if nb := s.Build(rebuildID); nb.RebuildOf != buildID || nb.Commit != commit {
		t.Errorf("the page's rebuild made %+v, want a rebuild of %s at %s", nb, buildID, commit)
	}
	b.waitFor(3*time.Minute, "the rebuild succeeded", `document.querySelector('#build-status').textContent.trim() === 'succeeded'`)

	// The repository page charts both builds.
	b.do(chromedp.Navigate(s.URL() + "/#/repos/" + repoID))
	b.wait("the chart of the repository's builds", `document.querySelectorAll('svg.chart g.bar').length === 2`)
	if got := b.eval(`document.querySelector('svg.chart desc').textContent`); !strings.HasPrefix(got, "2 recent builds, oldest first.") {
		t.Errorf("the chart's text alternative reads %q", got)
	}
	b.shot(filepath.Join(shots, "repository.png"))

	// The registry browser finds the image, searches, and lists its tag
	// with the build that pushed it.
	b.do(chromedp.Navigate(s.URL() + "/#/images"))
	b.wait("the registry's images", `document.querySelector('#img-results a[href="#/images/acme/dash"]') !== null`)
	b.do(chromedp.SendKeys(chromedp.ID("img-q"), "nothing-is-called-this"))
	b.wait("a search that matches nothing", `document.querySelector('#img-results').textContent === 'No images match.'`)
	b.do(chromedp.Navigate(s.URL()+"/#/images?q=das"), chromedp.Click(chromedp.CSS(`a[href="#/images/acme/dash"]`)))
	b.wait("the image's tags", `[...document.querySelectorAll('td code.chip')].some((c) => c.textContent === 'latest')`)
	latest := `[...document.querySelectorAll('tbody tr')].find((tr) => tr.querySelector('code.chip')?.textContent === 'latest')`
	if got := b.eval(latest + `.querySelector('a[href^="#/builds/"]')?.getAttribute('href') ?? ''`); got != "#/builds/"+buildID && got != "#/builds/"+rebuildID {
		t.Errorf("the tag latest links to %q, want the build that pushed it (%s or its rebuild %s)", got, buildID, rebuildID)
	}
	if got, want := b.eval(latest+`.querySelector('.command code').textContent`), "docker pull "+s.RegistryAddr+"/acme/dash:latest"; got != want {
		t.Errorf("the tag's pull line reads %q, want %q", got, want)
	}

	// A reader sees the same pages without a button that changes anything.
	var issued struct {
		Token string `json:"token"`
	}
	if code := s.Do("PUT", "/api/v1/orgs/acme/teams/viewers", map[string]any{"role": "read", "members": []string{"viewer"}}, nil); code != http.StatusOK {
		t.Fatalf("make acme's viewers team: HTTP %d", code)
	}
	if code := s.Do("POST", "/api/v1/tokens", map[string]any{"name": "viewer", "organization": "acme", "account": "viewer", "role": "read"}, &issued); code != http.StatusCreated {
		t.Fatalf("issue a read token: HTTP %d", code)
	}
	r := b.tab()
	r.do(chromedp.Navigate(s.URL()+"/#/builds/"+buildID), chromedp.WaitVisible(chromedp.ID("token")))
	r.do(chromedp.SendKeys(chromedp.ID("token"), issued.Token), chromedp.Click(chromedp.CSS(`form.signin button[type="submit"]`)))
	r.wait("the build page as a reader", `document.querySelector('#build-status')?.textContent.trim() === 'succeeded'`)
	if got := r.eval(`document.querySelector('#who').textContent`); !strings.Contains(got, "acme · read") {
		t.Errorf("the reader's header says %q, want it to show acme · read", got)
	}
	pages := map[string]string{"/#/builds/" + buildID: "#build-status", "/#/repos/" + repoID: "svg.chart", "/#/": ".repo-list"}
	for page, ready := range pages {
		r.do(chromedp.Navigate(s.URL()+page), chromedp.WaitVisible(chromedp.CSS(ready)))
		got := r.eval(`[...document.querySelectorAll('main button, main a.btn')].map((x) => x.textContent).join(', ')`)
		for _, action := range []string{"Rebuild", "Cancel build", "Edit rules", "Connect a repository", "Build main now", "Redeliver", "Create a badge key"} {
			if strings.Contains(got, action) {
				t.Errorf("a reader is offered %q on %s (buttons: %s)", action, page, got)
			}
		}
	}
	b.noExceptions()
}

// browser is one headless Chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
	// exceptions are the page's uncaught JavaScript errors.
	mu         *sync.Mutex
	exceptions *[]string
}

// startBrowser starts Debian's Chromium headless with a fresh profile and
// nothing that reaches outside this machine: no background networking,
// component updates, sync or QUIC, and every name but localhost unresolved.
func startBrowser(t *testing.T) browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: run `make deps` (make test does), which installs Debian's chromium: %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	b := browser{t: t, ctx: ctx, mu: &sync.Mutex{}, exceptions: &[]string{}}
	b.listen()
	return b
}

// tab opens another tab of the same browser: its sessionStorage is its own,
// so it starts signed out.
func (b browser) tab() browser {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	nb := browser{t: b.t, ctx: ctx, mu: b.mu, exceptions: b.exceptions}
	nb.listen()
	return nb
}

func (b browser) listen() {
	if err := chromedp.Listen(b.ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			b.mu.Lock()
			*b.exceptions = append(*b.exceptions, (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
			b.mu.Unlock()
		}
	}); err != nil {
		b.t.Fatalf("start chromium: %v", err)
	}
}

func (b browser) noExceptions() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range *b.exceptions {
		b.t.Errorf("uncaught error in the page: %s", e)
	}
}

func (b browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v\npage text: %s", err, b.pageText())
	}
}

// eval runs a JavaScript expression and answers its value as text.
func (b browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return string(raw)
	}
	return s
}

// press clicks the button labelled label, once it is there.
func (b browser) press(label string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.Search(`//button[normalize-space()=` + jsString(label) + `]`)))
}

func (b browser) text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(b.eval(`document.querySelector(` + jsString(sel) + `)?.textContent ?? ''`))
}

func (b browser) value(id string) string {
	b.t.Helper()
	return b.eval(`document.getElementById(` + jsString(id) + `).value`)
}

func jsString(s string) string {
	raw, _ := json.Marshal(s)
	return string(raw)
}

func (b browser) wait(what, cond string) {
	b.t.Helper()
	b.waitFor(time.Minute, what, cond)
}

// waitFor checks cond every 50 ms until it holds, failing the test with the
// page's text when limit passes.
func (b browser) waitFor(limit time.Duration, what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if b.eval(`(() => { try { return Boolean(`+cond+`); } catch { return false; } })()`) == "true" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("waited %s for %s\npage text: %s", limit, what, b.pageText())
}

func (b browser) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + '\n' + document.body.innerText`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return raw
}

// shot saves a full-page PNG.
func (b browser) shot(path string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}
