package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
)

// Manifest media types the client asks for and understands.
const (
	MediaTypeOCIIndex           = "application/vnd.oci.image.index.v1+json"
	MediaTypeOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
)

// manifestAccept is the Accept header of manifest requests.
var manifestAccept = strings.Join([]string{
	MediaTypeOCIIndex,
	MediaTypeOCIManifest,
	MediaTypeDockerManifestList,
	MediaTypeDockerManifest,
}, ", ")

const (
	// maxManifestSize is the largest manifest read; distribution refuses to
	// store bigger ones.
	maxManifestSize = 4 << 20
	// maxConfigSize is the largest image config blob read.
	maxConfigSize = 16 << 20
	// maxIndexDepth bounds how many nested indexes Labels follows.
	maxIndexDepth = 4
	userAgent     = "slipway-registry-client"
)

// ErrNotFound is wrapped by the errors of Client methods when the registry
// answers 404 (unknown repository, tag, manifest or blob), and by Labels
// when an index has no manifest for the asked platform.
var ErrNotFound = errors.New("not found")

// ErrUnreachable is wrapped by the errors of Client methods when a registry
// or its token service could not be reached: the host name does not resolve,
// the connection is refused or times out, the connection is dropped before
// an answer, or no answer comes in time (http.Client.Timeout or the
// context's deadline). Test it with errors.Is(err, ErrUnreachable) to tell a
// network failure from a registry that answered with an error, which never
// wraps it. A cancelled context does not count as unreachable.
var ErrUnreachable = errors.New("registry unreachable")

// Client reads manifests and image configs from OCI/Docker registries over
// the registry HTTP API and moves tags (Tag). Loopback hosts (localhost,
// 127.0.0.0/8, [::1]) are reached over plain HTTP, all others over HTTPS.
//
// When a registry answers 401, a Basic challenge is answered with the
// credentials from Credentials, and a Bearer challenge with a token from the
// challenge's realm, asked for "repository:<name>:pull" (reads) or
// "repository:<name>:pull,push" (Tag), sending the credentials to the realm
// as basic auth, or asking anonymously without credentials (as for public
// images on Docker Hub or ghcr.io). A token is kept for the rest of one
// method call. Credentials are sent to a realm only over HTTPS or to a
// loopback host. Credentials and tokens never appear in errors: should a
// registry echo one in its error text, it is replaced by "***".
//
// The zero value is ready to use and anonymous.
type Client struct {
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
	// Credentials returns the username and secret (password or access
	// token) for a registry host (host[:port], as in image references), or
	// two empty strings for anonymous access. It is called once per method
	// call. nil means anonymous access everywhere.
	Credentials func(host string) (username, secret string)
}

// Manifest is a manifest or index as served by a registry.
type Manifest struct {
	// Digest is the content digest ("sha256:..."), from the
	// Docker-Content-Digest header or else computed from Raw.
	Digest string
	// MediaType is the manifest's media type, one of the MediaType
	// constants for the kinds this client asks for.
	MediaType string
	// Raw holds the manifest bytes exactly as served.
	Raw []byte
	// Platforms lists, for an index or manifest list, the platform of each
	// entry, in order, leaving out entries without a platform and
	// attestation entries (platform unknown/unknown). It is nil for a
	// single-platform manifest.
	Platforms []Platform
}

// IsIndex reports whether m is an OCI index or a Docker manifest list.
func (m Manifest) IsIndex() bool { return isIndexType(m.MediaType) }

// Platform is the platform of an index entry.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// String returns "os/architecture" or "os/architecture/variant".
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// descriptor is the part of an OCI descriptor this client uses.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// manifestDoc covers both indexes and image manifests.
type manifestDoc struct {
	MediaType string       `json:"mediaType"`
	Manifests []descriptor `json:"manifests"`
	Config    *descriptor  `json:"config"`
}

