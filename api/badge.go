package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/badge"
	"github.com/slipway-build/slipway/model"
)

// badgeLabel is the left half of every badge.
const badgeLabel = "build"

// badgeScan bounds how many of a repository's newest builds a badge reads
// looking for its branch or tag: a tag last built long ago shows "no
// builds" rather than costing a read of every build.
const badgeScan = 200

// errScanned stops a badge's scan of the builds (QueryBuilds' Keep).
var errScanned = errors.New("badge: scanned enough builds")

// badge answers GET /badge/{org}/{repo}.svg, the default branch's latest
// build, and GET /badge/{org}/{repo}/{tag}.svg, the latest build that
// pushes tag. A repository the caller may not see (missing, private
// without a token or key, another organization's) is 404 like one that
// does not exist, with a "not found" badge, so that an embedded image still
// shows something.
func (s *Server) badge(w http.ResponseWriter, r *http.Request) {
	name, tag := r.PathValue("repo"), strings.TrimSuffix(r.PathValue("file"), ".svg")
	if name == "" {
		name, tag = tag, ""
	}
	if !strings.HasSuffix(r.PathValue("file"), ".svg") {
		writeBadge(w, http.StatusNotFound, "not found", badge.Grey)
		return
	}
	repo, found, err := s.badgeRepo(r, r.PathValue("org"), name)
	if err == nil && found {
		found, err = s.mayShowBadge(r, repo)
	}
	if err != nil {
		s.logger().Error("badge", "org", r.PathValue("org"), "repo", name, "err", err)
		writeBadge(w, http.StatusServiceUnavailable, "unavailable", badge.Grey)
		return
	}
	if !found {
		writeBadge(w, http.StatusNotFound, "not found", badge.Grey)
		return
	}
	push, err := s.latestPush(r, repo, tag)
	if err != nil {
		s.logger().Error("badge", "repo", repo.ID, "err", err)
		writeBadge(w, http.StatusServiceUnavailable, "unavailable", badge.Grey)
		return
	}
	if len(push) == 0 {
		writeBadge(w, http.StatusOK, "no builds", badge.Grey)
		return
	}
	status, at := pushState(push)
	writeBadge(w, http.StatusOK, status+" · "+badge.Since(s.now().Sub(at)), statusColour(status))
}

func writeBadge(w http.ResponseWriter, code int, message, colour string) {
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	// Git hosts' image proxies and browsers ask again each time: a badge
	// that is cached says an old state.
	h.Set("Cache-Control", "no-cache")
	// Opened on its own, the SVG may run nothing and load nothing.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(badge.SVG(badgeLabel, message, colour))
}

// badgeRepo is the repository of organization org whose name (the last
// part of its full name) is name, both matched without regard to case.
// Should two repositories of one organization share a name (one on
// GitHub, one on GitLab), the first registered is the badge's.
func (s *Server) badgeRepo(r *http.Request, org, name string) (model.Repo, bool, error) {
	repos, err := s.Repos.ListRepos(r.Context())
	if err != nil {
		return model.Repo{}, false, err
	}
	for _, repo := range repos {
		base := repo.FullName[strings.LastIndex(repo.FullName, "/")+1:]
		if strings.EqualFold(repo.Organization(), org) && strings.EqualFold(base, name) {
			return repo, true, nil
		}
	}
	return model.Repo{}, false, nil
}

// mayShowBadge reports whether the request may see repo's badge: anyone
// when the repository is public, else the holder of its badge key (?key=)
// or of a token that reads its organization.
func (s *Server) mayShowBadge(r *http.Request, repo model.Repo) (bool, error) {
	public, err := s.publicRepo(r, repo)
	if err != nil || public {
		return public, err
	}
	if key := r.URL.Query().Get("key"); key != "" && repo.BadgeKey != "" {
		if subtle.ConstantTimeCompare([]byte(key), []byte(repo.BadgeKey)) == 1 {
			return true, nil
		}
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return false, nil
	}
	p, err := s.Tokens.Authenticate(r.Context(), token)
	if errors.Is(err, access.ErrUnauthenticated) {
		return false, nil
	}
	return err == nil && p.RoleIn(repo.Organization()).Includes(access.Read), err
}

