package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/outbound"
	"github.com/slipway-build/slipway/redact"
	"github.com/slipway-build/slipway/rules"
	"github.com/slipway-build/slipway/trigger"
)

// createRequest is a repository to register; BuildNow builds its watched
// branch tips at once instead of only recording them as seen.
type createRequest struct {
	model.Repo
	BuildNow bool `json:"build_now,omitempty"`
}

// Registered answers a registration: the stored repository and, with
// build_now, the builds of its branch tips.
type Registered struct {
	model.Repo
	// WebhookSecret is shown once, when Slipway generated it.
	WebhookSecret string   `json:"webhook_secret,omitempty"`
	Builds        []string `json:"builds,omitempty"`
}

func (s *Server) createRepo(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	repo := req.Repo
	repo.PushInstallationID = 0 // learned from webhooks, never set by hand
	repo.BadgeKey = ""          // made by Slipway (POST .../badge-key), never chosen
	if !s.claimOrg(w, r, &repo) {
		return
	}
	shown := ""
	if repo.WebhookSecret == "" {
		repo.WebhookSecret = newSecret()
		shown = repo.WebhookSecret
	}
	if err := s.validateRepo(repo); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.resolveTargets(r.Context(), &repo); err != nil {
		s.fail(w, r, err)
		return
	}
	repo.ID = model.NewID()
	repo.CreatedAt = s.now().UTC()
	s.register(w, r, repo, req.BuildNow, shown, nil)
}

// claimOrg sets the organization a new repository belongs to (the owner
// of its full name unless it names one) and checks that the caller is its
// admin. The bootstrap admin's first repository of an organization creates
// it, as a Docker Hub namespace comes with its first repository.
func (s *Server) claimOrg(w http.ResponseWriter, r *http.Request, repo *model.Repo) bool {
	repo.Org = repo.Organization()
	if err := access.ValidOrg(repo.Org); err != nil {
		s.fail(w, r, badf("%v (the owner of full_name, unless organization names another)", err))
		return false
	}
	if !s.allow(w, r, repo.Org, access.Admin) {
		return false
	}
	_, err := s.Orgs.GetOrg(r.Context(), repo.Org)
	if errors.Is(err, access.ErrNotFound) {
		_, err = s.Orgs.CreateOrg(r.Context(), repo.Org, nil)
		if err == nil {
			s.logger().Info("organization created on first use", "org", repo.Org, "by", caller(r).Account)
		}
		if errors.Is(err, access.ErrExists) {
			err = nil
		}
	}
	if err != nil {
		s.orgFailed(w, r, err)
		return false
	}
	return true
}

// resolveTargets checks where the repository's URLs point and, when it
// gives no clone_url, records the one its host's API names; the API URL is
// checked before the host's API is asked.
func (s *Server) resolveTargets(ctx context.Context, repo *model.Repo) error {
	if err := s.checkTargets(ctx, *repo); err != nil {
		return err
	}
	if repo.CloneURL != "" {
		return nil
	}
	cloneURL, err := s.cloneURLFromHost(ctx, *repo)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, targetTimeout)
	defer cancel()
	if err := s.checkCloneURL(ctx, cloneURL); err != nil {
		return err
	}
	repo.CloneURL = cloneURL
	return nil
}

// register stores a new repository and records its branch tips, so that
// only pushes from now on build; buildNow builds the tips instead. undo
// runs when the repository could not be stored.
func (s *Server) register(w http.ResponseWriter, r *http.Request, repo model.Repo, buildNow bool, shown string, undo func()) {
	var heads map[string]string
	if buildNow {
		// Listed before storing, so a repository that cannot be read
		// is refused rather than registered without its builds.
		var err error
		if heads, err = s.heads(r.Context(), repo); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "build_now: "+err.Error())
			return
		}
	}
	if err := s.Repos.CreateRepo(r.Context(), repo); err != nil {
		if undo != nil {
			undo()
		}
		s.createFailed(w, r, err)
		return
	}
	log := s.logger().With("repo", repo.ID, "provider", repo.Provider, "full_name", repo.FullName)
	log.Info("repository registered", "build_now", buildNow)
	ans := Registered{Repo: repo.Public(), WebhookSecret: shown}
	builds, err := s.baseline(r.Context(), repo, heads, buildNow)
	for _, b := range builds {
		ans.Builds = append(ans.Builds, b.ID)
	}
	if err != nil {
		// Registered all the same: the reconciler records the tips on
		// its first visit, and builds nothing then either.
		log.Warn("record the branch tips at registration", "err", err)
		if buildNow {
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("repository %s registered, but queueing its builds failed: %v", repo.ID, err))
			return
		}
	}
	writeJSON(w, http.StatusCreated, ans)
}