// isAttestation reports whether an index entry is a BuildKit attestation
// (provenance/SBOM) manifest rather than an image.
func (d descriptor) isAttestation() bool {
	if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

func isIndexType(mt string) bool {
	return mt == MediaTypeOCIIndex || mt == MediaTypeDockerManifestList
}

func isImageManifestType(mt string) bool {
	return mt == MediaTypeOCIManifest || mt == MediaTypeDockerManifest
}

// Ping checks that host (host[:port]) speaks the registry API: GET /v2/ must
// answer 200, or 401 when the registry wants authentication.
func (c Client) Ping(ctx context.Context, host string) error {
	if !hostRE.MatchString(host) {
		return fmt.Errorf("registry: invalid host %q", host)
	}
	u := baseURL(host) + "/v2/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("registry: ping %s: %w", host, err)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := roundTrip(c.httpClient(), req)
	if err != nil {
		return fmt.Errorf("registry: ping %s: %w", host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK, http.StatusUnauthorized:
		return nil
	}
	return fmt.Errorf("registry: ping %s: GET %s: unexpected status %s", host, u, resp.Status)
}

// Manifest fetches the manifest or index that ref (host[:port]/name[:tag] or
// host[:port]/name@digest) points to. A missing repository or tag gives an
// error wrapping ErrNotFound. When ref holds a digest, the content is
// checked against it.
func (c Client) Manifest(ctx context.Context, ref string) (Manifest, error) {
	host, name, reference, err := ParseRef(ref)
	if err != nil {
		return Manifest{}, err
	}
	s := c.session(host, name, false)
	m, err := s.manifest(ctx, reference)
	if err != nil {
		return Manifest{}, s.redact(fmt.Errorf("registry: manifest %s: %w", ref, err))
	}
	return m, nil
}

// Tag points tag at the manifest or index with the given digest in image
// (host[:port]/name, without tag or digest), creating the tag or moving it:
// it fetches the content by digest and PUTs the same bytes, with their media
// type, under the tag. Indexes (multi-platform images) and single manifests
// are handled alike. A missing repository or digest gives an error wrapping
// ErrNotFound.
func (c Client) Tag(ctx context.Context, image, digest, tag string) error {
	host, name, err := parseImage(image)
	if err != nil {
		return err
	}
	if !digestRE.MatchString(digest) {
		return fmt.Errorf("registry: tag %s: invalid digest %q", image, digest)
	}
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("registry: tag %s@%s: invalid tag %q", image, digest, tag)
	}
	s := c.session(host, name, true)
	if err := s.tag(ctx, digest, tag); err != nil {
		return s.redact(fmt.Errorf("registry: tag %s@%s as %s: %w", image, digest, tag, err))
	}
	return nil
}

// parseImage splits host[:port]/name, refusing a tag or digest.
func parseImage(image string) (host, name string, err error) {
	host, name, _, err = ParseRef(image)
	if err != nil {
		return "", "", err
	}
	if host+"/"+name != image {
		return "", "", fmt.Errorf("registry: invalid image %q: want host[:port]/name without tag or digest", image)
	}
	return host, name, nil
}

// Labels returns the labels of the image config that ref points to. When ref
// is an index, the entry for platform ("os/arch" or "os/arch/variant", e.g.
// "linux/amd64") is used, or the first entry that is not an attestation when
// platform is empty; an index without that platform gives an error wrapping
// ErrNotFound. For a single-platform manifest platform is not checked. The
// result is never nil.
func (c Client) Labels(ctx context.Context, ref string, platform string) (_ map[string]string, err error) {
	host, name, reference, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	s := c.session(host, name, false)
	defer func() {
		if err != nil {
			err = s.redact(err)
		}
	}()
	var want *Platform
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return nil, err
		}
		want = &p
	}
	m, err := s.manifest(ctx, reference)
	for depth := 0; err == nil && m.IsIndex(); depth++ {
		if depth == maxIndexDepth {
			err = fmt.Errorf("indexes nested more than %d deep", maxIndexDepth)
			break
		}
		var dgst string
		if dgst, err = pickEntry(m, want); err == nil {
			m, err = s.manifest(ctx, dgst)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("registry: labels of %s: %w", ref, err)
	}
	if !isImageManifestType(m.MediaType) {
		return nil, fmt.Errorf("registry: labels of %s: manifest %s has unsupported media type %q", ref, m.Digest, m.MediaType)
	}
	var doc manifestDoc
	if err := json.Unmarshal(m.Raw, &doc); err != nil {
		return nil, fmt.Errorf("registry: labels of %s: manifest %s: %w", ref, m.Digest, err)
	}
	if doc.Config == nil || doc.Config.Digest == "" {
		return nil, fmt.Errorf("registry: labels of %s: manifest %s has no config", ref, m.Digest)
	}
	if doc.Config.Size > maxConfigSize {
		return nil, fmt.Errorf("registry: labels of %s: config blob %s is too large (%d bytes)", ref, doc.Config.Digest, doc.Config.Size)
	}
	raw, err := s.blob(ctx, doc.Config.Digest, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("registry: labels of %s: config: %w", ref, err)
	}
	var cfg struct {
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("registry: labels of %s: config %s: %w", ref, doc.Config.Digest, err)
	}
	if cfg.Config.Labels == nil {
		return map[string]string{}, nil
	}
	return cfg.Config.Labels, nil
}

