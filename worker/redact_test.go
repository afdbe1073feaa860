package worker

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/forge"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/redact"
)

func TestAFailedBuildsErrorAndStatusCarryNoCredentials(t *testing.T) {
	b := model.Build{Status: model.StatusRunning, Commit: strings.Repeat("a", 40)}
	outcome{err: errors.New(`clone: Get "https://x-access-token:ghs_leak@git.example/acme/demo.git/info/refs?token=t2": EOF`)}.apply(&b)
	const want = `clone: Get "https://git.example/acme/demo.git/info/refs?token=REDACTED": EOF`
	if b.Error != want {
		t.Fatalf("build error\n got %q\nwant %q", b.Error, want)
	}
	b.Error = "clone https://u:ghs_leak@git.example/x failed" // as an older Slipway stored it
	st := (&Reporter{PublicURL: "https://slipway.example"}).status(b, forge.Failure)
	if st.Description != "Failed: clone https://git.example/x failed" {
		t.Fatalf("status description %q", st.Description)
	}
}

func TestBuildLogSecretsAreTheRepositorysAndTheWorkers(t *testing.T) {
	w := &Worker{Secrets: []string{"registry-pass"}}
	repo := model.Repo{Token: "tok", WebhookSecret: "hook-secret", Hooks: []model.Hook{{Secret: "whsec_a"}, {Secret: "whsec_b"}}}
	got := strings.Join(w.secrets(repo), ",")
	if want := "tok,hook-secret,registry-pass,whsec_a,whsec_b"; got != want {
		t.Fatalf("secrets %s, want %s", got, want)
	}
}

func TestACappedLogPassesLateSecretsToTheRedactor(t *testing.T) {
	var out bytes.Buffer
	rw := redact.NewWriter(nopCloser{&out})
	capped := newCappedLog(rw, 1<<20, 0)
	capped.Hide("ghs_installation")
	_, _ = capped.Write([]byte("token ghs_installation\n"))
	_ = capped.Close()
	if out.String() != "token ***\n" {
		t.Fatalf("log %q", out.String())
	}
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }
