package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-build/slipway/model"
)

// UserAgent identifies Slipway to receivers.
const UserAgent = "Slipway-Webhooks/1"

// DefaultTimeout bounds one attempt when Sender.Timeout is zero. It is below
// the spec's 15-30 s suggestion because a deploy hook should only acknowledge
// and do its work afterwards; a slow hook is retried anyway.
const DefaultTimeout = 10 * time.Second

// Keep error texts short: they are stored with every attempt and shown in the UI.
const (
	excerptBytes = 200
	drainBytes   = 64 << 10 // more than this is not worth reading just to reuse the connection
)

// Sender makes single delivery attempts. The zero value is ready to use.
type Sender struct {
	Client  *http.Client  // nil: a client that does not follow redirects
	Timeout time.Duration // zero: DefaultTimeout
}

// Send makes one signed POST of body to hook and records the outcome. It
// never returns an error: every failure is part of the Attempt, because the
// caller stores it for the user either way. now is the attempt time, which
// is also signed so a retry gets a fresh timestamp.
func (s Sender) Send(ctx context.Context, hook model.Hook, msgID string, body []byte, now time.Time) model.Attempt {
	start := time.Now()
	code, err := s.post(ctx, hook, msgID, body, now)
	a := model.Attempt{At: now, StatusCode: code, DurationMS: time.Since(start).Milliseconds()}
	if err != nil {
		a.Error = err.Error()
	}
	return a
}

// Succeeded reports whether an attempt delivered the webhook. Per the spec
// only 2xx counts; redirects are failures.
func Succeeded(a model.Attempt) bool {
	return a.Error == "" && a.StatusCode >= 200 && a.StatusCode < 300
}

func (s Sender) post(ctx context.Context, hook model.Hook, msgID string, body []byte, now time.Time) (int, error) {
	// An unsigned hook would let anyone trigger deploys, so refuse to send.
	if hook.Secret == "" {
		return 0, fmt.Errorf("sign webhook: hook %s has no secret", hook.URL)
	}
	sig, err := Sign(hook.Secret, msgID, now, body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", ContentType(hook.Format))
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderID, msgID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)

	resp, err := s.client().Do(req)
	if err != nil {
		return 0, fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
		return resp.StatusCode, nil
	}
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, excerptBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	return resp.StatusCode, statusError(resp.StatusCode, excerpt)
}

func statusError(code int, excerpt []byte) error {
	// The cut may split a UTF-8 sequence; drop the fragment rather than store junk.
	text := strings.TrimSpace(strings.ToValidUTF8(string(excerpt), ""))
	if text == "" {
		return fmt.Errorf("HTTP %d", code)
	}
	return fmt.Errorf("HTTP %d: %s", code, text)
}

func (s Sender) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

func (s Sender) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	// Following a redirect would turn the POST into a body-less GET; the spec
	// says to treat 3xx as failure so the user fixes the URL instead.
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}
