package github

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v93/github"

	"github.com/slipway-build/slipway/forge"
)

// APIError is an answer from GitHub outside 2xx. Its text names the
// endpoint and the HTTP status and never holds the token. A 401 or 403
// (other than a rate limit) unwraps to forge.ErrUnauthorized.
type APIError struct {
	Method     string // e.g. POST
	Endpoint   string // path below the API root, e.g. /repos/acme/app/hooks
	StatusCode int
	// Message is GitHub's own message, with the token removed.
	Message string
	// RateLimited is a 403 or 429 that GitHub marked as a (primary or
	// secondary) rate limit: the credentials were fine.
	RateLimited bool
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "github: %s %s: HTTP %d", e.Method, e.Endpoint, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.RateLimited {
		b.WriteString(" (rate limited)")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Unwrap returns forge.ErrUnauthorized for a refused token.
func (e *APIError) Unwrap() error {
	if (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden) && !e.RateLimited {
		return forge.ErrUnauthorized
	}
	return nil
}

// maxMessage bounds the GitHub message kept in an error.
const maxMessage = 300

// redact removes every copy of token from s.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[REDACTED]")
}

func clip(s string) string {
	if r := []rune(s); len(r) > maxMessage {
		return string(r[:maxMessage]) + "…"
	}
	return s
}

// apiError turns what go-github returned for one call into Slipway's error,
// or nil on success.
func apiError(method, endpoint string, resp *gh.Response, err error, token string) error {
	if err == nil {
		return nil
	}
	status := 0
	if resp != nil && resp.Response != nil {
		status = resp.StatusCode
	}
	var (
		er  *gh.ErrorResponse
		rl  *gh.RateLimitError
		arl *gh.AbuseRateLimitError
	)
	e := &APIError{Method: method, Endpoint: endpoint, StatusCode: status}
	switch {
	case errors.As(err, &rl):
		e.RateLimited = true
		e.Message = rl.Message
		if rl.Response != nil {
			e.StatusCode = rl.Response.StatusCode
		}
	case errors.As(err, &arl):
		e.RateLimited = true
		e.Message = arl.Message
		if arl.Response != nil {
			e.StatusCode = arl.Response.StatusCode
		}
	case errors.As(err, &er):
		e.Message = describeErrorResponse(er)
		if er.Response != nil {
			e.StatusCode = er.Response.StatusCode
		}
	case status >= 300:
		// Some other non-2xx answer go-github classified (a redirect, 2FA).
	default:
		// No answer, or a 2xx that could not be read: keep the cause
		// (context deadline, connection refused) for errors.Is.
		what := "request failed"
		if status != 0 {
			what = fmt.Sprintf("HTTP %d, reading the answer", status)
		}
		return wrapRedacted(fmt.Sprintf("github: %s %s: %s", method, endpoint, what), err, token)
	}
	e.Message = clip(redact(e.Message, token))
	return e
}

// describeErrorResponse joins GitHub's message with its per-field errors,
// e.g. "Validation Failed (Hook: Hook already exists on this repository)".
func describeErrorResponse(er *gh.ErrorResponse) string {
	msg := er.Message
	var details []string
	for _, fe := range er.Errors {
		switch {
		case fe.Message != "":
			details = append(details, fe.Message)
		case fe.Code != "":
			details = append(details, strings.TrimSpace(fe.Resource+" "+fe.Field+" "+fe.Code))
		}
	}
	if len(details) > 0 {
		msg += " (" + strings.Join(details, "; ") + ")"
	}
	return msg
}

// wrapRedacted prefixes err, keeping it for errors.Is/As unless its text
// holds the token, in which case only the redacted text is kept.
func wrapRedacted(prefix string, err error, token string) error {
	if token != "" && strings.Contains(err.Error(), token) {
		return errors.New(prefix + ": " + redact(err.Error(), token))
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