// pickEntry returns the digest of the index entry to follow for want (nil:
// the first entry that is not an attestation).
func pickEntry(m Manifest, want *Platform) (string, error) {
	var doc manifestDoc
	if err := json.Unmarshal(m.Raw, &doc); err != nil {
		return "", fmt.Errorf("index %s: %w", m.Digest, err)
	}
	for _, d := range doc.Manifests {
		if d.isAttestation() || d.Digest == "" {
			continue
		}
		if d.MediaType != "" && !isIndexType(d.MediaType) && !isImageManifestType(d.MediaType) {
			continue // some other artifact
		}
		switch {
		case want == nil,
			d.Platform != nil && platformMatches(*want, *d.Platform),
			// A nested index without a platform of its own: look inside.
			d.Platform == nil && isIndexType(d.MediaType):
			return d.Digest, nil
		}
	}
	if want == nil {
		return "", fmt.Errorf("%w: index %s has no image entries", ErrNotFound, m.Digest)
	}
	return "", fmt.Errorf("%w: index %s has no entry for platform %s", ErrNotFound, m.Digest, want)
}

// parsePlatform parses "os/arch" or "os/arch/variant".
func parsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || (len(parts) == 3 && parts[2] == "") {
		return Platform{}, fmt.Errorf("registry: invalid platform %q (want os/arch or os/arch/variant)", s)
	}
	p := Platform{OS: strings.ToLower(parts[0]), Architecture: strings.ToLower(parts[1])}
	if len(parts) == 3 {
		p.Variant = strings.ToLower(parts[2])
	}
	return p, nil
}

// platformMatches reports whether an index entry's platform satisfies want.
// An empty variant in want matches any variant; the default variants of
// arm64 (v8) and amd64 (v1) equal an empty one.
func platformMatches(want, have Platform) bool {
	if !strings.EqualFold(want.OS, have.OS) {
		return false
	}
	arch := normArch(want.Architecture)
	if arch != normArch(have.Architecture) {
		return false
	}
	if want.Variant == "" {
		return true
	}
	return normVariant(arch, want.Variant) == normVariant(arch, have.Variant)
}

func normArch(a string) string {
	switch a = strings.ToLower(a); a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return a
}

func normVariant(arch, v string) string {
	v = strings.ToLower(v)
	switch {
	case arch == "arm64" && v == "v8", arch == "amd64" && v == "v1":
		return ""
	}
	return v
}

// session makes the requests of one call against one repository and keeps
// what authentication the registry asked for (basic auth or a bearer token)
// between them.
type session struct {
	client   *http.Client
	host     string // host[:port]
	base     string // scheme://host
	name     string
	scope    string // token scope: repository:<name>:pull or :pull,push
	username string
	secret   string
	basic    bool   // send basic auth: the registry asked for it
	token    string // bearer token from the realm
	authed   bool   // a 401 was answered; another one is final
}

func (c Client) session(host, name string, push bool) *session {
	s := &session{
		client: c.httpClient(),
		host:   host,
		base:   baseURL(host),
		name:   name,
		scope:  "repository:" + name + ":pull",
	}
	if push {
		s.scope += ",push"
	}
	if c.Credentials != nil {
		s.username, s.secret = c.Credentials(host)
	}
	return s
}

