package e2e

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// registerUncached registers fullName building main as latest, without a
// registry cache: nothing but the image's own tag is pushed.
func registerUncached(t *testing.T, s *rig.Slipway, fullName, cloneURL string) model.Repo {
	t.Helper()
	var repo model.Repo
	off := false
	code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: fullName, CloneURL: cloneURL, WebhookSecret: webhookSecret,
		Image: s.RegistryAddr + "/" + fullName,
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}, Dockerfile: "Dockerfile", Context: ".", Cache: &off}},
	}, &repo)
	if code != http.StatusCreated || repo.ID == "" {
		t.Fatalf("register %s: HTTP %d %+v", fullName, code, repo)
	}
	return repo
}

// buildNewRepo commits files to a new repository name on git, pushes main and
// sends GitHub's webhook for it; it answers the build's id.
func buildNewRepo(t *testing.T, s *rig.Slipway, git *rig.GitServer, fullName string, files map[string]string) string {
	t.Helper()
	_, name, _ := strings.Cut(fullName, "/")
	src := git.NewRepo(t, name)
	commit := src.Commit("build "+name, files)
	src.Push("main")
	registerUncached(t, s, fullName, src.CloneURL)
	body := rig.GitHubPush{Repo: fullName, Ref: "refs/heads/main", After: commit, Message: "build " + name}.Payload()
	r := rig.SendGitHub(t, s.URL(), "push", "delivery-"+name, webhookSecret, body)
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push %s: %+v", fullName, r)
	}
	return r.Builds[0]
}

// TestLiveLogAndRegistryBrowser follows a real build's log through
// api.Client.FollowLog from while it is queued to its end: the output of
// its RUN step arrives while the build is still running. Then the registry
// browser lists the images the builds pushed, each tag with its build.
func TestLiveLogAndRegistryBrowser(t *testing.T) {
	// One worker, held by the blocker's build: the followed build waits
	// in the queue until the follower is there.
	s := rig.StartSlipway(t, rig.Options{Env: []string{"SLIPWAY_WORKERS=1"}})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	blocker := buildNewRepo(t, s, git, "acme/blocker", map[string]string{
		"Dockerfile": fmt.Sprintf("FROM %s/library/busybox:latest\nRUN sleep 4\n", s.RegistryAddr),
	})
	waitStatus(t, s, blocker, model.StatusRunning)

	// $((6*7)) keeps the words out of the command line BuildKit prints
	// when the step starts: only the step's output says 42-first.
	live := buildNewRepo(t, s, git, "acme/live", map[string]string{
		"Dockerfile": fmt.Sprintf("FROM %s/library/busybox:latest\nRUN echo $((6*7))-first; sleep 3; echo $((6*7))-second\n", s.RegistryAddr),
	})
	client := api.Client{BaseURL: s.URL(), Token: s.Token}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var (
		mu       sync.Mutex
		statuses []string // of the status events, in order
		text     strings.Builder
		firstAt  string // the last status event's, and the record's, status when 42-first arrived
		end      api.Event
		events   int
		firstT   time.Time // when 42-first arrived
		endT     time.Time // when the end arrived
	)
	err := client.FollowLog(ctx, live, 0, func(e api.Event) error {
		mu.Lock()
		defer mu.Unlock()
		events++
		switch e.Kind {
		case api.EventStatus:
			statuses = append(statuses, e.Build.Status)
		case api.EventLog:
			text.WriteString(e.Text)
			if firstAt == "" && strings.Contains(text.String(), "42-first") {
				b, err := client.Build(ctx, live)
				if err != nil {
					return err
				}
				firstAt, firstT = statuses[len(statuses)-1]+"/"+b.Status, time.Now()
			}
		case api.EventEnd:
			end, endT = e, time.Now()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("FollowLog: %v", err)
	}
	b := s.Build(live)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("build %s: %s (%s)\n%s", live, b.Status, b.Error, s.Log(live))
	}
	if want := []string{"queued", "running", "succeeded"}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("status events = %q, want %q", statuses, want)
	}
	if firstAt != "running/running" {
		t.Errorf("42-first arrived while the stream's status/the record's status was %q, want running/running:\n%s", firstAt, text.String())
	}
	if end.Kind != api.EventEnd || end.Status != model.StatusSucceeded {
		t.Errorf("last event = %+v, want the end of a succeeded build", end)
	}
	full := s.Log(live)
	if text.String() != full {
		t.Errorf("followed log (%d bytes) differs from the stored log (%d bytes):\n%s\n---\n%s", text.Len(), len(full), text.String(), full)
	}
	rig.Contains(t, "followed log", text.String(), "42-first", "42-second", "==> pushed "+b.Image+"@"+b.Digest)
	// The step sleeps 3 s after 42-first: a log sent only at the end
	// would bring both at once.
	if gap := endT.Sub(firstT); gap < 2*time.Second {
		t.Errorf("42-first arrived %s before the end, want the 3 s of the step's sleep", gap)
	}
	t.Logf("%d events, %d bytes of log; 42-first arrived %s before the end", events, text.Len(), endT.Sub(firstT).Round(time.Millisecond))

	t.Run("registry browser", func(t *testing.T) {
		first := s.Build(blocker)
		repos := map[string]string{}
		var all []model.Repo
		s.Do("GET", "/api/v1/repos", nil, &all)
		for _, r := range all {
			repos[r.FullName] = r.ID
		}
		wantAcme := []api.Image{
			{Organization: "acme", Name: "acme/blocker", Image: s.RegistryAddr + "/acme/blocker", Repo: repos["acme/blocker"], Tags: 1},
			{Organization: "acme", Name: "acme/live", Image: s.RegistryAddr + "/acme/live", Repo: repos["acme/live"], Tags: 1},
		}
		busybox := api.Image{Organization: "library", Name: "library/busybox", Image: s.RegistryAddr + "/library/busybox", Public: true, Tags: 1}
		for _, tt := range []struct {
			org, q string
			want   []api.Image
		}{
			{"", "", append(append([]api.Image{}, wantAcme...), busybox)},
			{"acme", "", wantAcme},
			{"", "LIV", wantAcme[1:]},
			{"library", "", []api.Image{busybox}},
		} {
			got, err := client.Images(ctx, tt.org, tt.q)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("images (org %q, q %q) = %+v, %v\nwant %+v", tt.org, tt.q, got, err, tt.want)
			}
		}
		for name, want := range map[string][]api.ImageTag{
			"acme/live":    {{Tag: "latest", Digest: b.Digest, Build: b.ID}},
			"acme/blocker": {{Tag: "latest", Digest: first.Digest, Build: first.ID}},
		} {
			got, err := client.ImageTags(ctx, name)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("tags of %s = %+v, %v; want %+v", name, got, err, want)
			}
		}
	})
}

// waitStatus waits until build id has status.
func waitStatus(t *testing.T, s *rig.Slipway, id, status string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		b := s.Build(id)
		if b.Status == status {
			return
		}
		if model.Terminal(b.Status) || time.Now().After(deadline) {
			t.Fatalf("build %s is %s (%s), waited for %s\n%s", id, b.Status, b.Error, status, s.Log(id))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
