package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/deploy"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// distinct is a secret value no other text in the run can contain by chance.
func distinct(prefix string) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// TestNoSecretInTheClear registers repositories with every kind of secret
// Slipway keeps, builds them, deletes one, and then looks for the secret
// values everywhere Slipway writes or sends: the data dir's raw bytes (NATS
// and registry files, BuildKit's state, checkouts), the server log, the
// build logs, the API's answers, the deploy payloads and the commit
// statuses. None may hold one.
func TestNoSecretInTheClear(t *testing.T) {
	secrets := map[string]string{
		"webhook secret (https repo)": distinct("whs-https-"),
		"webhook secret (ssh repo)":   distinct("whs-ssh-"),
		"git token":                   distinct("ghp_"),
		"registry password":           distinct("regpass-"),
	}
	hookSecret := deploy.GenerateSecret()
	secrets["deploy hook secret"] = strings.TrimPrefix(hookSecret, "whsec_")

	recv := rig.StartReceiver(t, 0)
	host := rig.StartHostAPI(t)
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartPrivateGitServer(t, "x-access-token", secrets["git token"])
	src := git.NewRepo(t, "sealed")
	commit := src.Commit("sealed", map[string]string{"Dockerfile": dockerfile(s.RegistryAddr, "echo sealed > /built.txt")})
	src.Push("main")
	sshd := rig.StartSSHGitServer(t, git.Root)
	// The key's base64 body: any line of it would give the key away.
	keyLines := strings.Split(strings.TrimSpace(sshd.DeployKey), "\n")
	secrets["ssh key"] = keyLines[len(keyLines)/2]

	var answers bytes.Buffer // every API answer of the test
	record := func(v any) { fmt.Fprintf(&answers, "%+v\n", v) }

	rule := []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}}}
	var https, ssh model.Repo
	if code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: "acme/sealed", CloneURL: src.CloneURL, Token: secrets["git token"],
		WebhookSecret: secrets["webhook secret (https repo)"], Image: s.RegistryAddr + "/acme/sealed", APIURL: host.URL + "/",
		Rules: rule, Hooks: []model.Hook{{URL: recv.URL + "/deploy", Secret: hookSecret}},
	}, &https); code != http.StatusCreated {
		t.Fatalf("register https repo: HTTP %d %+v", code, https)
	}
	if code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: "acme/sealedssh", CloneURL: sshd.URL("sealed"), SSHKey: sshd.DeployKey, KnownHosts: sshd.KnownHosts,
		WebhookSecret: secrets["webhook secret (ssh repo)"], Image: s.RegistryAddr + "/acme/sealedssh", Rules: rule,
	}, &ssh); code != http.StatusCreated {
		t.Fatalf("register ssh repo: HTTP %d %+v", code, ssh)
	}
	record(https)
	record(ssh)
	var org map[string]any
	if code := s.Do("PUT", "/api/v1/orgs/acme/registries/registry.example.com", map[string]string{
		"username": "acme-bot", "password": secrets["registry password"],
	}, &org); code != http.StatusOK {
		t.Fatalf("store a registry login: HTTP %d %+v", code, org)
	}
	record(org)

	var builds []model.Build
	for name, repo := range map[string]model.Repo{"https": https, "ssh": ssh} {
		secret := secrets["webhook secret (https repo)"]
		if name == "ssh" {
			secret = secrets["webhook secret (ssh repo)"]
		}
		push := rig.GitHubPush{Repo: repo.FullName, Ref: "refs/heads/main", After: commit, Message: "sealed"}
		r := rig.SendGitHub(t, s.URL(), "push", "sealed-"+name, secret, push.Payload())
		if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
			t.Fatalf("push to %s: %+v", repo.FullName, r)
		}
		b := s.WaitBuild(r.Builds[0], 5*time.Minute)
		if b.Status != model.StatusSucceeded {
			t.Fatalf("build of %s: %s (%s)\n%s", repo.FullName, b.Status, b.Error, s.Log(b.ID))
		}
		builds = append(builds, b)
	}
	recv.WaitCalls(t, 1, time.Minute)
	waitStatuses(t, host, commit, 1) // the ssh repository has no API token: no statuses

	if code := s.Do("DELETE", "/api/v1/repos/"+ssh.ID, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete the ssh repo: HTTP %d", code)
	}
	var list []model.Repo
	s.Do("GET", "/api/v1/repos", nil, &list)
	record(list)
	for _, b := range builds {
		var got model.Build
		s.Do("GET", "/api/v1/builds/"+b.ID, nil, &got)
		record(got)
		answers.WriteString(s.Log(b.ID))
	}
	s.Stop() // flush NATS's files before reading them

	places := map[string][]byte{"API answers and build logs": answers.Bytes()}
	if raw, err := os.ReadFile(s.LogPath); err == nil {
		places["server log"] = raw
	} else {
		t.Fatal(err)
	}
	for i, c := range recv.Calls() {
		places[fmt.Sprintf("deploy payload %d", i)] = c.Body
	}
	for i, r := range host.Requests() {
		places[fmt.Sprintf("host API request %d (%s %s)", i, r.Method, r.Path)] = []byte(fmt.Sprint(r.Body))
	}
	for what, raw := range places {
		for name, secret := range secrets {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("the %s is in the %s", name, what)
			}
		}
	}
	files := 0
	err := filepath.WalkDir(s.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // sockets, mounts and files removed while walking
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		files++
		for name, secret := range secrets {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("the %s is in %s", name, path)
			}
		}
		return nil
	})
	if err != nil || files < 10 {
		t.Fatalf("read %d files of the data dir: %v", files, err)
	}
}

// waitStatuses waits until the host got n final commit statuses for commit.
func waitStatuses(t *testing.T, host *rig.HostAPI, commit string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		final := 0
		for _, st := range host.States(commit) {
			if st == "success" {
				final++
			}
		}
		if final >= n {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("statuses for %s: %v, want %d successes", commit, host.States(commit), n)
}
