package worker

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/redact"
	"github.com/slipway-build/slipway/registry"
	"github.com/slipway-build/slipway/rules"
	"github.com/slipway-build/slipway/source"
)

// outcome is how a build ended.
type outcome struct {
	digest      string
	skippedTags []string
	skip        string // why nothing was built
	cancelled   bool
	// later is the work left for after the build's end is stored and its
	// hooks queued: the registry cache export and the checkout's removal.
	later  *deferredExport
	err    error
	gaveUp bool // err is Slipway giving up after too many attempts
	// imageSize and warnings are what measure found of the pushed image.
	imageSize int64
	warnings  []string
}

// succeeded reports whether the build pushed its image.
func (o outcome) succeeded() bool { return !o.cancelled && o.err == nil && o.skip == "" }

// failed reports whether the build ends failed.
func (o outcome) failed() bool { return !o.cancelled && o.err != nil }

func (o outcome) apply(b *model.Build) {
	switch {
	case o.cancelled:
		b.Status = model.StatusCancelled
		if b.Reason == "" {
			b.Reason = "cancelled"
		}
	case o.err != nil:
		// A build's error is served by the API and posted to the Git host:
		// a URL it quotes must not carry credentials there.
		b.Status, b.Error, b.GaveUp = model.StatusFailed, redact.Text(o.err.Error()), o.gaveUp
		b.TestFailed = b.TestFailed || isTestFailure(o.err)
		var reg registryError
		if errors.As(o.err, &reg) && b.RetryingSince != nil {
			b.Error = redact.Text(fmt.Sprintf("registry %s unreachable for %s: %v", reg.host, b.FinishedAt.Sub(*b.RetryingSince).Round(time.Second), reg.err))
		}
	case o.skip != "":
		b.Status, b.Reason = model.StatusSkipped, o.skip
	default:
		// A cancel request that came too late does not undo a pushed image.
		b.Status, b.Digest, b.Error, b.SkippedTags = model.StatusSucceeded, o.digest, "", o.skippedTags
		b.ImageSize, b.Warnings = o.imageSize, o.warnings
		b.Reason, b.CancelRequested, b.RetryingSince = "", false, nil
	}
}

// run does the build itself; its log is kept whatever happens.
func (w *Worker) run(ctx context.Context, repo model.Repo, b model.Build) outcome {
	logw := newCappedLog(redact.NewWriter(w.Logs(b.ID), w.secrets(repo)...), w.LogLimit, w.logUsed(ctx, b.ID))
	defer logw.Close()
	out := w.pipeline(ctx, repo, b, logw)
	var stopped error
	if ctx.Err() != nil {
		stopped = context.Cause(ctx)
	}
	_, _ = io.WriteString(logw, endLine(stopped, b, out))
	return out
}

// endLine is the log's last line for one attempt of b; stopped is why the
// build's context ended, if it did.
func endLine(stopped error, b model.Build, out outcome) string {
	var infra infraError
	switch {
	case stopped != nil:
		return fmt.Sprintf("\n==> stopped: %v\n", stopped)
	case errors.As(out.err, &infra):
		// execute hands the job back: this attempt ends, the build does
		// not, and the log must not say it failed.
		return fmt.Sprintf("\n==> interrupted, the build will be retried: %v\n", out.err)
	case out.err != nil:
		return fmt.Sprintf("\n==> build failed: %v\n", out.err)
	case out.skip != "":
		return fmt.Sprintf("\n==> skipped: %s\n", out.skip)
	case isFork(b):
		return fmt.Sprintf("\n==> built; not pushed: %s\n", forkNote)
	default:
		return fmt.Sprintf("\n==> pushed %s@%s\n", b.Image, out.digest)
	}
}

// secrets are the values hidden in a build's log wherever they show:
// BuildKit and Git print what they are given, and a Dockerfile can echo.
func (w *Worker) secrets(repo model.Repo) []string {
	out := append([]string{repo.Token, repo.WebhookSecret}, w.Secrets...)
	for _, h := range repo.Hooks {
		out = append(out, h.Secret)
	}
	return out
}

