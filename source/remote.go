package source

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/slipway-build/slipway/outbound"
)

// checkRemote refuses, at fetch time, a remote registration would have
// refused: a repository stored before registration checked clone URLs, or
// a record changed behind the API's back, must not make go-git read local
// files (file://, paths), run commands (ext::) or use git://. Where the
// host points is checked when it is dialled (package outbound).
func checkRemote(raw string) error {
	if raw == "" {
		return errors.New("the repository has no clone_url: register it with one")
	}
	if _, err := outbound.Remote(raw); err != nil {
		return fmt.Errorf("refused to fetch from %s: %w", redact(raw), err)
	}
	return nil
}

// redact leaves out a URL's user part: a token is often given as the
// user name, which url.URL.Redacted would show.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		u.User = nil
		return u.String()
	}
	return "(a remote that is not a URL)"
}
