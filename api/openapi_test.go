package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/errors"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
)

// servedBeside are the routes cmd/slipway serves on the API's port beside
// Register's, which the document describes too. They are not called here:
// their own packages' tests scrape them.
var servedBeside = map[string]string{
	"GET /metrics": "cmd/slipway, package metrics",
}

// documentedAhead are routes the document describes before their handlers
// are merged: the other parts of issue 14 (the shared contracts). Once a
// route here is registered, the test asks for its removal from this list,
// and its cases in openAPIWorld.cases run (see openAPIRegistry).
var documentedAhead = map[string]string{}

// recorder is a Mux that keeps the patterns Register adds.
type recorder struct{ patterns []string }

func (r *recorder) Handle(pattern string, _ http.Handler) { r.patterns = append(r.patterns, pattern) }

func (r *recorder) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	r.patterns = append(r.patterns, pattern)
}

// serves reports whether the mux pattern ("GET /badge/{org}/{file}")
// serves the document's operation op ("GET /badge/{org}/{repo}.svg"): the
// same method, the same literal segments, a wildcard where the document
// has a template (a segment with "{", even "{repo}.svg"), and a final
// "{name...}" for the rest of the path, as the mux reads it.
func serves(pattern, op string) bool {
	patMethod, patPath, _ := strings.Cut(pattern, " ")
	opMethod, opPath, _ := strings.Cut(op, " ")
	if patMethod != opMethod {
		return false
	}
	pat, doc := strings.Split(patPath, "/"), strings.Split(opPath, "/")
	for i, seg := range pat {
		if i == len(pat)-1 && strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "...}") {
			return len(doc) >= len(pat)
		}
		if i >= len(doc) {
			return false
		}
		wild, template := strings.HasPrefix(seg, "{"), strings.Contains(doc[i], "{")
		if wild != template || !wild && seg != doc[i] {
			return false
		}
	}
	return len(doc) == len(pat)
}

// documented is the document's operations, "METHOD /path" as it writes
// them, sorted.
func documented(t *testing.T, doc []byte) []string {
	t.Helper()
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("api/openapi.json is not JSON: %v", err)
	}
	var out []string
	for path, item := range d.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// registered is the patterns Register adds, with the routes served beside
// them, sorted.
func registered(t *testing.T) []string {
	t.Helper()
	var rec recorder
	(&api.Server{}).Register(&rec)
	var out []string
	for _, p := range rec.patterns {
		if !strings.Contains(p, " ") {
			t.Errorf("Register adds %q without a method: give it one (GET /...), so that the document can describe it", p)
			continue
		}
		out = append(out, p)
	}
	for r := range servedBeside {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// served reports whether one of routes serves op.
func served(routes []string, op string) bool {
	return slices.ContainsFunc(routes, func(r string) bool { return serves(r, op) })
}

// TestOpenAPIDocumentsEveryRoute: every route Register adds is in
// api/openapi.json, and the document names no route that is not served.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	for _, p := range routeProblems(documented(t, api.OpenAPI()), registered(t)) {
		t.Error(p)
	}
}