// logUsed is how much of the build's log earlier attempts stored; if the
// store cannot say, this attempt gets the whole limit.
func (w *Worker) logUsed(ctx context.Context, id string) int64 {
	if w.LogSize == nil {
		return 0
	}
	n, err := w.LogSize(ctx, id)
	if err != nil {
		w.logger().Warn("size of the log so far; this attempt may log up to the whole limit", "build", id, "err", err)
		return 0
	}
	return n
}

func (w *Worker) pipeline(ctx context.Context, repo model.Repo, b model.Build, logw io.Writer) (result outcome) {
	st := newStages()
	defer st.write(logw)
	creds, err := w.registryLogin(ctx, b)
	st.done("login")
	if err != nil {
		return outcome{err: err}
	}
	if b.Digest != "" {
		// An earlier attempt pushed the image and died before it finished:
		// move the tags, never push again.
		fmt.Fprintf(logw, "==> %s@%s was pushed by an earlier attempt; moving tags only\n", b.Image, b.Digest)
		out := w.tag(ctx, b, b.Digest, nil, creds, logw)
		w.measure(ctx, b, creds, &out, logw)
		return out
	}
	if err := w.Builder.Ping(ctx); err != nil {
		return outcome{err: infraError{err: fmt.Errorf("buildkit unavailable: %w", err)}}
	}
	st.done("ping")
	// Checkouts hold private source: only Slipway's user may read them.
	if err := PrivateDir(w.WorkDir); err != nil {
		return outcome{err: infraError{err: fmt.Errorf("work dir: %w", err)}}
	}
	work := filepath.Join(w.WorkDir, b.ID)
	release := func() {} // lets the checkout go: after the deferred cache export, if any
	cleanup := func() { release(); _ = os.RemoveAll(work); _ = os.RemoveAll(work + ".auth") }
	cleanup()
	defer func() {
		if result.later == nil {
			cleanup()
		}
	}()
	auth, err := w.cloneAuth(ctx, repo, b.CloneURL, work+".auth", logw)
	if err != nil {
		return outcome{err: err}
	}
	co := source.Checkout{URL: b.CloneURL, Ref: fetchRef(b), Commit: b.Commit, Dir: work, Progress: logw, Auth: auth, Submodules: repo.Submodules}
	fmt.Fprintf(logw, "==> clone %s %s (%s)\n", b.CloneURL, co.Ref, b.Commit)
	tree, err := w.checkout(ctx, repo, b, co)
	release = tree.Release
	if err != nil {
		return outcome{err: err}
	}
	co.Dir = tree.Dir
	dir := tree.Dir
	st.done("clone")
	if b.DiffFilter {
		if why := pathFilter(ctx, co, b, logw); why != "" {
			return outcome{skip: why}
		}
	}
	if b.Message == "" {
		b.Message, _ = source.Message(dir, b.Commit)
	}
	req, err := request(dir, b, w.now())
	if err != nil {
		return outcome{err: err}
	}
	req.Credentials = creds
	req.ContextKey = tree.Key
	_, later := w.Builder.(cacheExporter)
	req.CacheLater = later && req.CacheRef != ""
	st.done("prepare")
	if err := w.test(ctx, b, req, logw); err != nil {
		return outcome{err: err}
	}
	if err := w.autotest(ctx, repo, b, dir, req, logw); err != nil {
		return outcome{err: err}
	}
	fmt.Fprintf(logw, "==> build %s (context %s) for %s\n", b.Rule.Dockerfile, b.Rule.Context, strings.Join(req.Platforms, ","))
	st.done("tests")
	res, err := w.Builder.Build(ctx, req, logw)
	if err != nil {
		return outcome{err: w.buildError(ctx, b, err)}
	}
	st.done("build")
	if isFork(b) {
		return outcome{}
	}
	if _, err := w.Builds.UpdateBuild(ctx, b.ID, func(cur *model.Build) error { cur.Digest = res.Digest; return nil }); err != nil {
		return outcome{err: infraError{err: fmt.Errorf("record pushed digest: %w", err)}}
	}
	st.done("record")
	out := w.tag(ctx, b, res.Digest, &co, creds, logw)
	st.done("tag")
	w.measure(ctx, b, creds, &out, logw)
	st.done("size")
	if req.CacheLater && out.succeeded() {
		out.later = &deferredExport{req: req, cleanup: cleanup}
	}
	return out
}

