package api

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/outbound"
	"github.com/slipway-build/slipway/redact"
)

// targetTimeout bounds the name lookups of one registration.
const targetTimeout = 10 * time.Second

func (s *Server) outbound() *outbound.Guard {
	if s.Outbound != nil {
		return s.Outbound
	}
	return &outbound.Guard{}
}

func (s *Server) registryOutbound() *outbound.Guard {
	if s.RegistryOutbound != nil {
		return s.RegistryOutbound
	}
	return s.outbound()
}

// checkTargets refuses a repository whose URLs point where Slipway must not
// connect: a host that resolves only to loopback, private, link-local or
// metadata addresses the allow list does not open. The dial is guarded as
// well; this answers 400 at once instead of failing builds later. A name
// that does not resolve now is not refused: it may resolve later, and is
// checked again when dialled.
func (s *Server) checkTargets(ctx context.Context, r model.Repo) error {
	ctx, cancel := context.WithTimeout(ctx, targetTimeout)
	defer cancel()
	g := s.outbound()
	if r.APIURL != "" {
		if err := checkURL(ctx, g, "api_url", r.APIURL); err != nil {
			return err
		}
	}
	for i, h := range r.Hooks {
		if err := checkURL(ctx, g, fmt.Sprintf("hooks[%d].url", i), h.URL); err != nil {
			return err
		}
	}
	if err := s.checkImage(ctx, r.Image); err != nil {
		return err
	}
	if r.CloneURL != "" {
		return s.checkCloneURL(ctx, r.CloneURL)
	}
	return nil
}

// checkAPIURL checks api_url before the host's API is first asked.
func (s *Server) checkAPIURL(ctx context.Context, raw string) error {
	if raw == "" {
		return nil
	}
	if _, err := outbound.HTTPURL(raw); err != nil {
		return badf("api_url: %v, got %q", err, redact.Text(raw))
	}
	ctx, cancel := context.WithTimeout(ctx, targetTimeout)
	defer cancel()
	return checkURL(ctx, s.outbound(), "api_url", raw)
}

func checkURL(ctx context.Context, g *outbound.Guard, field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return badf("%s: not a URL", field)
	}
	return refusal(field, u.Redacted(), g.CheckURL(ctx, u))
}

// refusal is a 400 naming field when err is a refusal; a failed lookup is
// not one.
func refusal(field, shown string, err error) error {
	if err == nil || !errors.Is(err, outbound.ErrRefused) {
		return nil
	}
	return badf("%s: %s: %v", field, shown, err)
}

// checkImage checks the image's registry host, which Slipway's registry
// client talks to (BuildKit pushes; Slipway tags and pings).
func (s *Server) checkImage(ctx context.Context, image string) error {
	host, _, _ := strings.Cut(image, "/")
	u := &url.URL{Scheme: "https", Host: host}
	return refusal("image", "registry host "+host, s.registryOutbound().CheckURL(ctx, u))
}

// checkCloneURL checks a clone URL's form and where it points; plain http
// only where the allow list opens the address, since the token would
// travel in clear.
func (s *Server) checkCloneURL(ctx context.Context, raw string) error {
	u, err := outbound.Remote(raw)
	if err != nil {
		return badf("clone_url: %v", err)
	}
	g := s.outbound()
	if u.Scheme == "http" {
		g = g.Plain()
	}
	return refusal("clone_url", u.Redacted(), g.CheckURL(ctx, u))
}

// cloneURLFromHost asks the repository's host API for its clone URL, for a
// registration that gives none: the clone URL always comes from the
// registered repository, never from a webhook's payload.
func (s *Server) cloneURLFromHost(ctx context.Context, r model.Repo) (string, error) {
	host, err := s.host(r.Provider)
	if err != nil {
		return "", err
	}
	conn, err := s.conn(ctx, r)
	if err != nil {
		return "", badf("clone_url: required, and the %s API cannot be asked for it: %v", r.Provider, err)
	}
	info, err := host.API.Repo(ctx, conn)
	if err != nil {
		return "", badf("clone_url: required, and the %s API did not give it: %v", r.Provider, err)
	}
	if info.CloneURL == "" {
		return "", badf("clone_url: required, and the %s API answered no clone URL for %s", r.Provider, r.FullName)
	}
	return info.CloneURL, nil
}
