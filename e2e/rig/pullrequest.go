package rig

import (
	"fmt"
	"testing"
)

// PullRequest is a pull (merge) request event to send, as each host words
// it.
type PullRequest struct {
	Repo   string // the base repository's full name
	Number int
	Action string // opened, updated, closed or merged (webhook.PR*)
	Head   string // head commit
	// HeadRef is the head branch; Base the branch it merges into.
	HeadRef string
	Base    string
	// Fork puts the head branch in another repository (ForkRepo).
	Fork     bool
	ForkRepo string
}

// prSenders send a pull request event to one host's endpoint; each host's
// file adds its own.
var prSenders = map[string]func(t testing.TB, baseURL string, pr PullRequest, delivery, secret string) HookResponse{}

// SendPullRequest sends pr to Slipway at baseURL as host's webhook
// (github, gitlab, gitea, bitbucket, bitbucket-server).
func SendPullRequest(t testing.TB, baseURL, host string, pr PullRequest, delivery, secret string) HookResponse {
	t.Helper()
	send, ok := prSenders[host]
	if !ok {
		t.Fatalf("no pull request events for host %q in the rig", host)
	}
	return send(t, baseURL, pr, delivery, secret)
}

// prSender adds a host's sender; a var initializer in each host's file.
func prSender(host string, send func(t testing.TB, baseURL string, pr PullRequest, delivery, secret string) HookResponse) bool {
	if _, dup := prSenders[host]; dup {
		panic(fmt.Sprintf("two pull request senders for %s", host))
	}
	prSenders[host] = send
	return true
}
