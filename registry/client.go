package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipway-build/slipway/outbound"
)

// ErrUnreachable is wrapped by the errors of Client methods when a registry
// or its token service could not be reached: the host name does not resolve,
// the connection is refused or times out, the connection is dropped before
// an answer, or no answer comes before the context's deadline. Test it with
// errors.Is(err, ErrUnreachable) to tell a network failure from a registry
// that answered with an error, which never wraps it. A cancelled context
// does not count as unreachable.
var ErrUnreachable = errors.New("registry unreachable")

// userAgent is sent before go-containerregistry's own.
const userAgent = "slipway"

// Client checks that registries answer (Ping) and moves tags (Tag), through
// go-containerregistry. Loopback hosts (localhost, 127.0.0.0/8, [::1]) are
// reached over plain HTTP, all others over HTTPS only: plain HTTP to any
// other host, registry or token service, is refused.
//
// go-containerregistry answers a registry's Basic challenge with the
// credentials from Credentials, and a Bearer challenge with a token from
// the challenge's realm, sending the credentials there as basic auth, or
// asking anonymously without credentials. Credentials and tokens never
// appear in errors: should a registry echo one, it is replaced by "***".
//
// The zero value is ready to use and anonymous.
type Client struct {
	// Transport sends the requests; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Credentials returns the username and secret (password or access
	// token) for a registry host (host[:port], as in image references), or
	// two empty strings for anonymous access. Tag calls it once. nil means
	// anonymous access everywhere.
	Credentials func(host string) (username, secret string)
}

// Ping checks that host (host[:port]) speaks the registry API: GET /v2/ must
// answer 200, or 401 when the registry wants authentication.
func (c Client) Ping(ctx context.Context, host string) error {
	reg, err := name.NewRegistry(host, nameOptions(host)...)
	if err != nil {
		return fmt.Errorf("registry: ping: invalid host %q: %w", host, err)
	}
	if _, err := transport.Ping(ctx, reg, c.newGuard()); err != nil {
		return fmt.Errorf("registry: ping %s: %w", host, markUnreachable(ctx, err))
	}
	return nil
}

// Tag points tag at the manifest or index with the given digest in image
// (host[:port]/name, without tag or digest), creating the tag or moving it:
// it fetches the content by digest and PUTs the same bytes, with their media
// type, under the tag. Indexes (multi-platform images) and single manifests
// are handled alike.
func (c Client) Tag(ctx context.Context, image, digest, tag string) error {
	src, dst, err := tagRefs(image, digest, tag)
	if err != nil {
		return err
	}
	s := c.session(registryHost(image))
	if err := s.tag(ctx, src, dst); err != nil {
		err = fmt.Errorf("registry: tag %s@%s as %s: %w", image, digest, tag, s.explain(ctx, err, "pull,push"))
		return s.scrub(err)
	}
	return nil
}

// Delete removes tag from image (host[:port]/name), leaving the manifest
// it named to the registry's garbage collection: a closed pull request's
// tags go (delete_on_close). A tag that is gone already is no error, so a
// redelivered close deletes nothing twice.
func (c Client) Delete(ctx context.Context, image, tag string) error {
	opts := nameOptions(registryHost(image))
	if _, err := name.NewRepository(image, opts...); err != nil {
		return fmt.Errorf("registry: invalid image %q (want host[:port]/name without tag or digest): %w", image, err)
	}
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("registry: delete %s: invalid tag %q", image, tag)
	}
	ref, err := name.NewTag(image+":"+tag, opts...)
	if err != nil {
		return fmt.Errorf("registry: delete %s: invalid tag %q: %w", image, tag, err)
	}
	s := c.session(registryHost(image))
	if err := s.delete(ctx, ref); err != nil && !notFound(err) {
		err = fmt.Errorf("registry: delete %s:%s: %w", image, tag, s.explain(ctx, err, "delete"))
		return s.scrub(err)
	}
	return nil
}

