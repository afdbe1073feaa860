package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// growthRE is the size warning: how much the image grew, between which
// sizes, and the rule's limit.
var growthRE = regexp.MustCompile(`^image grew by ([0-9.]+)% \(from [0-9.]+ [kMG]?B to [0-9.]+ [kMG]?B; warn above 5%\)$`)

// Two builds of one rule, the second adding a 200,000-byte layer of
// random bytes (which no compression shrinks): the second build warns that
// its image grew past the rule's 5%, in its record and its log, and its
// image page lists the RUN that made the layer, with the layer's size, and
// names that layer as the one added since the first build.
func TestImageLayersAndSizeWarning(t *testing.T) {
	s := rig.StartSlipway(t, rig.Options{})
	s.PushBusybox()
	git := rig.StartGitServer(t)
	src := git.NewRepo(t, "sized")
	base := fmt.Sprintf("FROM %s/library/busybox:latest\nENV MODE=prod\nCMD [\"sh\", \"-c\", \"echo $MODE\"]\n", s.RegistryAddr)
	first := src.Commit("base only", map[string]string{"Dockerfile": base})
	src.Push("main")

	var repo model.Repo
	code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: "acme/sized", CloneURL: src.CloneURL, WebhookSecret: webhookSecret,
		Image: s.RegistryAddr + "/acme/sized",
		Rules: []model.Rule{{SourceType: "branch", Source: "main", Tags: []string{"latest"}, SizeWarnIncrease: "5%"}},
	}, &repo)
	if code != http.StatusCreated || repo.Rules[0].SizeWarnIncrease != "5%" {
		t.Fatalf("register repo: HTTP %d %+v", code, repo)
	}
	b1 := pushAndWait(t, s, rig.GitHubPush{Repo: "acme/sized", Ref: "refs/heads/main", After: first, Message: "base only"}, "sized-1")
	if b1.ImageSize <= 0 || len(b1.Warnings) != 0 {
		t.Errorf("first build: image_size %d, warnings %q; want a size and no warning", b1.ImageSize, b1.Warnings)
	}

	grown := base + "RUN head -c 200000 /dev/urandom > /blob\n"
	second := src.Commit("add a blob", map[string]string{"Dockerfile": grown})
	src.Push("main")
	b2 := pushAndWait(t, s, rig.GitHubPush{Repo: "acme/sized", Ref: "refs/heads/main", Before: first, After: second, Message: "add a blob"}, "sized-2")

	t.Logf("image sizes %d then %d bytes; warnings %q", b1.ImageSize, b2.ImageSize, b2.Warnings)
	t.Run("the second build warns", func(t *testing.T) {
		if len(b2.Warnings) != 1 {
			t.Fatalf("warnings = %q, want one", b2.Warnings)
		}
		m := growthRE.FindStringSubmatch(b2.Warnings[0])
		if m == nil {
			t.Fatalf("warning %q does not read like %s", b2.Warnings[0], growthRE)
		}
		grew, _ := strconv.ParseFloat(m[1], 64)
		want := float64(b2.ImageSize-b1.ImageSize) / float64(b1.ImageSize) * 100
		if math.Abs(grew-want) > 0.06 {
			t.Errorf("warning says %.1f%%, the recorded sizes %d and %d make %.2f%%", grew, b1.ImageSize, b2.ImageSize, want)
		}
		rig.Contains(t, "build log", s.Log(b2.ID), "==> image size ", "previous build "+b1.ID+": ", "==> warning: "+b2.Warnings[0]+"\n", "==> pushed")
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := api.Client{BaseURL: s.URL(), Token: s.Token}.Image(ctx, b2.ID, "")
	if err != nil {
		t.Fatalf("image of %s: %v", b2.ID, err)
	}
	t.Logf("image page: %d history entries, diff %+v", len(info.Layers), info.Diff)
	t.Run("the image page lists the RUN and its layer", func(t *testing.T) {
		if info.Image != repo.Image || info.Digest != b2.Digest || info.Platform != "linux/amd64" || info.TotalSize != b2.ImageSize {
			t.Errorf("image %s@%s %s total %d; want %s@%s linux/amd64 total %d (the recorded image_size)",
				info.Image, info.Digest, info.Platform, info.TotalSize, repo.Image, b2.Digest, b2.ImageSize)
		}
		if !slices.Equal(info.Config.Cmd, []string{"sh", "-c", "echo $MODE"}) || !slices.Contains(info.Config.Env, "MODE=prod") ||
			info.Config.Labels["org.opencontainers.image.revision"] != second {
			t.Errorf("config = %+v, want the Dockerfile's CMD, ENV and the revision label %s", info.Config, second)
		}
		last := info.Layers[len(info.Layers)-1]
		if last.CreatedBy != "RUN /bin/sh -c head -c 200000 /dev/urandom > /blob # buildkit" || last.EmptyLayer {
			t.Errorf("last history entry = %+v, want the RUN that made /blob", last)
		}
		// 200,000 random bytes in a tar (a 512-byte header, padding,
		// the end blocks, the directory entries BuildKit writes), then
		// gzip, which cannot shrink them.
		if last.Size < 200_000 || last.Size > 203_000 {
			t.Errorf("the RUN's layer is %d bytes, want 200,000 to 203,000", last.Size)
		}
		var env *model.Layer
		for i := range info.Layers {
			if strings.HasPrefix(info.Layers[i].CreatedBy, "ENV MODE=prod") {
				env = &info.Layers[i]
			}
		}
		if env == nil || !env.EmptyLayer || env.Size != 0 || env.Digest != "" || !slices.Contains(info.HistoryOnly, *env) {
			t.Errorf("ENV entry = %+v (history_only %+v), want an empty layer of size 0 listed in history_only too", env, info.HistoryOnly)
		}
		if !slices.Equal(info.Warnings, b2.Warnings) {
			t.Errorf("warnings = %q, want the build's %q", info.Warnings, b2.Warnings)
		}
	})
	t.Run("the diff names the added layer", func(t *testing.T) {
		want := &api.PreviousImage{Build: b1.ID, Digest: b1.Digest, TotalSize: b1.ImageSize}
		if info.Previous == nil || *info.Previous != *want {
			t.Errorf("previous = %+v, want %+v", info.Previous, want)
		}
		last := info.Layers[len(info.Layers)-1]
		if info.Diff == nil || !slices.Equal(info.Diff.Added, []string{last.Digest}) || len(info.Diff.Removed) != 0 || info.Diff.AddedBytes != last.Size {
			t.Fatalf("diff = %+v, want added [%s] of %d bytes, nothing removed", info.Diff, last.Digest, last.Size)
		}
		// The rest of the growth is the config's: one more history entry
		// and layer id, and the new commit's labels.
		if rest := b2.ImageSize - b1.ImageSize - info.Diff.AddedBytes; rest < 0 || rest > 500 {
			t.Errorf("image grew %d bytes, %d more than the added layer; want 0 to 500 (the config)", b2.ImageSize-b1.ImageSize, rest)
		}
	})
}

// pushAndWait sends push to Slipway as GitHub would and waits for its one
// build to succeed.
func pushAndWait(t *testing.T, s *rig.Slipway, push rig.GitHubPush, delivery string) model.Build {
	t.Helper()
	r := rig.SendGitHub(t, s.URL(), "push", delivery, webhookSecret, push.Payload())
	if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
		t.Fatalf("push %s: %+v", push.After, r)
	}
	b := s.WaitBuild(r.Builds[0], 5*time.Minute)
	if b.Status != model.StatusSucceeded {
		t.Fatalf("build %s: %s (%s)\n%s", b.ID, b.Status, b.Error, s.Log(b.ID))
	}
	return b
}