func (c Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (s *session) hasCredentials() bool { return s.username != "" || s.secret != "" }

// actions returns the access the session's token scope asks for.
func (s *session) actions() string { return s.scope[strings.LastIndexByte(s.scope, ':')+1:] }

// covers reports whether the session's scope already asks for everything
// scope (from a challenge) does.
func (s *session) covers(scope string) bool {
	actions, ok := strings.CutPrefix(scope, "repository:"+s.name+":")
	if !ok {
		return false
	}
	for _, a := range strings.Split(actions, ",") {
		if !slices.Contains(strings.Split(s.actions(), ","), a) {
			return false
		}
	}
	return true
}

// manifest fetches /v2/<name>/manifests/<reference>.
func (s *session) manifest(ctx context.Context, reference string) (Manifest, error) {
	u := s.base + "/v2/" + s.name + "/manifests/" + reference
	resp, err := s.do(ctx, http.MethodGet, u, http.Header{"Accept": {manifestAccept}}, nil)
	if err != nil {
		return Manifest{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Manifest{}, statusError(resp, http.MethodGet, u)
	}
	raw, err := readLimited(resp.Body, maxManifestSize)
	if err != nil {
		return Manifest{}, fmt.Errorf("GET %s: %w", u, err)
	}

	sum := sha256.Sum256(raw)
	computed := "sha256:" + hex.EncodeToString(sum[:])
	dgst := resp.Header.Get("Docker-Content-Digest")
	if digestRE.MatchString(reference) {
		if err := verifyDigest(reference, raw); err != nil {
			return Manifest{}, fmt.Errorf("GET %s: %w", u, err)
		}
		dgst = reference
	}
	switch {
	case dgst == "":
		dgst = computed
	case strings.HasPrefix(dgst, "sha256:") && dgst != computed:
		return Manifest{}, fmt.Errorf("GET %s: Docker-Content-Digest %s does not match the content (%s)", u, dgst, computed)
	}

	var doc manifestDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return Manifest{}, fmt.Errorf("GET %s: manifest is not JSON: %w", u, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !isIndexType(mt) && !isImageManifestType(mt) && doc.MediaType != "" {
		mt = doc.MediaType
	}
	m := Manifest{Digest: dgst, MediaType: mt, Raw: raw}
	if isIndexType(mt) {
		m.Platforms = []Platform{}
		for _, d := range doc.Manifests {
			if d.Platform == nil || d.isAttestation() {
				continue
			}
			m.Platforms = append(m.Platforms, *d.Platform)
		}
	}
	return m, nil
}

// tag fetches the manifest with digest and PUTs it under tag.
func (s *session) tag(ctx context.Context, digest, tag string) error {
	m, err := s.manifest(ctx, digest)
	if err != nil {
		return err
	}
	if !isIndexType(m.MediaType) && !isImageManifestType(m.MediaType) {
		return fmt.Errorf("manifest %s has unsupported media type %q", digest, m.MediaType)
	}
	u := s.base + "/v2/" + s.name + "/manifests/" + tag
	resp, err := s.do(ctx, http.MethodPut, u, http.Header{"Content-Type": {m.MediaType}}, m.Raw)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return statusError(resp, http.MethodPut, u)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	got := resp.Header.Get("Docker-Content-Digest")
	if strings.HasPrefix(digest, "sha256:") && got != "" && got != digest {
		return fmt.Errorf("PUT %s: registry stored the manifest as %s", u, got)
	}
	return nil
}

// blob fetches /v2/<name>/blobs/<dgst> and checks its digest.
func (s *session) blob(ctx context.Context, dgst string, limit int64) ([]byte, error) {
	if !digestRE.MatchString(dgst) {
		return nil, fmt.Errorf("invalid digest %q", dgst)
	}
	u := s.base + "/v2/" + s.name + "/blobs/" + dgst
	resp, err := s.do(ctx, http.MethodGet, u, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp, http.MethodGet, u)
	}
	raw, err := readLimited(resp.Body, limit)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if err := verifyDigest(dgst, raw); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return raw, nil
}

// do sends a request with header h and body. The first 401 of the session
// is answered as its challenge asks (see authenticate) and the request sent
// once more; a 401 after that is an authentication error.
func (s *session) do(ctx context.Context, method, u string, h http.Header, body []byte) (*http.Response, error) {
	resp, err := s.send(ctx, method, u, h, body)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if !s.authed {
		challenge := resp.Header.Get("WWW-Authenticate")
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := s.authenticate(ctx, challenge); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, u, err)
		}
		resp, err = s.send(ctx, method, u, h, body)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			return resp, err
		}
	}
	defer resp.Body.Close()
	return nil, s.authError(resp, method, u)
}

func (s *session) send(ctx context.Context, method, u string, h http.Header, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	req.Header.Set("User-Agent", userAgent)
	switch {
	case s.token != "":
		req.Header.Set("Authorization", "Bearer "+s.token)
	case s.basic:
		req.SetBasicAuth(s.username, s.secret)
	}
	return roundTrip(s.client, req)
}

