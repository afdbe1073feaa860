// Package bitbucket is the folder of Bitbucket Cloud and Bitbucket Data
// Center. Webhook reads both products' webhooks on one endpoint: Cloud's
// repo:push and Data Center's repo:refs_changed and diagnostics:ping, both
// signed with X-Hub-Signature: sha256=<hex>. The two share an endpoint but
// not their repositories: Cloud repositories are registered under the
// provider "bitbucket" (CloudName), Data Center ones under
// "bitbucket-server" (ServerName).
//
// Cloud and Server implement forge.Forge for Bitbucket Cloud (REST API 2.0)
// and Bitbucket Data Center (REST API under /rest).
//
// Both take Conn.Token as either "user:secret" — sent with HTTP Basic auth:
// a Cloud app password, a Cloud API token with the account's email as the
// user, or a Data Center password — or a bare token sent as a Bearer token:
// a Cloud repository/workspace access token or a Data Center HTTP access
// token.
package bitbucket

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"

	"github.com/slipway-build/slipway/forge"
)

// authFor returns how to authenticate with token, and the strings that
// must never appear in an error.
func authFor(token string) (func(http.Header), []string) {
	if token == "" {
		return func(http.Header) {}, nil
	}
	if _, pass, ok := strings.Cut(token, ":"); ok {
		basic := base64.StdEncoding.EncodeToString([]byte(token))
		return func(h http.Header) {
			h.Set("Authorization", "Basic "+basic)
		}, []string{token, pass, basic}
	}
	return func(h http.Header) {
		h.Set("Authorization", "Bearer "+token)
	}, []string{token}
}

// shortKey returns key if it has at most limit characters, and otherwise
// its first characters, "-" and 12 hex digits of its SHA-256: the same key
// always gives the same short key, and two long keys sharing a prefix still
// differ.
func shortKey(key string, limit int) string {
	r := []rune(key)
	if len(r) <= limit {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return string(r[:limit-13]) + "-" + hex.EncodeToString(sum[:])[:12]
}

// clip shortens s to at most n characters.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// cleanCloneURL drops the user name Bitbucket puts in clone links
// ("https://jdoe@bitbucket.org/acme/demo.git").
func cleanCloneURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

type buildStatus struct {
	Key         string `json:"key"`
	State       string `json:"state"`
	Name        string `json:"name"`
	URL         string `json:"url"`
	Description string `json:"description"`
}

// newBuildStatus is the body both products take for a build status: the
// key shortened to keyLimit characters, the whole key as its name.
func newBuildStatus(s forge.Status, state, key string, keyLimit int) buildStatus {
	return buildStatus{
		Key: shortKey(key, keyLimit), State: state, Name: clip(key, 255), URL: s.URL, Description: forge.Describe(s.Description),
	}
}
