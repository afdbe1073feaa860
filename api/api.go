// Package api is Slipway's REST API under /api/v1 plus the health endpoints.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/outbound"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/redact"
	"github.com/slipway-build/slipway/trigger"
)

// Repos are the repository records (package store).
type Repos interface {
	CreateRepo(ctx context.Context, r model.Repo) error
	GetRepo(ctx context.Context, id string) (model.Repo, error)
	ListRepos(ctx context.Context) ([]model.Repo, error)
	DeleteRepo(ctx context.Context, id string) error
	UpdateRepo(ctx context.Context, id string, change func(*model.Repo) error) (model.Repo, error)
}

// Builds are the build records and their logs (package store).
type Builds interface {
	GetBuild(ctx context.Context, id string) (model.Build, error)
	QueryBuilds(ctx context.Context, q model.BuildQuery) (model.BuildPage, error)
	UpdateBuild(ctx context.Context, id string, change func(*model.Build) error) (model.Build, error)
	CopyLog(ctx context.Context, buildID string, w io.Writer) (int64, error)
}

// Queue queues builds, deploy-hook deliveries and cancellations (package
// queue).
type Queue interface {
	trigger.Enqueuer
	SubmitBuild(ctx context.Context, b model.Build) (bool, error)
	SubmitHook(ctx context.Context, j queue.HookJob) error
	Cancel(ctx context.Context, id, reason, by string) (bool, error)
}

// Resolver answers which commit a ref of a repository points at, with the
// repository's credentials.
type Resolver func(ctx context.Context, repo model.Repo, ref string) (string, error)

// Lister answers a repository's branches and their tips, with the
// repository's credentials.
type Lister func(ctx context.Context, repo model.Repo) (map[string]string, error)

// Check is one dependency /readyz asks about.
type Check struct {
	Name string
	Func func(ctx context.Context) error
	// Soft is reported but does not make the process unready alone: one
	// daemon of a BuildKit pool, while another serves.
	Soft bool
}

// Server holds the API's dependencies.
type Server struct {
	Repos  Repos
	Builds Builds
	Queue  Queue
	// Seen records a new repository's branch tips as seen.
	Seen trigger.Seen
	// Tokens authenticate every API request; Orgs hold who may do what.
	Tokens Tokens
	Orgs   Orgs
	// Sealer seals the registry passwords organizations store.
	Sealer   access.Sealer
	Resolve  Resolver
	Heads    Lister
	Checks   []Check
	Logger   *slog.Logger
	Now      func() time.Time
	NotFound func(error) bool
	// Hosts are the Git hosts a repository may name as its provider, with
	// their APIs for connecting repositories (the table in forge/hosts,
	// handed in by cmd/slipway so that the API depends on no host's code).
	Hosts []Host
	// AppToken gives a GitHub App installation token; nil when no App is
	// configured.
	AppToken func(ctx context.Context, installationID int64, fullName string) (string, error)
	// RegistryHost is the embedded registry's host:port, where images
	// must live under their organization's namespace; "" for none.
	RegistryHost string
	// PublicURL is where Git hosts reach this server.
	PublicURL string
	// Outbound judges the URLs a registration gives (clone_url, api_url,
	// hooks); nil refuses every non-public address and uses the system
	// resolver. RegistryOutbound judges the image's registry host (the
	// embedded registry's own address is open there); nil means Outbound.
	Outbound, RegistryOutbound *outbound.Guard
	// HTTP sends the requests to the hosts' APIs (forge.Conn.HTTP); nil
	// means the forge's default client.
	HTTP *http.Client
	// Secrets rotates the key sealing secrets at rest (api/admin.go); nil
	// answers 501.
	Secrets Secrets
	// Builders answers GET /api/v1/builders; nil answers an empty list (no
	// workers in this process).
	Builders Builders
	// Images reads builds' images for GET /api/v1/builds/{id}/image; nil
	// answers 501.
	Images Images
	// Live follows logs and builds for GET /api/v1/builds/{id}/log as
	// Server-Sent Events (api/livelog.go); nil answers only the plain log.
	Live Live
	// Keepalive is how often a followed log sends a comment when nothing
	// else happens; 0 means DefaultKeepalive.
	Keepalive time.Duration
	// Registry reads the embedded registry for the registry browser
	// (api/images.go); nil lists only the images Slipway knows of, without
	// tags. TagOwners name the builds that pushed the tags.
	Registry  RegistryReader
	TagOwners TagOwners
}

