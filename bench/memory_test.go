package bench

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-build/slipway/e2e/rig"
)

const concurrentBuilds = 8

// rssMB reads a process's resident memory from /proc, in kB.
func rssMB(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

func mustRSS(b *testing.B, pid int) float64 {
	b.Helper()
	kb, err := rssMB(pid)
	if err != nil {
		b.Fatalf("resident memory of %d: %v", pid, err)
	}
	return kb / 1024
}

// Memory: the resident memory of the `slipway serve` process alone (its
// BuildKit is a separate buildkitd), idle and at its peak during eight
// concurrent builds.
func BenchmarkMemory(b *testing.B) {
	bkd := rig.StartBuildkitd(b)
	s := rig.StartSlipway(b, rig.Options{Env: []string{"SLIPWAY_BUILDKIT_ADDR=" + bkd, "SLIPWAY_WORKERS=" + strconv.Itoa(concurrentBuilds), "SLIPWAY_RECONCILE_INTERVAL=0s"}})
	s.PushBusybox()
	git := rig.StartGitServer(b)
	src := git.NewRepo(b, "memory")
	src.Commit("base", map[string]string{"README": "memory\n"})
	src.Push("main")
	register(b, s, "acme/memory", src.CloneURL)
	// Each branch's Dockerfile differs, so BuildKit shares no step.
	var hooks [][]byte
	for i := range concurrentBuilds {
		branch := fmt.Sprintf("m%d", i)
		rig.Git(b, src.Dir, "checkout", "-q", "-B", branch, "main")
		commit := src.Commit(branch, map[string]string{"Dockerfile": fmt.Sprintf("FROM %s/library/busybox:latest\nRUN echo %s && sleep 5\n", s.RegistryAddr, branch)})
		src.Push(branch)
		hooks = append(hooks, rig.GitHubPush{Repo: "acme/memory", CloneURL: src.CloneURL, Ref: "refs/heads/" + branch, After: commit, Message: branch}.Payload())
	}
	time.Sleep(10 * time.Second) // settle after start and the API calls
	pid := s.Pid()
	var idleSamples []float64
	for range 5 {
		idleSamples = append(idleSamples, mustRSS(b, pid))
		time.Sleep(time.Second)
	}
	idle := idleSamples[len(idleSamples)-1]

	ids := make([]string, concurrentBuilds)
	for i, body := range hooks {
		r := rig.SendGitHub(b, s.URL(), "push", fmt.Sprintf("memory-%d", i), hookSecret, body)
		if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
			b.Fatalf("push %d: HTTP %d builds %v %s", i, r.Code, r.Builds, r.Error)
		}
		ids[i] = r.Builds[0]
	}
	peak, done := idle, make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
				if kb, err := rssMB(pid); err == nil {
					peak = max(peak, kb/1024)
				}
			}
		}
	}()
	var overlap time.Duration
	var firstEnd, lastStart time.Time
	for _, id := range ids {
		build := s.WaitBuild(id, 5*time.Minute)
		if build.Status != "succeeded" {
			b.Fatalf("build %s: %s %s", id, build.Status, build.Error)
		}
		if firstEnd.IsZero() || build.FinishedAt.Before(firstEnd) {
			firstEnd = *build.FinishedAt
		}
		if build.StartedAt.After(lastStart) {
			lastStart = *build.StartedAt
		}
	}
	close(done)
	sampler.Wait()
	overlap = firstEnd.Sub(lastStart)
	if overlap <= 0 {
		b.Errorf("the %d builds never all ran at once (last started %s, first finished %s)", concurrentBuilds, lastStart, firstEnd)
	}
	perBuild := (peak - idle) / concurrentBuilds
	b.ReportMetric(idle, "idle_MB")
	b.ReportMetric(peak, "peak_MB")
	b.ReportMetric(perBuild, "MB/build")
	body := fmt.Sprintf(`Resident memory (VmRSS in /proc) of the `+"`slipway serve`"+` process only, with embedded NATS and
registry, its BuildKit a separate buildkitd (SLIPWAY_BUILDKIT_ADDR) whose memory is not counted.
Idle is read after start, registering a repository and pushing the base image, then 10 s of
settling (samples over 5 s: %s MB). The peak is sampled every 100 ms while %d builds run at once
(SLIPWAY_WORKERS=%d; each a different `+"`RUN echo … && sleep 5`"+` on busybox; all %d were running together
for %s).

%s
| Target (issue 13) | Measured | |
|---|---|---|
| idle ≤ 150 MB | %.0f MB | %s |
| ≤ 30 MB per concurrent build | %.1f MB | %s |
`, joinMB(idleSamples), concurrentBuilds, concurrentBuilds, concurrentBuilds, overlap.Round(100*time.Millisecond),
		table([]string{"Idle", fmt.Sprintf("Peak, %d builds", concurrentBuilds), "Per concurrent build"},
			[][]string{{fmt.Sprintf("%.0f MB", idle), fmt.Sprintf("%.0f MB", peak), fmt.Sprintf("%.1f MB", perBuild)}}),
		idle, verdict(idle <= 150), perBuild, verdict(perBuild <= 30))
	b.Log("\n" + body)
	Record(Section{Order: 7, Title: "Memory", Body: body})
}

func joinMB(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, strconv.FormatFloat(x, 'f', 0, 64))
	}
	return strings.Join(parts, ", ")
}
