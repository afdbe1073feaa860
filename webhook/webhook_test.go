package webhook

import (
	"errors"
	"net/http"
	"testing"
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

func TestCheckPrefixedHMAC(t *testing.T) {
	tests := []struct {
		name, value string
		want        error
	}{
		{"github vector", "sha256=" + docSig, nil},
		{"missing", "", ErrNoSignature},
		{"hex without prefix", docSig, ErrBadSignature},
		{"sha1 prefix", "sha1=" + docSig, ErrBadSignature},
		{"prefix only", "sha256=", ErrNoSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.value != "" {
				h.Set("X-Sig", tt.value)
			}
			if err := CheckPrefixedHMAC(h, "X-Sig", []byte(docBody), docSecret); !errors.Is(err, tt.want) {
				t.Errorf("CheckPrefixedHMAC(%q) = %v, want %v", tt.value, err, tt.want)
			}
		})
	}
}

func TestCheckPullRequest(t *testing.T) {
	ok := PullRequest{Action: PROpened, Number: 7, Head: "4f1e2d3c5b6a79880a1b2c3d4e5f60718293a4b5", FetchRef: "refs/pull/7/head"}
	tests := []struct {
		name    string
		edit    func(*PullRequest)
		wantErr bool
	}{
		{"github", func(*PullRequest) {}, false},
		{"bitbucket cloud short hash, no ref", func(p *PullRequest) { p.Head, p.FetchRef = "350e6d2b16c8", "" }, false},
		{"ignored action is not checked", func(p *PullRequest) { p.Action, p.Number, p.Head = "", 0, "" }, false},
		{"no number", func(p *PullRequest) { p.Number = 0 }, true},
		{"too short", func(p *PullRequest) { p.Head = "4f1e2d" }, true},
		{"too long", func(p *PullRequest) { p.Head += "0" }, true},
		{"not hex", func(p *PullRequest) { p.Head = "--upload-pack=x" }, true},
		{"refspec", func(p *PullRequest) { p.FetchRef = "+refs/pull/7/head:refs/heads/main" }, true},
		{"dots", func(p *PullRequest) { p.FetchRef = "refs/heads/../../x" }, true},
		{"space", func(p *PullRequest) { p.FetchRef = "refs/heads/a b" }, true},
		{"not full", func(p *PullRequest) { p.FetchRef = "feature" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := ok
			tt.edit(&pr)
			if err := CheckPullRequest(&pr); (err != nil) != tt.wantErr {
				t.Errorf("CheckPullRequest(%+v) = %v, want error %v", pr, err, tt.wantErr)
			}
		})
	}
}