// checkout checks the build's commit out: in a working tree kept for the
// repository when the worker keeps mirrors, otherwise afresh in co.Dir.
// Release lets the tree and the mirror go once the build, and its cache
// export, no longer read them.
func (w *Worker) checkout(ctx context.Context, repo model.Repo, b model.Build, co source.Checkout) (source.WorkTree, error) {
	if w.Mirrors == nil || repo.ID == "" {
		return source.WorkTree{Dir: co.Dir, Release: func() {}}, source.Clone(ctx, co)
	}
	return w.Mirrors.Tree(ctx, repo.ID, b.ID, co)
}

// test builds the rule's test stage, when it names one, before the image:
// a failing test ends the build before anything is pushed.
func (w *Worker) test(ctx context.Context, b model.Build, req builder.Request, logw io.Writer) error {
	if b.Rule.Test == nil || b.Rule.Test.Target == "" {
		return nil
	}
	req.Target, req.Image, req.Push = b.Rule.Test.Target, "", false
	fmt.Fprintf(logw, "==> test stage %q of %s\n", req.Target, b.Rule.Dockerfile)
	if err := w.Builder.Test(ctx, req, logw); err != nil {
		if ctx.Err() != nil {
			return err
		}
		var infra infraError
		var reg registryError
		if berr := w.buildError(ctx, b, err); errors.As(berr, &infra) || errors.As(berr, &reg) {
			return berr
		}
		return TestFailure(fmt.Errorf("test stage %q failed: %s", req.Target, cleanError(err)))
	}
	fmt.Fprintf(logw, "==> test stage %q passed\n", req.Target)
	return nil
}

// registryError is a registry that does not answer; the build is retried
// for RegistryRetry before it fails.
type registryError struct {
	host string
	err  error
}

func (e registryError) Error() string {
	return fmt.Sprintf("registry %s unreachable: %v", e.host, e.err)
}
func (e registryError) Unwrap() error { return e.err }

// buildError tells a build's own failure (a Dockerfile error) from Slipway's
// parts failing under it: a BuildKit that went away, an unreachable
// registry.
func (w *Worker) buildError(ctx context.Context, b model.Build, err error) error {
	if ctx.Err() != nil {
		return err
	}
	// A pool answers Ping while any of its daemons is up, so the death of
	// this build's own daemon comes as ErrDaemonGone.
	if errors.Is(err, builder.ErrDaemonGone) {
		return infraError{err: fmt.Errorf("buildkit went away during the build: %v", cleanError(err)), now: true}
	}
	if perr := w.Builder.Ping(ctx); perr != nil {
		return infraError{err: fmt.Errorf("buildkit went away during the build: %v", cleanError(err))}
	}
	if host := registryHost(b.Image); w.RegistryPing != nil && w.RegistryPing(ctx, host) != nil {
		return registryError{host: host, err: errors.New(cleanError(err))}
	}
	return fmt.Errorf("build: %s", cleanError(err))
}

// registryHost is the registry part of an image name.
func registryHost(image string) string {
	host, _, _ := strings.Cut(image, "/")
	return host
}