// notFound reports a registry's answer that the tag does not exist.
func notFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// tagRE is the distribution spec's tag grammar, stricter than
// go-containerregistry's check (which lets a tag start with "-" or ".").
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// tagRefs parses Tag's arguments, refusing an image without an explicit
// registry host (name.StrictValidation), with a tag or digest, or in
// upper case.
func tagRefs(image, digest, tag string) (name.Digest, name.Tag, error) {
	opts := nameOptions(registryHost(image))
	if _, err := name.NewRepository(image, opts...); err != nil {
		return name.Digest{}, name.Tag{}, fmt.Errorf("registry: invalid image %q (want host[:port]/name without tag or digest): %w", image, err)
	}
	src, err := name.NewDigest(image+"@"+digest, opts...)
	if err != nil {
		return name.Digest{}, name.Tag{}, fmt.Errorf("registry: tag %s: invalid digest %q: %w", image, digest, err)
	}
	if !tagRE.MatchString(tag) {
		return name.Digest{}, name.Tag{}, fmt.Errorf("registry: tag %s@%s: invalid tag %q", image, digest, tag)
	}
	dst, err := name.NewTag(image+":"+tag, opts...)
	if err != nil {
		return name.Digest{}, name.Tag{}, fmt.Errorf("registry: tag %s@%s: invalid tag %q: %w", image, digest, tag, err)
	}
	return src, dst, nil
}

