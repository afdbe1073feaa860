// Package webhook receives push events from Git hosts, verifies them and turns
// them into queued builds. Each host's Provider lives in its folder under
// forge/, next to its API client; this package imports none of them, so
// they can import its Event, Push and signature helpers.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Kinds of events a provider reports.
const (
	KindPush  = "push"
	KindPing  = "ping"
	KindOther = "other"
)

// Event is a host's webhook request, parsed but not yet verified.
type Event struct {
	Kind    string
	RawKind string // the host's own event name, for logs
	// Provider is the provider the repository is registered under, for
	// adapters that serve more than one host dialect on one endpoint
	// (Bitbucket Cloud and Data Center); empty means the adapter's Name().
	Provider string
	// DeliveryID is the host's id of this delivery, the same when the host
	// redelivers it; builds are deduplicated on it.
	DeliveryID string
	// Repo is the repository's full name, e.g. "acme/demo". A ping or an
	// ignored event may leave it empty when the host does not say: there is
	// then nothing to verify and nothing to build.
	Repo   string
	Pushes []Push
	// PullRequest is set for a pull (merge) request event (Kind
	// KindPullRequest).
	PullRequest *PullRequest
	// InstallationID is the GitHub App installation that sent the event,
	// whose token clones and reports for a repository that names none.
	InstallationID int64
}

// KindPullRequest is the Kind of a pull or merge request event.
const KindPullRequest = "pull_request"

// Pull request actions, as every host's events are mapped to them.
const (
	PROpened  = "opened"  // opened, reopened, or taken out of draft
	PRUpdated = "updated" // new commits on the head branch
	PRClosed  = "closed"  // closed or declined without merging
	PRMerged  = "merged"
)

// PullRequest is a pull (merge) request event.
type PullRequest struct {
	Action string // one of the PR constants; other actions are ignored
	Number int
	Head   string // the head commit
	// HeadRef is the head branch; Base the branch it merges into.
	HeadRef string
	Base    string
	// Fork says the head branch lives in another repository.
	Fork bool
	// FetchRef is the ref of the base repository that holds the head
	// commit, where the host keeps one (refs/pull/7/head on GitHub and
	// Gitea, refs/merge-requests/7/head on GitLab,
	// refs/pull-requests/7/from on Bitbucket Data Center); empty where it
	// keeps none (Bitbucket Cloud).
	FetchRef string
	Title    string
	Author   string
	// HeadCloneURL is the payload's clone URL of the head repository,
	// for logs only: builds clone the registered repository.
	HeadCloneURL  string
	DefaultBranch string
}

// Push is one ref update.
type Push struct {
	Ref     string // full ref, e.g. refs/heads/main
	Before  string
	After   string // the commit the ref now names; annotated tags are peeled
	Deleted bool
	Pusher  string
	Message string // head commit message
	// CloneURL is the payload's clone URL, for the adapters' tests and
	// logs only: builds clone from the registered repository's URL.
	CloneURL string
	// DefaultBranch is the repository's default branch as the host reports it.
	DefaultBranch string
	// Files are the paths the push changed; FilesComplete says the host
	// listed all of them (not for new branches, forced or huge pushes).
	Files         []string
	FilesComplete bool
}

// Provider is one Git host's webhook dialect.
type Provider interface {
	Name() string
	// MaxBody is the largest body the host sends; bigger requests get 413.
	MaxBody() int64
	// Peek reads what the signature check needs, cheaply: the event's
	// kind, delivery id, provider and repository, without its pushes. It
	// is called before Verify because the secret belongs to the repository
	// the payload names, and it must name the same one Parse does.
	Peek(h http.Header, body []byte) (Event, error)
	// Parse reads the whole event, once Verify has passed.
	Parse(h http.Header, body []byte) (Event, error)
	// Verify checks the request was signed with secret.
	Verify(h http.Header, body []byte, secret string) error
}

// CheckPushes makes sure a parsed event's pushes name a full ref and a
// commit id (40 hex digits; all zeros for a deleted ref), so nothing a host
// sends in those fields reaches a clone, a tag or a log as anything else.
func CheckPushes(pushes []Push) error {
	for i, p := range pushes {
		if !strings.HasPrefix(p.Ref, "refs/") || len(p.Ref) == len("refs/") {
			return fmt.Errorf("push %d: ref %q is not a full ref name", i, p.Ref)
		}
		if !isCommit(p.After) {
			return fmt.Errorf("push %d to %s: %q is not a commit id", i, p.Ref, p.After)
		}
		if p.Before != "" && !isCommit(p.Before) {
			return fmt.Errorf("push %d to %s: before %q is not a commit id", i, p.Ref, p.Before)
		}
	}
	return nil
}

// CheckPullRequest makes sure a parsed pull request that will be acted on
// names a positive number, a commit id (7 to 40 hex digits: Bitbucket Cloud
// sends abbreviated ones) and a fetch ref git takes as one ref, so nothing a
// host sends in those fields reaches a fetch as an option or a refspec. An
// ignored action (Action "") is not checked: nothing reads it.
func CheckPullRequest(pr *PullRequest) error {
	if pr == nil || pr.Action == "" {
		return nil
	}
	if pr.Number <= 0 {
		return fmt.Errorf("pull request number %d", pr.Number)
	}
	if len(pr.Head) < 7 || !isHex(pr.Head) {
		return fmt.Errorf("pull request %d: head %q is not a commit id", pr.Number, pr.Head)
	}
	if pr.FetchRef != "" && !isPlainRef(pr.FetchRef) {
		return fmt.Errorf("pull request %d: fetch ref %q is not a plain full ref", pr.Number, pr.FetchRef)
	}
	return nil
}

// isPlainRef says s is a full ref without what git reads as more than a
// name: whitespace, control characters, a refspec's ':' or '+', '..',
// wildcards, '@{' and backslashes.
func isPlainRef(s string) bool {
	if !strings.HasPrefix(s, "refs/") || len(s) == len("refs/") || strings.Contains(s, "..") ||
		strings.Contains(s, "@{") || strings.HasSuffix(s, "/") || strings.Contains(s, "//") {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f || strings.ContainsRune(":+~^?*[\\", c) {
			return false
		}
	}
	return true
}

func isCommit(s string) bool {
	return len(s) == 40 && isHex(s)
}

func isHex(s string) bool {
	if len(s) > 40 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// UniqueFiles joins lists of paths in order, dropping repeats.
func UniqueFiles(lists ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, list := range lists {
		for _, f := range list {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// Verification errors; the handler answers 401 for them.
var (
	ErrNoSignature  = errors.New("request is not signed")
	ErrBadSignature = errors.New("signature does not match the repository's webhook secret")
)

// CheckHMAC compares a hex HMAC-SHA256 of body under secret with sigHex in
// constant time.
func CheckHMAC(body []byte, secret, sigHex string) error {
	if sigHex == "" {
		return ErrNoSignature
	}
	got, err := hex.DecodeString(sigHex)
	if err != nil {
		return ErrBadSignature
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// CheckPrefixedHMAC checks the header name carrying GitHub's form of
// signature, "sha256=<hex HMAC-SHA256 of the body>", which Bitbucket copied
// under another header name.
func CheckPrefixedHMAC(h http.Header, name string, body []byte, secret string) error {
	sig := h.Get(name)
	if sig == "" {
		return ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return ErrBadSignature
	}
	return CheckHMAC(body, secret, hexSig)
}

// SignHMAC returns the hex HMAC-SHA256 of body, as hosts send it.
func SignHMAC(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