// registryLogin asks RegistryLogin for the build's registry credentials;
// not getting them is Slipway's problem, so the job is retried.
func (w *Worker) registryLogin(ctx context.Context, b model.Build) (builder.Credentials, error) {
	if w.RegistryLogin == nil || isFork(b) {
		return nil, nil
	}
	creds, err := w.RegistryLogin(ctx, b)
	if err != nil {
		return nil, infraError{err: fmt.Errorf("registry credentials for %s: %w", b.Image, err)}
	}
	return creds, nil
}

// cloneAuth picks the credentials for a clone; a failure to get a token
// from the host is Slipway's problem, so the job is retried.
func (w *Worker) cloneAuth(ctx context.Context, repo model.Repo, url, dir string, logw io.Writer) (transport.AuthMethod, error) {
	if w.Credentials == nil {
		return nil, nil
	}
	creds, err := w.Credentials(ctx, repo)
	if err != nil {
		return nil, infraError{err: fmt.Errorf("clone credentials: %w", err)}
	}
	// An App installation token is fetched here, not stored on the
	// repository: the log learns it now.
	if h, ok := logw.(hider); ok {
		h.Hide(creds.Token, creds.SSHKey)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, infraError{err: err}
	}
	return creds.Auth(url, dir)
}

// pathFilter applies the rule's path filters to a diff computed from the
// clone, for pushes whose payload did not list every file.
func pathFilter(ctx context.Context, co source.Checkout, b model.Build, logw io.Writer) string {
	files, err := source.ChangedFiles(ctx, co, b.Before, b.BaseRef)
	if err != nil {
		fmt.Fprintf(logw, "cannot list changed files (%v); building without path filters\n", err)
		return ""
	}
	c, err := rules.Compile(0, b.Rule)
	if err != nil {
		return ""
	}
	ok, why := c.Filters.Pass(files)
	if b.BaseRef != "" {
		fmt.Fprintf(logw, "new branch: %d files differ from %s\n", len(files), b.BaseRef)
	} else {
		fmt.Fprintf(logw, "%d files changed since %s\n", len(files), short(b.Before))
	}
	if ok {
		return ""
	}
	return why
}

// tag moves each tag to the pushed digest unless a build of a newer push
// already owns it, or the tag names a commit of this ref that this one is
// an ancestor of (co, when the checkout is at hand, answers that).
func (w *Worker) tag(ctx context.Context, b model.Build, digest string, co *source.Checkout, creds builder.Credentials, logw io.Writer) outcome {
	out := outcome{digest: digest}
	tagger := w.Tagger(creds)
	older := map[string]bool{} // newer commit → b's commit is its ancestor
	for _, t := range b.Tags {
		if newer := w.behind(ctx, co, b, t, older, logw); newer != "" {
			fmt.Fprintf(logw, "left %s:%s alone: it names %s, which %s is an ancestor of\n", b.Image, t, short(newer), short(b.Commit))
			out.skippedTags = append(out.skippedTags, t)
			continue
		}
		moved, err := w.Tags.ClaimTag(ctx, b.Image, t, b, digest, func(d string) error {
			return tagger.Tag(ctx, b.Image, d, t)
		})
		if errors.Is(err, registry.ErrUnreachable) {
			return outcome{err: registryError{host: registryHost(b.Image), err: err}}
		}
		if err != nil {
			return outcome{err: fmt.Errorf("tag %s:%s: %w", b.Image, t, err)}
		}
		if moved {
			fmt.Fprintf(logw, "tagged %s:%s\n", b.Image, t)
			continue
		}
		fmt.Fprintf(logw, "left %s:%s alone: a newer push of %s owns it\n", b.Image, t, b.Ref)
		out.skippedTags = append(out.skippedTags, t)
	}
	return out
}

// ancestorDepth bounds how far back a tag's commit is searched for the
// build's commit: enough for any replayed or late push worth holding back.
const ancestorDepth = 200

