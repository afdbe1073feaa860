package webhook

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
)

// The vector from GitHub's "Validating webhook deliveries" documentation.
const (
	docSecret = "It's a Secret to Everybody"
	docBody   = "Hello, World!"
	docSig    = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func TestSignHMACMatchesGitHubVector(t *testing.T) {
	if got := SignHMAC([]byte(docBody), docSecret); got != docSig {
		t.Fatalf("SignHMAC = %s, want %s", got, docSig)
	}
}

func TestCheckHMAC(t *testing.T) {
	tests := []struct {
		name, body, secret, sig string
		want                    error
	}{
		{"github vector", docBody, docSecret, docSig, nil},
		{"upper-case hex", docBody, docSecret, "757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17", nil},
		{"empty signature", docBody, docSecret, "", ErrNoSignature},
		{"wrong secret", docBody, "It's a secret to everybody", docSig, ErrBadSignature},
		{"other body", docBody + "\n", docSecret, docSig, ErrBadSignature},
		{"not hex", docBody, docSecret, "not-hex", ErrBadSignature},
		{"odd length hex", docBody, docSecret, docSig[:63], ErrBadSignature},
		{"prefix of the mac", docBody, docSecret, docSig[:32], ErrBadSignature},
		{"mac with extra byte", docBody, docSecret, docSig + "00", ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckHMAC([]byte(tt.body), tt.secret, tt.sig); !errors.Is(err, tt.want) {
				t.Errorf("CheckHMAC = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestBuildID(t *testing.T) {
	base := BuildID("r1", "d1", "refs/heads/main", "abc", 0)
	if base != BuildID("r1", "d1", "refs/heads/main", "abc", 0) {
		t.Fatal("BuildID is not deterministic")
	}
	if len(base) != 20 {
		t.Errorf("BuildID = %q, want 20 hex characters", base)
	}
	// Each input must change the id; the NUL separators keep adjacent
	// fields from running into each other.
	others := map[string]string{
		"repo":     BuildID("r2", "d1", "refs/heads/main", "abc", 0),
		"delivery": BuildID("r1", "d2", "refs/heads/main", "abc", 0),
		"ref":      BuildID("r1", "d1", "refs/heads/dev", "abc", 0),
		"commit":   BuildID("r1", "d1", "refs/heads/main", "abd", 0),
		"rule":     BuildID("r1", "d1", "refs/heads/main", "abc", 1),
		"shifted":  BuildID("r1d", "1", "refs/heads/main", "abc", 0),
	}
	for what, id := range others {
		if id == base {
			t.Errorf("changing the %s does not change the id", what)
		}
	}
}

func TestBuilds(t *testing.T) {
	now := time.Date(2024, 3, 4, 10, 17, 42, 0, time.FixedZone("CET", 3600))
	repo := model.Repo{
		ID: "r1", Provider: "github", FullName: "acme/demo",
		Image: "127.0.0.1:5000/acme/demo",
		Rules: []model.Rule{
			{SourceType: "branch", Source: "main", Tags: []string{"latest"}},
			{SourceType: "tag", Source: "v1.2.0", Tags: []string{"1.2.0"}},
			{SourceType: "branch", Source: "main", Tags: []string{"edge"}, Dockerfile: "edge.Dockerfile", Context: "app"},
		},
	}
	push := Push{Ref: "refs/heads/main", After: "4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5", Pusher: "mona",
		CloneURL: "https://github.com/acme/demo.git"}

	tests := []struct {
		name         string
		repoCloneURL string
		push         Push
		wantRules    []int
		wantTags     [][]string
		wantCloneURL string
	}{
		// main is the default branch, so every rule's build also tags latest.
		{"two rules on main, payload clone url", "", push, []int{0, 2}, [][]string{{"latest"}, {"edge", "latest"}}, "https://github.com/acme/demo.git"},
		{"repo clone url wins", "git@github.com:acme/demo.git", push, []int{0, 2}, [][]string{{"latest"}, {"edge", "latest"}}, "git@github.com:acme/demo.git"},
		{"tag", "", Push{Ref: "refs/tags/v1.2.0", After: "aa", CloneURL: "u"}, []int{1}, [][]string{{"1.2.0"}}, "u"},
		{"no rule", "", Push{Ref: "refs/heads/dev", After: "aa", CloneURL: "u"}, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := repo
			r.CloneURL = tt.repoCloneURL
			got, err := Builds(r, tt.push, "d1", now)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.wantRules) {
				t.Fatalf("got %d builds, want %d: %+v", len(got), len(tt.wantRules), got)
			}
			for i, b := range got {
				idx := tt.wantRules[i]
				rule := repo.Rules[idx]
				if rule.Dockerfile == "" {
					rule.Dockerfile = "Dockerfile"
				}
				if rule.Context == "" {
					rule.Context = "."
				}
				want := model.Build{
					ID: BuildID("r1", "d1", tt.push.Ref, tt.push.After, idx), RepoID: "r1",
					Ref: tt.push.Ref, Commit: tt.push.After, Status: model.StatusQueued,
					Image: "127.0.0.1:5000/acme/demo", Tags: tt.wantTags[i], Rule: rule, Rules: []int{idx},
					CloneURL: tt.wantCloneURL, Pusher: tt.push.Pusher, Trigger: "webhook",
					DeliveryID: "d1", CreatedAt: now.UTC(), Seq: now.UnixNano(),
				}
				if !reflect.DeepEqual(b, want) {
					t.Errorf("build %d =\n %+v\nwant\n %+v", i, b, want)
				}
				if b.CreatedAt.Location() != time.UTC {
					t.Errorf("CreatedAt %v is not UTC", b.CreatedAt)
				}
			}
		})
	}
}
