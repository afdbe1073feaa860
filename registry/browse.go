package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Browser reads what a registry holds: its repositories and their tags,
// for the API's registry browser. Like Client, it reaches loopback hosts
// over plain HTTP and every other host over HTTPS only.
type Browser struct {
	// Host is the registry (host[:port]).
	Host string
	// Transport sends the requests; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Login gives the credentials of each call: on Slipway's registry a
	// pass that lists the catalog and pulls (regauth.Server.BrowsePass).
	// nil, or two empty strings, is anonymous.
	Login func() (user, secret string)
}

// Tag is one tag of a repository and the digest of what it names.
type Tag struct {
	Name   string
	Digest string
}

// Catalog lists the registry's repositories (paths such as acme/app),
// sorted, every page of them.
func (b Browser) Catalog(ctx context.Context) ([]string, error) {
	reg, err := name.NewRegistry(b.Host, nameOptions(b.Host)...)
	if err != nil {
		return nil, fmt.Errorf("registry: catalog: invalid host %q: %w", b.Host, err)
	}
	s := b.session()
	repos, err := remote.Catalog(ctx, reg, remote.WithContext(ctx), remote.WithAuth(s.authenticator()),
		remote.WithTransport(transport.NewUserAgent(s.guard, userAgent)), remote.WithPageSize(CatalogPage))
	if err != nil {
		return nil, s.scrub(fmt.Errorf("registry: catalog of %s: %w", b.Host, s.explainRead(ctx, err)))
	}
	sort.Strings(repos)
	return repos, nil
}

// TagNames lists a repository's tags, sorted; a repository the registry
// does not know has none.
func (b Browser) TagNames(ctx context.Context, repository string) ([]string, error) {
	var tags []string
	err := b.read(ctx, repository, func(repo name.Repository, opts []remote.Option) error {
		var err error
		tags, err = remote.List(repo, opts...)
		return err
	})
	sort.Strings(tags)
	return tags, err
}

// Tags lists a repository's tags, sorted, each with the digest of the
// manifest or index it names; a repository the registry does not know
// has none. A tag deleted while they are read is left out.
func (b Browser) Tags(ctx context.Context, repository string) ([]Tag, error) {
	var out []Tag
	err := b.read(ctx, repository, func(repo name.Repository, opts []remote.Option) error {
		names, err := remote.List(repo, opts...)
		if err != nil {
			return err
		}
		sort.Strings(names)
		for _, t := range names {
			desc, err := remote.Head(repo.Tag(t), opts...)
			if notFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("tag %s: %w", t, err)
			}
			out = append(out, Tag{Name: t, Digest: desc.Digest.String()})
		}
		return nil
	})
	return out, err
}

// read runs f on one transport scoped to pull repository: one token for
// all of f's requests.
func (b Browser) read(ctx context.Context, repository string, f func(name.Repository, []remote.Option) error) error {
	repo, err := name.NewRepository(b.Host+"/"+repository, nameOptions(b.Host)...)
	if err != nil {
		return fmt.Errorf("registry: invalid repository %q: %w", repository, err)
	}
	s := b.session()
	rt, err := transport.NewWithContext(ctx, repo.Registry, s.authenticator(),
		transport.NewUserAgent(s.guard, userAgent), []string{repo.Scope(transport.PullScope)})
	if err == nil {
		err = f(repo, []remote.Option{remote.WithContext(ctx), remote.WithTransport(rt)})
	}
	if unknownRepository(err) {
		return nil
	}
	if err != nil {
		return s.scrub(fmt.Errorf("registry: read %s/%s: %w", b.Host, repository, s.explainRead(ctx, err)))
	}
	return nil
}

func (b Browser) session() *session {
	s := &session{host: b.Host, guard: Client{Transport: b.Transport}.newGuard()}
	if b.Login != nil {
		s.username, s.secret = b.Login()
	}
	return s
}

// explainRead marks network failures with ErrUnreachable and says what a
// refused login means.
func (s *session) explainRead(ctx context.Context, err error) error {
	if err = markUnreachable(ctx, err); errors.Is(err, ErrUnreachable) {
		return err
	}
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("registry %s refused to be read with these credentials: %w", s.host, err)
	}
	return err
}

// unknownRepository reports a registry's answer that no such repository
// exists: nothing was pushed there yet.
func unknownRepository(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		return false
	}
	for _, d := range terr.Errors {
		if d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return len(terr.Errors) == 0
}