// behind returns the commit tag names when it is a newer commit of b's ref
// that b's commit is an ancestor of: a push replayed or redelivered after
// newer pushes must never move a tag back, whatever order it arrived in.
// Anything it cannot tell counts as not behind.
// The answers for each newer commit are kept in older, so a build with many
// tags fetches and walks each commit's history once.
func (w *Worker) behind(ctx context.Context, co *source.Checkout, b model.Build, tag string, older map[string]bool, logw io.Writer) string {
	if co == nil {
		return ""
	}
	for _, newer := range w.newerCommits(ctx, b, tag) {
		known, ok := older[newer]
		if !ok && newer == b.Before {
			// The push itself moved the ref from newer to b's commit,
			// even when forced back to an older one.
			ok = true
		}
		if !ok {
			var err error
			known, err = source.IsAncestor(ctx, *co, b.Commit, newer, ancestorDepth)
			if err != nil {
				fmt.Fprintf(logw, "cannot tell whether %s is older than %s (%v); tagging by push order\n", short(b.Commit), short(newer), err)
			}
			older[newer] = known
		}
		if known {
			return newer
		}
	}
	return ""
}

// newerCommits are the other commits of b's ref that tag names or will
// name: the tag owner's, and the newest push's when one of its builds
// carries the tag. What cannot be read is left out.
func (w *Worker) newerCommits(ctx context.Context, b model.Build, tag string) []string {
	var out []string
	if owner, ok, err := w.Tags.TagOwner(ctx, b.Image, tag); err == nil && ok && owner.BuildID != b.ID {
		if ob, err := w.Builds.GetBuild(ctx, owner.BuildID); err == nil && ob.Ref == b.Ref && ob.Commit != b.Commit {
			out = append(out, ob.Commit)
		}
	}
	commit, builds, err := w.Tags.Newest(ctx, b.RepoID, b.Ref)
	if err != nil || commit == "" || commit == b.Commit || slices.Contains(out, commit) {
		return out
	}
	for _, id := range builds {
		if nb, err := w.Builds.GetBuild(ctx, id); err == nil && slices.Contains(nb.Tags, tag) {
			return append(out, commit)
		}
	}
	return out
}

// request turns a checked-out build into a BuildKit request. The context
// and the Dockerfile are handed over as their real paths, every symlink
// followed, and must lie inside the checkout; paths missing from the commit
// are named.
func request(dir string, b model.Build, now time.Time) (builder.Request, error) {
	ctxDir, dockerfile, err := rulePaths(dir, b)
	if err != nil {
		return builder.Request{}, err
	}
	declared, err := declaredArgs(dockerfile)
	if err != nil {
		return builder.Request{}, fmt.Errorf("dockerfile %q not found in commit %s", b.Rule.Dockerfile, short(b.Commit))
	}
	meta := metadata(b, now)
	req := builder.Request{
		ContextDir:  ctxDir,
		Dockerfile:  dockerfile,
		Image:       b.Image,
		Repo:        b.RepoID,
		Push:        !isFork(b),
		Target:      b.Rule.Target,
		Labels:      meta,
		Annotations: meta,
		BuildArgs:   buildArgs(b, declared),
		Provenance:  b.Rule.Provenance,
		NoNetwork:   b.Network == model.NetworkNone,
	}
	if b.Rule.Platforms != "" {
		for _, p := range strings.Split(b.Rule.Platforms, ",") {
			req.Platforms = append(req.Platforms, strings.TrimSpace(p))
		}
	}
	if model.On(b.Rule.Cache, true) && !isFork(b) {
		// The cache is exported to the registry: a push of its own.
		req.CacheRef = CacheRef(b.Image, b.Rule)
	}
	return req, nil
}

// forkNote says why a fork's build leaves the registry alone.
const forkNote = "a pull request from a fork is built without registry credentials, cache or push"

// isFork tells a build of code from outside the repository: it is built
// and tested, but gets no registry credentials (RegistryLogin is not even
// asked), no cache export and no push, so nothing it runs can reach the
// registry or its secrets.
func isFork(b model.Build) bool { return b.PullRequest != nil && b.PullRequest.Fork }