// baseline records a new repository's branch tips as seen, or builds them.
func (s *Server) baseline(ctx context.Context, repo model.Repo, heads map[string]string, build bool) ([]model.Build, error) {
	if repo.CloneURL == "" {
		return nil, nil // nothing to list; reconciliation skips it too
	}
	if heads == nil {
		var err error
		if heads, err = s.heads(ctx, repo); err != nil {
			return nil, err
		}
	}
	return trigger.Baseline(ctx, s.Seen, s.Queue, repo, heads, build, s.now())
}

func (s *Server) heads(ctx context.Context, repo model.Repo) (map[string]string, error) {
	if repo.CloneURL == "" {
		return nil, errors.New("the repository has no clone_url to list branches from")
	}
	if s.Heads == nil {
		return nil, errors.New("this server cannot list branches")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	heads, err := s.Heads(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("list branches of %s: %w", repo.FullName, err)
	}
	return heads, nil
}

func (s *Server) listRepos(w http.ResponseWriter, r *http.Request) {
	repos, err := s.Repos.ListRepos(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []model.Repo{}
	for _, repo := range repos {
		if sees(r, repo.Organization()) {
			out = append(out, repo.Public())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request) {
	if repo, ok := s.repo(w, r, access.Read); ok {
		writeJSON(w, http.StatusOK, repo.Public())
	}
}

func (s *Server) createFailed(w http.ResponseWriter, r *http.Request, err error) {
	if strings.Contains(err.Error(), "already registered") || strings.Contains(err.Error(), "already claimed") {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	s.fail(w, r, err)
}

// deleteRepo removes a repository and the webhook Slipway created for it;
// ?keep_hook=true removes it here even when the host cannot be reached.
func (s *Server) deleteRepo(w http.ResponseWriter, r *http.Request) {
	repo, ok := s.repo(w, r, access.Admin)
	if !ok {
		return
	}
	if r.URL.Query().Get("keep_hook") != "true" {
		if err := s.disconnect(r.Context(), repo); err != nil {
			writeError(w, http.StatusBadGateway, err.Error()+" (retry, or DELETE with ?keep_hook=true)")
			return
		}
	}
	if err := s.Repos.DeleteRepo(r.Context(), repo.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var (
	fullNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
	// imageRE is registry host (optional port) and a lowercase path, per the
	// distribution reference grammar, without tag or digest.
	imageRE = regexp.MustCompile(`^[a-zA-Z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)+$`)
)

func (s *Server) validateRepo(r model.Repo) error {
	if _, err := s.host(r.Provider); err != nil {
		return err
	}
	if !fullNameRE.MatchString(r.FullName) {
		return badf("full_name: want owner/name, got %q", r.FullName)
	}
	if err := noCredentials(r); err != nil {
		return err
	}
	if r.CloneURL != "" {
		if _, err := outbound.Remote(r.CloneURL); err != nil {
			return badf("clone_url: %v", err)
		}
	}
	if r.SSHKey != "" && strings.TrimSpace(r.KnownHosts) == "" {
		return badf("known_hosts: required with ssh_key, so the host key is checked")
	}
	if r.APIURL != "" {
		if _, err := outbound.HTTPURL(r.APIURL); err != nil {
			return badf("api_url: %v, got %q", err, redact.Text(r.APIURL))
		}
	}
	if len(r.WebhookSecret) < minWebhookSecret {
		return badf("webhook_secret: want at least %d bytes so that signatures cannot be guessed, or leave it out and Slipway generates one", minWebhookSecret)
	}
	if !imageRE.MatchString(r.Image) {
		return badf("image: want registry/name such as 127.0.0.1:5000/acme/demo (lowercase, no tag), got %q", r.Image)
	}
	if err := s.checkNamespace(r); err != nil {
		return err
	}
	if len(r.Rules) == 0 {
		return badf("rules: at least one rule is needed")
	}
	for i, rule := range r.Rules {
		if err := rules.Validate(i, rule); err != nil {
			return badRequest{err.Error()}
		}
	}
	if r.BuildTimeout != "" {
		if d, err := time.ParseDuration(r.BuildTimeout); err != nil || d <= 0 {
			return badf("build_timeout: want a duration such as 45m, got %q", r.BuildTimeout)
		}
	}
	if r.TestTimeout != "" {
		if d, err := time.ParseDuration(r.TestTimeout); err != nil || d <= 0 {
			return badf("test_timeout: want a duration such as 20m, got %q", r.TestTimeout)
		}
	}
	if r.Network != "" && r.Network != model.NetworkNone {
		return badf("network: want %q or nothing (the build bridge), got %q", model.NetworkNone, r.Network)
	}
	switch r.PullRequests {
	case "", model.PullRequestsOff, model.PullRequestsInternal, model.PullRequestsAll:
	default:
		return badf("pull_requests: want %q, %q or %q (the default), got %q", model.PullRequestsOff, model.PullRequestsAll, model.PullRequestsInternal, r.PullRequests)
	}
	if r.MaxConcurrentBuilds < 0 {
		return badf("max_concurrent_builds: must not be negative")
	}
	if r.DefaultBranch != "" && strings.ContainsAny(r.DefaultBranch, " ~^:?*[\\") {
		return badf("default_branch: %q is not a branch name", r.DefaultBranch)
	}
	for i, h := range r.Hooks {
		if err := validateHook(h); err != nil {
			return badf("hooks[%d].%v", i, err)
		}
	}
	return nil
}

// minWebhookSecret is the shortest webhook secret accepted, in bytes.
const minWebhookSecret = 16

// checkNamespace keeps an image on the embedded registry inside its
// organization's namespace: acme's images are <registry>/acme/...
func (s *Server) checkNamespace(r model.Repo) error {
	host, path, _ := strings.Cut(r.Image, "/")
	if s.RegistryHost == "" || host != s.RegistryHost {
		return nil
	}
	if org := r.Organization(); !strings.HasPrefix(path, org+"/") {
		return badf("image: %s belongs to organization %s, so its image on this registry is %s/%s/<name>, got %q", r.FullName, org, host, org, r.Image)
	}
	return nil
}

// Host is one Git host as the API needs it: its provider name, where its
// webhooks are served, and its API client.
type Host struct {
	Name     string
	HookPath string
	API      forge.Forge
}

// host is the Git host a repository names as its provider.
func (s *Server) host(provider string) (Host, error) {
	names := make([]string, len(s.Hosts))
	for i, h := range s.Hosts {
		if h.Name == provider {
			return h, nil
		}
		names[i] = h.Name
	}
	return Host{}, badf("provider: want one of %s, got %q", strings.Join(names, ", "), provider)
}

// noCredentials refuses a URL that carries a credential: URLs are shown in
// logs, errors and the API, while the secret fields are stored sealed and
// never served.
func noCredentials(r model.Repo) error {
	cloneField := `"token" (or "ssh_key" for ssh://)`
	if strings.HasPrefix(r.CloneURL, "ssh://") {
		cloneField = `"ssh_key"`
	}
	if credentialsIn(r.CloneURL) {
		return badf("clone_url: credentials in the URL are refused; put the token in %s", cloneField)
	}
	if credentialsIn(r.APIURL) {
		return badf(`api_url: credentials in the URL are refused; put the token in "token"`)
	}
	for i, h := range r.Hooks {
		if credentialsIn(h.URL) {
			return badf(`hooks[%d].url: credentials in the URL are refused; the hook is signed with its "secret"`, i)
		}
	}
	return nil
}

// credentialsIn reports whether raw has a user part or a secret-looking
// query parameter. A user name alone counts too (hosts take a token as the
// user name), except for ssh://, where it is the account (git@) and the
// key authenticates.
func credentialsIn(raw string) bool {
	if u, err := url.Parse(raw); err == nil && u.Scheme == "ssh" && u.User != nil {
		if _, hasPassword := u.User.Password(); !hasPassword {
			u.User = nil
			raw = u.String()
		}
	}
	return redact.URL(raw) != raw
}

func validateHook(h model.Hook) error {
	if _, err := outbound.HTTPURL(h.URL); err != nil {
		return fmt.Errorf("url: %v, got %q", err, redact.Text(h.URL))
	}
	if _, err := deploy.Sign(h.Secret, "msg_check", s0, nil); err != nil {
		return fmt.Errorf("secret: want whsec_<base64>: %v", err)
	}
	if err := validateEvents(h.Events); err != nil {
		return err
	}
	if h.Format != "" && h.Format != model.FormatDockerHub && h.Format != model.FormatCloudEvents {
		return fmt.Errorf("format: want %q (the default) or %q, got %q", model.FormatDockerHub, model.FormatCloudEvents, h.Format)
	}
	return nil
}

// validateEvents accepts the events a hook may subscribe to, each once; none
// means image.pushed.
func validateEvents(events []string) error {
	seen := map[string]bool{}
	for _, e := range events {
		if !model.KnownEvent(e) {
			return fmt.Errorf("events: want some of %s, got %q", strings.Join(model.HookEvents, ", "), e)
		}
		if seen[e] {
			return fmt.Errorf("events: %q is listed twice", e)
		}
		seen[e] = true
	}
	return nil
}