// authenticate answers a 401 challenge: Basic with the session's
// credentials, Bearer with a token from the challenge's realm.
func (s *session) authenticate(ctx context.Context, challenge string) error {
	scheme, params := parseChallenge(challenge)
	switch {
	case strings.EqualFold(scheme, "basic"):
		if !s.hasCredentials() {
			return fmt.Errorf("registry requires authentication (%q) and no credentials are configured for %s", challenge, s.host)
		}
		s.basic = true
	case strings.EqualFold(scheme, "bearer") && params["realm"] != "":
		if err := s.fetchToken(ctx, params); err != nil {
			if s.hasCredentials() {
				return fmt.Errorf("token: %w", err)
			}
			return fmt.Errorf("anonymous token: %w", err)
		}
	default:
		return fmt.Errorf("registry requires unsupported authentication (%q)", challenge)
	}
	s.authed = true
	return nil
}

// authError describes a 401 (from the registry or its token service) that
// the session cannot get past.
func (s *session) authError(resp *http.Response, method, u string) error {
	err := statusError(resp, method, u)
	if !s.hasCredentials() {
		return fmt.Errorf("authentication required and no credentials are configured for %s: %w", s.host, err)
	}
	return fmt.Errorf("authentication failed: the credentials for %s were refused or do not allow %s: %w", s.host, s.actions(), err)
}

// fetchToken asks the challenge's realm for a token with the session's
// scope, sending the credentials, if any, as basic auth.
func (s *session) fetchToken(ctx context.Context, params map[string]string) error {
	realm, err := url.Parse(params["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return fmt.Errorf("invalid realm %q", params["realm"])
	}
	if s.hasCredentials() && realm.Scheme != "https" && !isLoopback(realm.Host) {
		return fmt.Errorf("refusing to send credentials over plain HTTP to realm %s", realm.Redacted())
	}
	q := realm.Query()
	if svc := params["service"]; svc != "" {
		q.Set("service", svc)
	}
	q.Set("scope", s.scope)
	if sc := params["scope"]; sc != "" && !s.covers(sc) {
		q.Add("scope", sc)
	}
	realm.RawQuery = q.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", userAgent)
	if s.hasCredentials() {
		req.SetBasicAuth(s.username, s.secret)
	}
	resp, err := roundTrip(s.client, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return s.authError(resp, http.MethodGet, realm.Redacted())
	default:
		return statusError(resp, http.MethodGet, realm.Redacted())
	}
	raw, err := readLimited(resp.Body, 1<<20)
	if err != nil {
		return err
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil {
		return fmt.Errorf("token response: %w", err)
	}
	s.token = tok.Token
	if s.token == "" {
		s.token = tok.AccessToken
	}
	if s.token == "" {
		return errors.New("token response holds no token")
	}
	return nil
}

// redact replaces the session's secret, basic auth value and token in err's
// text by "***", should a registry have echoed one in an error message.
// errors.Is still sees through the result (ErrNotFound, ErrUnreachable).
func (s *session) redact(err error) error {
	msg := err.Error()
	clean := msg
	hidden := []string{s.token, s.secret}
	if s.hasCredentials() {
		hidden = append(hidden, base64.StdEncoding.EncodeToString([]byte(s.username+":"+s.secret)))
	}
	for _, h := range hidden {
		if h != "" {
			clean = strings.ReplaceAll(clean, h, "***")
		}
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// redactedError has the text of err with secrets hidden. It has no Unwrap,
// which would hand out the original text, but answers errors.Is for err.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// roundTrip sends req, wrapping failures to reach the server in
// ErrUnreachable.
func roundTrip(c *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := c.Do(req)
	if err != nil && unreachable(req.Context(), err) {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return resp, err
}

// unreachable reports whether err, from sending a request, means that the
// server was not reached or did not answer: a DNS failure, a failed dial, a
// timeout, or the connection dropped before any answer. A cancelled context
// is the caller's doing.
func unreachable(ctx context.Context, err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled) {
		return false
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr),
		errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect"),
		errors.As(err, &netErr) && netErr.Timeout(),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		// net/http's unexported errServerClosedIdle: the server closed a
		// fresh connection before answering, as with EOF above.
		strings.HasSuffix(err.Error(), "http: server closed idle connection"):
		return true
	}
	return false
}

// parseChallenge splits a WWW-Authenticate value such as
// `Bearer realm="https://auth.example/token",service="reg",scope="..."`
// into its scheme and (lower-cased) parameter names with their values.
func parseChallenge(h string) (scheme string, params map[string]string) {
	h = strings.TrimSpace(h)
	scheme, rest, _ := strings.Cut(h, " ")
	params = map[string]string{}
	for {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			return scheme, params
		}
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			return scheme, params
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			val = b.String()
			if i < len(rest) {
				i++ // closing quote
			}
			rest = rest[i:]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val = strings.TrimSpace(rest[:end])
			rest = rest[end:]
		}
		params[key] = val
	}
}

// statusError describes an unexpected response, wrapping ErrNotFound for
// 404, and includes the registry's error codes when the body carries them.
func statusError(resp *http.Response, method, u string) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	detail := ""
	var regErr struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &regErr) == nil && len(regErr.Errors) > 0 {
		msgs := make([]string, 0, len(regErr.Errors))
		for _, e := range regErr.Errors {
			msgs = append(msgs, strings.TrimSpace(e.Code+" "+e.Message))
		}
		detail = ": " + strings.Join(msgs, "; ")
	} else if t := strings.TrimSpace(string(body)); t != "" && len(t) <= 200 {
		detail = ": " + t
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %s %s: %s%s", ErrNotFound, method, u, resp.Status, detail)
	}
	return fmt.Errorf("%s %s: unexpected status %s%s", method, u, resp.Status, detail)
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("response larger than %d bytes", limit)
	}
	return raw, nil
}

