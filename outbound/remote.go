package outbound

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
)

// scpRemote is git's short SSH form, git@host:owner/repo.git.
var scpRemote = regexp.MustCompile(`^([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+):([^/].*)$`)

// Remote reads a Git remote URL the way Slipway accepts one: https, http
// or ssh, or the scp-like git@host:path. Everything git would run or read
// locally (file://, local paths, ext::, fd::) and the unauthenticated
// git:// protocol are refused, as are http(s) URLs that carry credentials
// (the repository's token is sent separately) and ssh URLs with a
// password. Remote judges the form only; where the host points is for a
// Guard (and plain http for Plain).
func Remote(raw string) (*url.URL, error) {
	if m := scpRemote.FindStringSubmatch(raw); m != nil {
		return &url.URL{Scheme: "ssh", User: url.User(m[1]), Host: m[2], Path: m[3]}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	switch u.Scheme {
	case "https", "http", "ssh":
	case "":
		return nil, errors.New("a local path is not a remote; want an https or ssh URL")
	default:
		return nil, fmt.Errorf("scheme %q is not accepted; want https or ssh (http only to hosts SLIPWAY_OUTBOUND_ALLOW_CIDRS opens)", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("the URL names no host")
	}
	if err := noCredentials(u); err != nil {
		return nil, fmt.Errorf("%w; give them as token (or ssh_key)", err)
	}
	return u, nil
}

// noCredentials refuses a URL with a password, or for http(s) any user
// part: secrets in URLs end up in logs, build records and errors.
func noCredentials(u *url.URL) error {
	if u.User == nil {
		return nil
	}
	if _, hasPassword := u.User.Password(); hasPassword || u.Scheme != "ssh" {
		return errors.New("the URL must not carry credentials")
	}
	return nil
}

// HTTPURL reads an http(s) URL Slipway will call (an API root, a deploy
// hook): absolute, with a host and without credentials.
func HTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("want an http(s) URL")
	}
	if err := noCredentials(u); err != nil {
		return nil, err
	}
	return u, nil
}