// fetchRef is where the clone finds the commit when the host does not
// serve commits by hash: a pull request's head is at the host's ref of it
// in the registered repository, not at the ref it is recorded under.
func fetchRef(b model.Build) string {
	if b.PullRequest != nil {
		return b.PullRequest.FetchRef
	}
	return b.Ref
}

// metadata is the org.opencontainers.image.* set for labels and
// annotations.
func metadata(b model.Build, now time.Time) map[string]string {
	m := map[string]string{
		"org.opencontainers.image.revision": b.Commit,
		"org.opencontainers.image.source":   SourceURL(b.CloneURL),
		"org.opencontainers.image.url":      SourceURL(b.CloneURL),
		"org.opencontainers.image.created":  now.UTC().Format(time.RFC3339),
	}
	if v := version(b.Tags); v != "" {
		m["org.opencontainers.image.version"] = v
	}
	return m
}

// version is the highest-priority tag: the first one that is not "latest".
func version(tags []string) string {
	for _, t := range tags {
		if t != "latest" {
			return t
		}
	}
	return ""
}

// CacheRef is where a rule's layer cache lives: buildcache for the
// repository's main Dockerfile, a suffixed ref for any other, so rules do
// not overwrite each other's cache.
func CacheRef(image string, r model.Rule) string {
	if r.Dockerfile == "Dockerfile" && r.Context == "." && r.Target == "" && r.Platforms == "" {
		return image + ":buildcache"
	}
	sum := sha256.Sum256([]byte(r.Dockerfile + "\x00" + r.Context + "\x00" + r.Target + "\x00" + r.Platforms))
	return image + ":buildcache-" + hex.EncodeToString(sum[:4])
}

// buildArgs are the rule's arguments plus Docker Hub's build variables for
// those the Dockerfile declares; the rule's own values win.
func buildArgs(b model.Build, declared map[string]bool) map[string]string {
	_, name := rules.Ref(b.Ref)
	if b.PullRequest != nil {
		name = b.PullRequest.HeadRef
	}
	tag := version(b.Tags)
	if len(b.Tags) > 0 {
		tag = b.Tags[0]
	}
	hub := map[string]string{
		"SOURCE_BRANCH": name,
		"SOURCE_COMMIT": b.Commit,
		"COMMIT_MSG":    strings.TrimSpace(b.Message),
		"DOCKER_REPO":   b.Image,
		"DOCKER_TAG":    tag,
		"IMAGE_NAME":    b.Image + ":" + tag,
	}
	out := map[string]string{}
	for k, v := range hub {
		if declared[k] {
			out[k] = v
		}
	}
	for k, v := range b.BuildArgs {
		out[k] = v
	}
	return out
}

var argRE = regexp.MustCompile(`(?i)^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)`)

// declaredArgs lists the ARG names a Dockerfile declares. path is already
// resolved; O_NOFOLLOW keeps it from becoming a link afterwards.
func declaredArgs(path string) (map[string]bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0) // #nosec G304 -- the Dockerfile of the build's own checkout, which the pipeline resolved
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m := argRE.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]] = true
		}
	}
	return out, sc.Err()
}

// SourceURL is the repository's address as images record it: no
// credentials, no ".git".
func SourceURL(cloneURL string) string {
	u := cloneURL
	if i := strings.Index(u, "://"); i >= 0 {
		if at := strings.LastIndex(u[i+3:], "@"); at >= 0 && !strings.Contains(u[i+3:i+3+at], "/") {
			u = u[:i+3] + u[i+3+at+1:]
		}
	}
	return strings.TrimSuffix(u, ".git")
}

// cleanError drops gRPC's wrapping so the message reads as BuildKit's own.
func cleanError(err error) string {
	msg := err.Error()
	for _, p := range []string{"rpc error: code = Unknown desc = ", "rpc error: code = Canceled desc = "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