// verifyDigest checks raw against a sha256 or sha512 digest; content under
// other algorithms cannot be checked and is refused.
func verifyDigest(dgst string, raw []byte) error {
	algo, want, _ := strings.Cut(dgst, ":")
	var h hash.Hash
	switch algo {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return fmt.Errorf("unsupported digest algorithm %q", algo)
	}
	h.Write(raw)
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("content digest %s:%s does not match %s", algo, got, dgst)
	}
	return nil
}

// baseURL returns the scheme and host to reach a registry host at.
func baseURL(host string) string {
	if isLoopback(host) {
		return "http://" + host
	}
	return "https://" + host
}

// isLoopback reports whether host (with or without port) names this machine:
// localhost, 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

var (
	// hostRE is a DNS name, IPv4 address or bracketed IPv6 address with an
	// optional port.
	hostRE = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$`)
	// nameRE is a repository name: lower-case path components.
	nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	// digestRE accepts the algorithms verifyDigest can check.
	digestRE = regexp.MustCompile(`^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)
)

// ParseRef splits an image reference with an explicit registry host into
// host (with port, if any), repository name and reference: the digest for
// "host/name@sha256:...", also when a tag comes before it, else the tag,
// else "latest". References without a host, such as "alpine:3" or
// "library/alpine", are rejected: the first path component counts as a host
// only when it contains "." or ":", or is "localhost".
func ParseRef(ref string) (host, name, reference string, err error) {
	bad := func(why string) (string, string, string, error) {
		return "", "", "", fmt.Errorf("registry: invalid image reference %q: %s", ref, why)
	}
	rest := ref
	var dgst string
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		rest, dgst = rest[:i], rest[i+1:]
		if !digestRE.MatchString(dgst) {
			return bad("digest must be sha256:<64 hex> or sha512:<128 hex>")
		}
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return bad("no registry host (want host[:port]/name[:tag] or host[:port]/name@digest)")
	}
	host, rest = rest[:slash], rest[slash+1:]
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return bad(fmt.Sprintf("%q is not a registry host (want host[:port]/name[:tag] or host[:port]/name@digest)", host))
	}
	if !hostRE.MatchString(host) {
		return bad(fmt.Sprintf("invalid registry host %q", host))
	}
	var tag string
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		rest, tag = rest[:i], rest[i+1:]
		if !tagRE.MatchString(tag) {
			return bad(fmt.Sprintf("invalid tag %q", tag))
		}
	}
	name = rest
	if name == "" {
		return bad("no repository name")
	}
	if len(name) > 255 || !nameRE.MatchString(name) {
		return bad(fmt.Sprintf("invalid repository name %q (lower-case letters, digits and separators)", name))
	}
	switch {
	case dgst != "":
		reference = dgst
	case tag != "":
		reference = tag
	default:
		reference = "latest"
	}
	return host, name, reference, nil
}