// TestOpenAPIRouteCheckSaysWhatToAdd: a route added without its entry in
// the document, or an entry without its route, is named with what to do.
func TestOpenAPIRouteCheckSaysWhatToAdd(t *testing.T) {
	docOps := documented(t, api.OpenAPI())
	before := routeProblems(docOps, registered(t)) // TestOpenAPIDocumentsEveryRoute's
	routes := slices.DeleteFunc(registered(t), func(r string) bool { return r == "GET /api/v1/whoami" })
	routes = append(routes, "GET /api/v1/widgets/{id}")
	got := slices.DeleteFunc(routeProblems(docOps, routes), func(p string) bool { return slices.Contains(before, p) })
	want := []string{
		`GET /api/v1/widgets/{id} is registered but api/openapi.json does not describe it: add "paths": {"/api/v1/widgets/{id}": {"get": {"operationId": ..., "summary": ..., "parameters": [...], "responses": {...}}}} ` +
			`with every status it answers and the schema of its body, and a case for it in openAPIWorld.cases (api/openapi_test.go)`,
		`api/openapi.json describes GET /api/v1/whoami, but no such route is registered: remove it from the document, or register it in api.Register`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestServes(t *testing.T) {
	tests := []struct {
		pattern, op string
		want        bool
	}{
		{"GET /api/v1/repos/{id}", "GET /api/v1/repos/{id}", true},
		{"GET /api/v1/repos/{id}", "DELETE /api/v1/repos/{id}", false},
		{"GET /api/v1/repos/{id}", "GET /api/v1/repos/connect", false},
		{"POST /api/v1/repos/connect", "POST /api/v1/repos/{id}", false},
		{"GET /badge/{org}/{file}", "GET /badge/{org}/{repo}.svg", true},
		{"GET /badge/{org}/{file}", "GET /badge/{org}/{repo}/{tag}.svg", false},
		{"GET /api/v1/images/{path...}", "GET /api/v1/images/{org}/{name}/tags", true},
		{"GET /api/v1/images/{path...}", "GET /api/v1/images", false},
		{"GET /api/v1/builds/{id}", "GET /api/v1/builds/{id}/log", false},
	}
	for _, tt := range tests {
		if got := serves(tt.pattern, tt.op); got != tt.want {
			t.Errorf("serves(%q, %q) = %v, want %v", tt.pattern, tt.op, got, tt.want)
		}
	}
}

// routeProblems compares the document's operations with the routes
// served, and says what to change for each difference.
func routeProblems(docOps, routes []string) []string {
	var out []string
	for _, r := range routes {
		if !slices.ContainsFunc(docOps, func(op string) bool { return serves(r, op) }) {
			method, path, _ := strings.Cut(r, " ")
			out = append(out, fmt.Sprintf("%s is registered but api/openapi.json does not describe it: add \"paths\": {%q: {%q: {\"operationId\": ..., \"summary\": ..., \"parameters\": [...], \"responses\": {...}}}} "+
				"with every status it answers and the schema of its body, and a case for it in openAPIWorld.cases (api/openapi_test.go)",
				r, path, strings.ToLower(method)))
		}
	}
	for _, op := range docOps {
		_, ahead := documentedAhead[op]
		switch isServed := served(routes, op); {
		case isServed && ahead:
			out = append(out, fmt.Sprintf("%s is registered now: remove it from documentedAhead in api/openapi_test.go (and give openAPIRegistry its registry)", op))
		case !isServed && !ahead:
			out = append(out, fmt.Sprintf("api/openapi.json describes %s, but no such route is registered: remove it from the document, or register it in api.Register", op))
		}
	}
	for _, op := range sortedKeys(documentedAhead) {
		if !slices.Contains(docOps, op) {
			out = append(out, fmt.Sprintf("documentedAhead names %s, which api/openapi.json does not describe", op))
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// apiCase is one call of TestOpenAPIAnswers.
type apiCase struct {
	op   string // the operation, as the document writes it
	name string // what the call tries, when the operation has several
	path string
	who  string // a caller of the role matrix
	body string
	// accept is the Accept header; "" sends none.
	accept string
	want   int
	// offDocument says the request breaks the document on purpose (no
	// token, a value outside an enum): only the answer is checked.
	offDocument bool
	// notStrict checks the answer's body against its schema without
	// asking that every property be declared: the document itself,
	// whose schema is "an object" (ValidateDocument checks the rest).
	notStrict bool
}

// TestOpenAPIAnswers calls every operation of the document on the real
// API over a real store, and checks each request and answer against the
// document with libopenapi-validator in strict mode: a status, header or
// JSON property the document does not describe fails.
func TestOpenAPIAnswers(t *testing.T) {
	w := newOpenAPIWorld(t)
	h := w.m.h
	code, _, doc := h.do("GET", "/api/v1/openapi.json", "", "")
	if code != http.StatusOK || !bytes.Equal(doc, api.OpenAPI()) {
		t.Fatalf("GET /api/v1/openapi.json without a token: HTTP %d, want 200 and the embedded document", code)
	}
	strict, plain := newValidator(t, doc, true), newValidator(t, doc, false)
	routes, docOps := registered(t), documented(t, doc)

	covered := map[string]bool{}
	for _, c := range w.cases() {
		if !slices.Contains(docOps, c.op) {
			t.Errorf("case %q names %s, which the document does not describe", c.name, c.op)
			continue
		}
		if !served(routes, c.op) {
			continue // documentedAhead: not served yet
		}
		if c.want < 300 {
			covered[c.op] = true
		}
		v := strict
		if c.notStrict {
			v = plain
		}
		t.Run(c.op+" "+c.name, func(t *testing.T) { w.check(t, v, c) })
	}
	for _, op := range docOps {
		_, beside := servedBeside[op]
		if served(routes, op) && !beside && !covered[op] {
			t.Errorf("no case calls %s with an answer of success: add one to openAPIWorld.cases in api/openapi_test.go", op)
		}
	}
}

// newValidator checks requests and answers against doc; strict also
// fails a property, parameter or header the document does not declare,
// and a write-only property (a secret) in an answer.
func newValidator(t *testing.T, doc []byte, strict bool) validator.Validator {
	t.Helper()
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatalf("api/openapi.json: %v", err)
	}
	if d.GetVersion() != "3.1.0" {
		t.Fatalf("api/openapi.json is OpenAPI %s, want 3.1.0", d.GetVersion())
	}
	opts := []config.Option{config.WithFormatAssertions()}
	if strict {
		opts = append(opts, config.WithStrictMode(), config.WithStrictRejectWriteOnly())
	}
	v, errs := validator.NewValidator(d, opts...)
	if len(errs) > 0 {
		t.Fatalf("api/openapi.json: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		t.Fatalf("api/openapi.json is not a valid OpenAPI 3.1 document:\n%s", describe(verrs))
	}
	return v
}

func describe(errs []*errors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  %s: %s\n", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "    %s: %s\n", f.FieldPath, f.Reason)
		}
	}
	return b.String()
}

// check sends c and validates the request and the answer.
func (w *openAPIWorld) check(t *testing.T, v validator.Validator, c apiCase) {
	method, _, _ := strings.Cut(c.op, " ")
	req := w.request(t, method, c)
	if !c.offDocument {
		if ok, errs := v.ValidateHttpRequestSync(w.request(t, method, c)); !ok {
			t.Errorf("the request breaks the document:\n%s", describe(errs))
		}
	}
	resp, err := w.m.h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != c.want {
		t.Fatalf("HTTP %d %s, want %d", resp.StatusCode, raw, c.want)
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	if ok, errs := v.ValidateHttpResponse(w.request(t, method, c), resp); !ok {
		t.Errorf("HTTP %d %s\nbreaks the document:\n%s", resp.StatusCode, raw, describe(errs))
	}
	for _, name := range undocumentedHeaders(t, c.op, resp) {
		t.Errorf("HTTP %d answers header %s, which the document's response does not list in its headers", resp.StatusCode, name)
	}
}

// plainHeaders are answered by net/http or mean the same everywhere; any
// other header of an answer must be in its documented response. (The
// validator checks undeclared headers only in a response that declares
// some.)
var plainHeaders = []string{"Cache-Control", "Content-Length", "Content-Type", "Date", "Transfer-Encoding", "Vary"}

// undocumentedHeaders are the headers of resp that the document's
// response for op and resp's status does not list.
func undocumentedHeaders(t *testing.T, op string, resp *http.Response) []string {
	t.Helper()
	var doc struct {
		Paths      map[string]map[string]struct{ Responses map[string]docResponse }
		Components struct{ Responses map[string]docResponse }
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	method, path, _ := strings.Cut(op, " ")
	r := doc.Paths[path][strings.ToLower(method)].Responses[strconv.Itoa(resp.StatusCode)]
	if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
		r = doc.Components.Responses[name]
	}
	var out []string
	for name := range resp.Header {
		listed := slices.Contains(plainHeaders, name)
		for documented := range r.Headers {
			listed = listed || strings.EqualFold(documented, name)
		}
		if !listed {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// docResponse is a response of the document, or a reference to one.
type docResponse struct {
	Ref     string `json:"$ref"`
	Headers map[string]json.RawMessage
}

func (w *openAPIWorld) request(t *testing.T, method string, c apiCase) *http.Request {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(testCtx(t), method, w.m.h.srv.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token := w.m.tokens[c.who]; token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.accept != "" {
		req.Header.Set("Accept", c.accept)
	}
	return req
}

// openAPIWorld is what the cases call on: organization acme with the role
// matrix's people, its repositories and builds in several states.
type openAPIWorld struct {
	m   *matrix
	reg string // the registry host the repositories' images are on
	// demo has a finished build (done) with a log, a delivery and a
	// commit status, and a badge key; busy has a queued build.
	demo, patched, doomed, keyed model.Repo
	done, busy                   model.Build
	badgeKey, spareToken         string
}

// okForge is the test Git host that also makes webhooks.
type okForge struct{ fakeForge }

func (okForge) Name() string { return "okhost" }

func (f okForge) Repo(ctx context.Context, c forge.Conn) (forge.Repo, error) {
	r, err := f.fakeForge.Repo(ctx, c)
	r.DefaultBranch = "main"
	return r, err
}

func (okForge) CreateHook(context.Context, forge.Conn, string, string) (forge.Hook, error) {
	return forge.Hook{ID: "4711"}, nil
}

// openAPIRegistry is the registry host of the world's images, what the
// server needs to read it, and how an image is pushed there (answering
// its digest). Nothing on this branch reads a registry: a host that
// resolves nowhere and a made-up digest. Once the image page and the
// registry browser are merged, this is their embedded registry on
// loopback (startRegistry, withRegistry and s.Images = openRegistry{},
// pushRandom), so that their cases answer 200 with real bodies.
func openAPIRegistry(t *testing.T) (host string, change func(*api.Server), push func(ref string) string) {
	host = startRegistry(t)
	return host, func(s *api.Server) { withRegistry(host)(s); s.Images = openRegistry{} }, func(ref string) string { return pushRandom(t, ref) }
}

func newOpenAPIWorld(t *testing.T) *openAPIWorld {
	reg, withReg, push := openAPIRegistry(t)
	m := newMatrixOn(t, withReg, func(s *api.Server) {
		s.Hosts = append(s.Hosts, api.Host{Name: "okhost", HookPath: "/hooks/okhost", API: okForge{}})
		s.Builders = fakeBuilders{
			{Addr: "tcp://127.0.0.1:1234", Healthy: true, Running: 2, LastBuiltRepos: 5},
			{Addr: "tcp://127.0.0.1:1235", LastError: "connection refused"},
		}
		s.Secrets = rotateFunc(func(context.Context) (api.Rotated, error) { return api.Rotated{Resealed: 3, KeyID: "a2b3b2a5"}, nil })
	})
	h := m.h
	w := &openAPIWorld{m: m, reg: reg}
	w.demo = h.createRepo(w.validRepo("acme/demo"))
	w.patched = h.createRepo(w.validRepo("acme/patched"))
	w.doomed = h.createRepo(w.validRepo("acme/doomed"))
	w.keyed = h.createRepo(w.validRepo("acme/keyed"))
	busyRepo := h.createRepo(w.validRepo("acme/busy"))
	digest := push(w.demo.Image + ":latest")

	w.done = h.trigger(w.demo.ID, "refs/heads/main", commitA)
	h.trigger(w.demo.ID, "refs/tags/v1.0.0", commitB) // a second build: the list has a next page
	w.busy = h.trigger(busyRepo.ID, "refs/heads/main", commitA)
	started, finished := base.Add(-2*time.Hour), base.Add(-time.Hour)
	_, err := h.store.UpdateBuild(testCtx(t), w.done.ID, func(b *model.Build) error {
		b.Status, b.StartedAt, b.FinishedAt = model.StatusSucceeded, &started, &finished
		b.Digest, b.Pusher, b.DeliveryID = digest, "octocat", "72d3162e"
		b.Deliveries = []model.Delivery{{Hook: 0, Event: model.EventImagePushed, URL: "https://deploy.example/hook", MessageID: "msg_1",
			Status: model.DeliveryFailed, Attempts: []model.Attempt{{At: finished, StatusCode: 500, DurationMS: 12}, {At: finished, Error: "connection refused", DurationMS: 3}}}}
		b.Statuses = []model.StatusPost{{State: "success", At: finished}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.AppendLog(testCtx(t), w.done.ID, []byte("#1 [internal] load build definition\n#1 DONE 0.1s\n")); err != nil {
		t.Fatal(err)
	}
	if w.badgeKey, err = h.client.NewBadgeKey(testCtx(t), w.demo.ID); err != nil {
		t.Fatal(err)
	}
	w.spareToken, _, _ = access.Split(m.issue("acme", "alice", "read", ""))
	return w
}

// validRepo is validRepo(fullName) with its image on the world's
// registry.
func (w *openAPIWorld) validRepo(fullName string) model.Repo {
	r := validRepo(fullName)
	r.Image = w.reg + "/" + strings.ToLower(fullName)
	return r
}

// repoInput is w.validRepo(fullName) as a client sends it: without the id
// and creation time that the server sets.
func (w *openAPIWorld) repoInput(fullName string) string {
	raw, _ := json.Marshal(w.validRepo(fullName))
	var fields map[string]any
	_ = json.Unmarshal(raw, &fields)
	delete(fields, "id")
	delete(fields, "created_at")
	raw, _ = json.Marshal(fields)
	return string(raw)
}

// cases are the calls, in order: some change what later ones see.
func (w *openAPIWorld) cases() []apiCase {
	repo := func(r model.Repo) string { return "/api/v1/repos/" + r.ID }
	build := func(b model.Build) string { return "/api/v1/builds/" + b.ID }
	rule := `{"source_type":"branch","source":"main","tags":["latest"],"dockerfile":"Dockerfile","build_args":{"GO":"1.26"},"platforms":"linux/amd64","test":{"target":"test"}}`
	return []apiCase{
		{op: "GET /healthz", path: "/healthz", want: 200},
		{op: "GET /readyz", path: "/readyz", want: 200},
		{op: "GET /api/v1/openapi.json", path: "/api/v1/openapi.json", want: 200, notStrict: true},
		{op: "GET /api/v1/whoami", path: "/api/v1/whoami", who: reader, want: 200},
		{op: "GET /api/v1/whoami", name: "as the bootstrap admin", path: "/api/v1/whoami", who: site, want: 200},
		{op: "GET /api/v1/whoami", name: "without a token", path: "/api/v1/whoami", who: noToken, want: 401, offDocument: true},
		{op: "GET /api/v1/whoami", name: "revoked token", path: "/api/v1/whoami", who: revoked, want: 401},
		{op: "GET /api/v1/builders", path: "/api/v1/builders", who: reader, want: 200},

		{op: "POST /api/v1/repos", path: "/api/v1/repos", who: admin, body: w.repoInput("acme/fresh"), want: 201},
		{op: "POST /api/v1/repos", name: "build_now without a way to list branches", path: "/api/v1/repos", who: admin,
			body: strings.Replace(w.repoInput("acme/now"), `{`, `{"build_now":true,`, 1), want: 422},
		{op: "POST /api/v1/repos", name: "invalid image", path: "/api/v1/repos", who: admin,
			body: `{"provider":"github","full_name":"acme/bad","image":"Not An Image","rules":[` + rule + `]}`, want: 400},
		{op: "POST /api/v1/repos", name: "as reader", path: "/api/v1/repos", who: reader, body: w.repoInput("acme/mine"), want: 403},
		{op: "POST /api/v1/repos", name: "another organization's", path: "/api/v1/repos", who: other, body: w.repoInput("acme/theirs"), want: 404},
		{op: "POST /api/v1/repos", name: "taken", path: "/api/v1/repos", who: admin, body: w.repoInput("acme/demo"), want: 409},
		{op: "POST /api/v1/repos/connect", path: "/api/v1/repos/connect", who: admin,
			body: `{"provider":"okhost","full_name":"acme/connected","image":"` + w.reg + `/acme/connected","token":"host-token","build_now":false}`, want: 201},
		{op: "POST /api/v1/repos/connect", name: "the host refuses a webhook", path: "/api/v1/repos/connect", who: admin,
			body: `{"provider":"fakehost","full_name":"acme/nohook","image":"` + w.reg + `/acme/nohook","token":"host-token","rules":[` + rule + `]}`, want: 502},
		{op: "GET /api/v1/repos", path: "/api/v1/repos", who: reader, want: 200},
		{op: "GET /api/v1/repos/{id}", path: repo(w.demo), who: reader, want: 200},
		{op: "GET /api/v1/repos/{id}", name: "another organization's", path: repo(w.demo), who: other, want: 404},
		{op: "PATCH /api/v1/repos/{id}", name: "rules and hooks", path: repo(w.patched), who: writer,
			body: `{"rules":[` + rule + `],"hooks":[{"url":"https://deploy.example/new","secret":"` + hookSecret + `","events":["image.pushed","build.failed"],"format":"cloudevents"}]}`, want: 200},
		{op: "PATCH /api/v1/repos/{id}", name: "public as writer", path: repo(w.patched), who: writer, body: `{"public":true}`, want: 403},
		{op: "PATCH /api/v1/repos/{id}", name: "public", path: repo(w.patched), who: admin, body: `{"public":true}`, want: 200},
		{op: "DELETE /api/v1/repos/{id}", path: repo(w.doomed) + "?keep_hook=true", who: admin, want: 204},
		{op: "DELETE /api/v1/repos/{id}", name: "as writer", path: repo(w.patched) + "?keep_hook=true", who: writer, want: 403},
		{op: "POST /api/v1/repos/{id}/builds", path: repo(w.demo) + "/builds", who: writer, body: `{"ref":"refs/tags/v2.0.0","commit":"` + commitC + `"}`, want: 202},
		{op: "POST /api/v1/repos/{id}/builds", name: "a ref no rule builds", path: repo(w.demo) + "/builds", who: writer, body: `{"ref":"refs/heads/other","commit":"` + commitC + `"}`, want: 422},
		{op: "POST /api/v1/repos/{id}/builds", name: "no such repository", path: "/api/v1/repos/nope/builds", who: writer, body: `{"ref":"refs/heads/main"}`, want: 404},
		{op: "POST /api/v1/repos/{id}/badge-key", path: repo(w.keyed) + "/badge-key", who: writer, want: 201},
		{op: "DELETE /api/v1/repos/{id}/badge-key", path: repo(w.keyed) + "/badge-key", who: writer, want: 204},
		{op: "DELETE /api/v1/repos/{id}/badge-key", name: "as reader", path: repo(w.keyed) + "/badge-key", who: reader, want: 403},

		{op: "GET /api/v1/builds", path: "/api/v1/builds?repo=" + w.demo.ID + "&limit=1", who: reader, want: 200},
		{op: "GET /api/v1/builds", name: "succeeded only", path: "/api/v1/builds?status=succeeded", who: reader, want: 200},
		{op: "GET /api/v1/builds", name: "unknown status", path: "/api/v1/builds?status=bogus", who: reader, want: 400, offDocument: true},
		{op: "GET /api/v1/builds/{id}", path: build(w.done), who: reader, want: 200},
		{op: "GET /api/v1/builds/{id}", name: "no such build", path: "/api/v1/builds/nope", who: reader, want: 404},
		{op: "GET /api/v1/builds/{id}/log", path: build(w.done) + "/log", who: reader, want: 200},
		{op: "GET /api/v1/builds/{id}/log", name: "as an event stream", path: build(w.done) + "/log", accept: "text/event-stream", who: reader, want: 200},
		{op: "POST /api/v1/builds/{id}/rebuild", name: "still queued", path: build(w.busy) + "/rebuild", who: writer, want: 409},
		{op: "POST /api/v1/builds/{id}/cancel", path: build(w.busy) + "/cancel", who: writer, want: 202},
		{op: "POST /api/v1/builds/{id}/cancel", name: "finished", path: build(w.done) + "/cancel", who: writer, want: 409},
		{op: "POST /api/v1/builds/{id}/cancel", name: "as reader", path: build(w.busy) + "/cancel", who: reader, want: 403},
		{op: "POST /api/v1/builds/{id}/rebuild", path: build(w.done) + "/rebuild", who: writer, want: 202},
		{op: "POST /api/v1/builds/{id}/deliveries/{n}/redeliver", path: build(w.done) + "/deliveries/0/redeliver", who: writer, want: 202},
		{op: "POST /api/v1/builds/{id}/deliveries/{n}/redeliver", name: "still pending", path: build(w.done) + "/deliveries/0/redeliver", who: writer, want: 409},
		{op: "POST /api/v1/builds/{id}/deliveries/{n}/redeliver", name: "no such delivery", path: build(w.done) + "/deliveries/7/redeliver", who: writer, want: 400},
		{op: "GET /api/v1/builds/{id}/image", path: build(w.done) + "/image", who: reader, want: 200},
		{op: "GET /api/v1/builds/{id}/image", name: "pushed no image", path: build(w.busy) + "/image", who: reader, want: 409},
		{op: "GET /api/v1/images", path: "/api/v1/images?org=acme", who: reader, want: 200},
		{op: "GET /api/v1/images/{org}/{name}/tags", path: "/api/v1/images/acme/demo/tags", who: reader, want: 200},
		{op: "GET /api/v1/images/{org}/{name}/tags", name: "another organization's", path: "/api/v1/images/acme/demo/tags", who: other, want: 404},

		{op: "POST /api/v1/orgs", path: "/api/v1/orgs", who: site, body: `{"name":"newco","owners":["erin"]}`, want: 201},
		{op: "POST /api/v1/orgs", name: "taken", path: "/api/v1/orgs", who: site, body: `{"name":"newco","owners":["erin"]}`, want: 409},
		{op: "POST /api/v1/orgs", name: "as an organization's admin", path: "/api/v1/orgs", who: admin, body: `{"name":"mine","owners":["carol"]}`, want: 403},
		{op: "GET /api/v1/orgs", path: "/api/v1/orgs", who: reader, want: 200},
		{op: "GET /api/v1/orgs/{org}", path: "/api/v1/orgs/acme", who: reader, want: 200},
		{op: "PATCH /api/v1/orgs/{org}", path: "/api/v1/orgs/acme", who: admin, body: `{"public_images":["acme/base"]}`, want: 200},
		{op: "PATCH /api/v1/orgs/{org}", name: "outside the namespace", path: "/api/v1/orgs/acme", who: admin, body: `{"public_images":["globex/base"]}`, want: 400},
		{op: "PUT /api/v1/orgs/{org}/teams/{team}", path: "/api/v1/orgs/acme/teams/extra", who: admin, body: `{"role":"read","members":["frank","acme+deployer"]}`, want: 200},
		{op: "DELETE /api/v1/orgs/{org}/teams/{team}", path: "/api/v1/orgs/acme/teams/extra", who: admin, want: 204},
		{op: "DELETE /api/v1/orgs/{org}/teams/{team}", name: "the last admin team", path: "/api/v1/orgs/acme/teams/owners", who: admin, want: 400},
		{op: "PUT /api/v1/orgs/{org}/registries/{host}", path: "/api/v1/orgs/acme/registries/ghcr.io", who: admin, body: `{"username":"acme-bot","password":"registry-password-0123"}`, want: 200},
		{op: "GET /api/v1/orgs/{org}", name: "with a registry login", path: "/api/v1/orgs/acme", who: admin, want: 200},
		{op: "DELETE /api/v1/orgs/{org}/registries/{host}", path: "/api/v1/orgs/acme/registries/ghcr.io", who: admin, want: 204},
		{op: "DELETE /api/v1/orgs/{org}/registries/{host}", name: "none stored", path: "/api/v1/orgs/acme/registries/ghcr.io", who: admin, want: 404},
		{op: "POST /api/v1/tokens", path: "/api/v1/tokens", who: admin, body: `{"name":"ci","organization":"acme","account":"alice","role":"read","expires_in":"720h"}`, want: 201},
		{op: "POST /api/v1/tokens", name: "above one's own role", path: "/api/v1/tokens", who: reader, body: `{"name":"more","role":"admin"}`, want: 403},
		{op: "GET /api/v1/tokens", path: "/api/v1/tokens", who: admin, want: 200},
		{op: "DELETE /api/v1/tokens/{id}", path: "/api/v1/tokens/" + w.spareToken, who: admin, want: 204},
		{op: "POST /api/v1/admin/secrets/rotate", path: "/api/v1/admin/secrets/rotate", who: site, want: 200},
		{op: "POST /api/v1/admin/secrets/rotate", name: "as an organization's admin", path: "/api/v1/admin/secrets/rotate", who: admin, want: 403},

		{op: "GET /badge/{org}/{repo}.svg", path: "/badge/acme/demo.svg", who: reader, want: 200},
		{op: "GET /badge/{org}/{repo}.svg", name: "private without a token", path: "/badge/acme/demo.svg", want: 404},
		{op: "GET /badge/{org}/{repo}.svg", name: "public", path: "/badge/acme/patched.svg", want: 200},
		{op: "GET /badge/{org}/{repo}/{tag}.svg", path: "/badge/acme/demo/latest.svg?key=" + w.badgeKey, want: 200},
	}
}