// Mux is where the routes are added: an *http.ServeMux, or a recorder in
// the test that compares them with the OpenAPI document.
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// RegisterHealth adds /healthz and /readyz only, for processes that serve
// no API.
func (s *Server) RegisterHealth(mux Mux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
}

// Register adds the API's routes, and the health checks, to mux. A new
// route needs its entry in api/openapi.json too (TestOpenAPI says which).
func (s *Server) Register(mux Mux) {
	s.RegisterHealth(mux)
	route := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.auth(knownID(h))) }
	route("POST /api/v1/repos", s.createRepo)
	route("POST /api/v1/repos/connect", s.connectRepo)
	route("GET /api/v1/repos", s.listRepos)
	route("GET /api/v1/repos/{id}", s.getRepo)
	route("DELETE /api/v1/repos/{id}", s.deleteRepo)
	route("POST /api/v1/repos/{id}/builds", s.triggerBuild)
	route("GET /api/v1/builds", s.listBuilds)
	route("GET /api/v1/builds/{id}", s.getBuild)
	route("GET /api/v1/builds/{id}/log", s.getLog)
	route("POST /api/v1/builds/{id}/cancel", s.cancelBuild)
	route("POST /api/v1/builds/{id}/rebuild", s.rebuildBuild)
	route("POST /api/v1/builds/{id}/deliveries/{n}/redeliver", s.redeliver)
	route("PATCH /api/v1/repos/{id}", s.patchRepo)
	route("GET /api/v1/whoami", s.whoami)
	route("GET /api/v1/builders", s.listBuilders)
	route("POST /api/v1/orgs", s.createOrg)
	route("GET /api/v1/orgs", s.listOrgs)
	route("GET /api/v1/orgs/{org}", s.getOrg)
	route("PATCH /api/v1/orgs/{org}", s.patchOrg)
	route("PUT /api/v1/orgs/{org}/teams/{team}", s.putTeam)
	route("DELETE /api/v1/orgs/{org}/teams/{team}", s.deleteTeam)
	route("PUT /api/v1/orgs/{org}/registries/{host}", s.putRegistry)
	route("DELETE /api/v1/orgs/{org}/registries/{host}", s.deleteRegistry)
	route("POST /api/v1/tokens", s.createToken)
	route("GET /api/v1/tokens", s.listTokens)
	route("DELETE /api/v1/tokens/{id}", s.revokeToken)
	route("POST /api/v1/admin/secrets/rotate", s.rotateSecrets)
	route("GET /api/v1/builds/{id}/image", s.getImage)
	route("POST /api/v1/repos/{id}/badge-key", s.newBadgeKey)
	route("DELETE /api/v1/repos/{id}/badge-key", s.revokeBadgeKey)
	// Badges answer without a token (public repositories) and outside
	// /api: a README embeds their URL. A wildcard is a whole path segment,
	// so {file} is "<repo>.svg" or "<tag>.svg".
	mux.HandleFunc("GET /badge/{org}/{file}", s.badge)
	mux.HandleFunc("GET /badge/{org}/{repo}/{file}", s.badge)
	route("GET /api/v1/images", s.listImages)
	route("GET /api/v1/images/{path...}", s.imageTags)
	mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
}

// idRE admits the ids Slipway hands out (hex) and a little more. Anything
// else cannot name a record, and must not reach the store: a character such
// as '*' or ' ' is not a legal key there, and the store's error would be
// answered as 503.
var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// knownID answers 404 for an {id} path segment no record can have.
func knownID(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if id := r.PathValue("id"); id != "" && !idRE.MatchString(id) {
			writeError(w, http.StatusNotFound, "not found")
			return
		}
		next(w, r)
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	status, code := map[string]string{}, http.StatusOK
	for _, c := range s.Checks {
		if err := c.Func(ctx); err != nil {
			status[c.Name] = err.Error()
			if !c.Soft {
				code = http.StatusServiceUnavailable
			}
			continue
		}
		status[c.Name] = "ok"
	}
	writeJSON(w, code, status)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if s.NotFound != nil && s.NotFound(err) {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	var bad badRequest
	if errors.As(err, &bad) {
		writeError(w, http.StatusBadRequest, bad.Error())
		return
	}
	s.logger().Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusServiceUnavailable, err.Error())
}

// badRequest is an error the client can fix.
type badRequest struct{ msg string }

func (b badRequest) Error() string { return b.msg }

func badf(format string, a ...any) error { return badRequest{fmt.Sprintf(format, a...)} }

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badf("invalid JSON body: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers msg redacted: a host's or NATS's error may quote a URL
// with credentials in it.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": redact.Text(msg)})
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}