// nameOptions asks for an explicit registry host, so that nothing goes to
// Docker Hub by default, and for plain HTTP to a loopback host.
// go-containerregistry guesses plain HTTP for 127.0.0.1 and localhost:port
// only; name.Insecure makes it so for all of 127.0.0.0/8, [::1] and a bare
// "localhost" too.
func nameOptions(host string) []name.Option {
	opts := []name.Option{name.StrictValidation}
	if isLoopback(host) {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// registryHost is the host[:port] part of an image name.
func registryHost(image string) string {
	host, _, _ := strings.Cut(image, "/")
	return host
}

// session holds what one Tag call knows about its credentials, to explain
// authentication failures and to scrub secrets from errors.
type session struct {
	host     string
	username string
	secret   string
	guard    *guard
}

func (c Client) session(host string) *session {
	s := &session{host: host, guard: c.newGuard()}
	if c.Credentials != nil {
		s.username, s.secret = c.Credentials(host)
	}
	return s
}

func (s *session) hasCredentials() bool { return s.username != "" || s.secret != "" }

func (s *session) authenticator() authn.Authenticator {
	if !s.hasCredentials() {
		return authn.Anonymous
	}
	return &authn.Basic{Username: s.username, Password: s.secret}
}

// tag fetches the manifest src and PUTs it as dst. One transport, scoped
// for pull and push, serves both requests: one ping and one token per call
// (another only if the registry challenges a request again). Being a
// transport.Wrapper, go-containerregistry adds no retries
// of its own to it: the worker retries an unreachable registry on its own
// schedule (worker.Worker.RegistryRetry).
func (s *session) tag(ctx context.Context, src name.Digest, dst name.Tag) error {
	repo := src.Context()
	rt, err := transport.NewWithContext(ctx, repo.Registry, s.authenticator(),
		transport.NewUserAgent(s.guard, userAgent), []string{repo.Scope(transport.PushScope)})
	if err != nil {
		return err
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(rt)}
	desc, err := remote.Get(src, opts...)
	if err != nil {
		return err
	}
	return remote.Tag(dst, desc, opts...)
}

// delete removes the tag dst, on a transport scoped for delete (which
// implies pull and push).
func (s *session) delete(ctx context.Context, dst name.Tag) error {
	repo := dst.Context()
	rt, err := transport.NewWithContext(ctx, repo.Registry, s.authenticator(),
		transport.NewUserAgent(s.guard, userAgent), []string{repo.Scope(transport.DeleteScope)})
	if err != nil {
		return err
	}
	return remote.Delete(dst, remote.WithContext(ctx), remote.WithTransport(rt))
}

// explain marks network failures with ErrUnreachable and says what a 401 or
// 403 means for the credentials at hand and the actions asked for.
func (s *session) explain(ctx context.Context, err error, actions string) error {
	if err = markUnreachable(ctx, err); errors.Is(err, ErrUnreachable) {
		return err
	}
	var terr *transport.Error
	if !errors.As(err, &terr) || (terr.StatusCode != http.StatusUnauthorized && terr.StatusCode != http.StatusForbidden) {
		return err
	}
	if !s.hasCredentials() {
		return fmt.Errorf("authentication required and no credentials are configured for %s: %w", s.host, err)
	}
	return fmt.Errorf("authentication failed: the credentials for %s were refused or do not allow pull,push: %w", s.host, err)
}

// scrub replaces the session's secret, its basic auth value and every
// credential sent (bearer tokens included) in err's text by "***", should
// a registry or token service have echoed one. errors.Is still sees
// through the result (ErrUnreachable).
func (s *session) scrub(err error) error {
	hidden := s.guard.credentialsSent()
	if s.hasCredentials() {
		hidden = append(hidden, s.secret, base64.StdEncoding.EncodeToString([]byte(s.username+":"+s.secret)))
	}
	return redact(err, hidden)
}

// redact replaces each of hidden in err's text by "***".
func redact(err error, hidden []string) error {
	msg := err.Error()
	clean := msg
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

// guard is the bottom transport of a call. It refuses plain HTTP to
// anything but loopback: go-containerregistry itself falls back to plain
// HTTP for private (RFC 1918) addresses, and would send credentials there.
// It also notes the credentials sent, so that scrub can hide them.
type guard struct {
	next http.RoundTripper

	mu   sync.Mutex
	sent map[string]bool // Authorization values past the scheme
}

func (c Client) newGuard() *guard {
	next := c.Transport
	if next == nil {
		next = remote.DefaultTransport
	}
	return &guard{next: next, sent: map[string]bool{}}
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !isLoopback(req.URL.Host) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: only loopback hosts are reached without TLS", req.URL.Host)
	}
	if _, cred, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok && cred != "" {
		g.mu.Lock()
		g.sent[cred] = true
		g.mu.Unlock()
	}
	req, err := rewind(req)
	if err != nil {
		return nil, err
	}
	return g.next.RoundTrip(req)
}

// rewind returns req with a fresh copy of its body. go-containerregistry's
// bearer transport sends a request again after a 401 with the body it
// already read (google/go-containerregistry#1004), which fails as
// "ContentLength=N with Body length 0" and hides the 401.
func rewind(req *http.Request) (*http.Request, error) {
	if req.GetBody == nil || req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("%s %s: rewind request body: %w", req.Method, req.URL.Redacted(), err)
	}
	// A RoundTripper closes the body it was given.
	if err := req.Body.Close(); err != nil {
		return nil, fmt.Errorf("%s %s: close request body: %w", req.Method, req.URL.Redacted(), err)
	}
	req = req.Clone(req.Context())
	req.Body = body
	return req, nil
}

func (g *guard) credentialsSent() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.sent))
	for c := range g.sent {
		out = append(out, c)
	}
	return out
}

// markUnreachable wraps err in ErrUnreachable when it means the server was
// not reached.
func markUnreachable(ctx context.Context, err error) error {
	if unreachable(ctx, err) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}

// unreachable reports whether err, from sending a request, means that the
// server was not reached or did not answer: a DNS failure, a failed dial, a
// timeout, or the connection dropped before any answer. A cancelled context
// is the caller's doing.
func unreachable(ctx context.Context, err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled) {
		return false
	}
	// A registry the outbound guard refuses will not become reachable by
	// waiting: the build fails at once, naming why.
	if errors.Is(err, outbound.ErrRefused) {
		return false
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr),
		errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect"),
		errors.As(err, &netErr) && netErr.Timeout(),
		// Also when go-containerregistry's ping joined it to another
		// error, which errors.As above may have stopped at.
		errors.Is(err, context.DeadlineExceeded),
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