// publicRepo reports whether anyone may pull repo's image, as the embedded
// registry decides (access.Registry): the repository is public, or its
// organization lists the image among its public_images.
func (s *Server) publicRepo(r *http.Request, repo model.Repo) (bool, error) {
	if repo.PublicImage {
		return true, nil
	}
	host, path, _ := strings.Cut(repo.Image, "/")
	if s.RegistryHost == "" || host != s.RegistryHost {
		return false, nil
	}
	o, err := s.Orgs.GetOrg(r.Context(), repo.Organization())
	if errors.Is(err, access.ErrNotFound) {
		return false, nil
	}
	return err == nil && o.IsPublic(path), err
}

// latestPush is the builds of the newest push the badge shows: of the
// default branch, or, with tag, the newest push whose builds push tag.
// Skipped builds (a [skip ci] push) are passed over, so the badge keeps
// the last real result. One push of several rules makes several builds,
// made at the same moment: they are answered together.
func (s *Server) latestPush(r *http.Request, repo model.Repo, tag string) ([]model.Build, error) {
	wanted := func(b model.Build) bool { return b.Ref == "refs/heads/"+defaultBranch(repo) }
	if tag != "" {
		wanted = func(b model.Build) bool { return slices.Contains(b.Tags, tag) }
	}
	var push []model.Build
	read := 0
	_, err := s.Builds.QueryBuilds(r.Context(), model.BuildQuery{RepoID: repo.ID, Keep: func(b model.Build) (bool, error) {
		if read++; read > badgeScan {
			return false, errScanned
		}
		switch {
		case b.Status == model.StatusSkipped || !wanted(b):
			return false, nil
		case len(push) == 0 || samePush(push[0], b):
			push = append(push, b)
			return false, nil
		}
		return false, errScanned // an older push: the newest is complete
	}})
	if errors.Is(err, errScanned) {
		err = nil
	}
	return push, err
}

// samePush reports whether a and b were made by one push: the builds of
// one push share its ref, order and creation time; a rebuild is made
// later, and stands alone.
func samePush(a, b model.Build) bool {
	return a.Ref == b.Ref && a.Seq == b.Seq && a.CreatedAt.Equal(b.CreatedAt)
}

// pushState is the state the badge shows for one push's builds, the worst
// of theirs, and when that push last changed.
func pushState(push []model.Build) (string, time.Time) {
	rank := map[string]int{model.StatusFailed: 5, model.StatusRunning: 4, model.StatusQueued: 3, model.StatusCancelled: 2, model.StatusSucceeded: 1}
	status := push[0].Status
	var at time.Time
	for _, b := range push {
		if rank[b.Status] > rank[status] {
			status = b.Status
		}
		if t := changedAt(b); t.After(at) {
			at = t
		}
	}
	return status, at
}

// changedAt is when b last changed state: finished, started or made.
func changedAt(b model.Build) time.Time {
	switch {
	case b.FinishedAt != nil:
		return *b.FinishedAt
	case b.StartedAt != nil:
		return *b.StartedAt
	}
	return b.CreatedAt
}

func statusColour(status string) string {
	switch status {
	case model.StatusSucceeded:
		return badge.Green
	case model.StatusFailed:
		return badge.Red
	case model.StatusRunning, model.StatusQueued:
		return badge.Yellow
	}
	return badge.Grey
}

// BadgeKey answers a new badge key.
type BadgeKey struct {
	BadgeKey string `json:"badge_key"`
}

// newBadgeKey makes the repository a new badge key; the old one stops
// working.
func (s *Server) newBadgeKey(w http.ResponseWriter, r *http.Request) {
	key := makeBadgeKey()
	if s.setBadgeKey(w, r, key) {
		writeJSON(w, http.StatusCreated, BadgeKey{BadgeKey: key})
	}
}

// revokeBadgeKey removes the repository's badge key: a private
// repository's badge then needs a token again.
func (s *Server) revokeBadgeKey(w http.ResponseWriter, r *http.Request) {
	if s.setBadgeKey(w, r, "") {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) setBadgeKey(w http.ResponseWriter, r *http.Request, key string) bool {
	repo, ok := s.repo(w, r, access.Write)
	if !ok {
		return false
	}
	if _, err := s.Repos.UpdateRepo(r.Context(), repo.ID, func(stored *model.Repo) error {
		stored.BadgeKey = key
		return nil
	}); err != nil {
		s.fail(w, r, err)
		return false
	}
	s.logger().Info("badge key changed", "repo", repo.ID, "revoked", key == "", "by", caller(r).Account)
	return true
}

// makeBadgeKey is 160 random bits in hex: too many to guess, short enough
// for a URL.
func makeBadgeKey() string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}
