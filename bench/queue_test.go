package bench

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/slipway-build/slipway/e2e/rig"
)

const queuePushes = 50

// Queue latency: with two idle workers, how long a pushed build waits
// between the webhook's arrival and a worker marking it running. Each push
// waits for the build before it to finish, so the workers are idle.
func BenchmarkQueueLatency(b *testing.B) {
	s := rig.StartSlipway(b, rig.Options{Env: []string{"SLIPWAY_WORKERS=2", "SLIPWAY_RECONCILE_INTERVAL=0s"}})
	git := rig.StartGitServer(b)
	src := git.NewRepo(b, "queue")
	src.Commit("queue", map[string]string{"Dockerfile": "FROM scratch\nCOPY n.txt /n.txt\n", "n.txt": "0\n"})
	src.Push("main")
	register(b, s, "acme/queue", src.CloneURL)

	var waits, answered []time.Duration
	for i := range queuePushes {
		commit := src.Commit(fmt.Sprintf("push %d", i), map[string]string{"n.txt": fmt.Sprintf("%d\n", i+1)})
		src.Push("main")
		body := rig.GitHubPush{Repo: "acme/queue", CloneURL: src.CloneURL, Ref: "refs/heads/main", After: commit, Message: "push"}.Payload()
		sent := time.Now()
		r := rig.SendGitHub(b, s.URL(), "push", fmt.Sprintf("queue-%d", i), hookSecret, body)
		got := time.Now()
		if r.Code != http.StatusAccepted || len(r.Builds) != 1 {
			b.Fatalf("push %d: HTTP %d builds %v %s", i, r.Code, r.Builds, r.Error)
		}
		build := s.WaitBuild(r.Builds[0], 2*time.Minute)
		if build.Status != "succeeded" || build.StartedAt == nil {
			b.Fatalf("build %s of push %d: %s %s", build.ID, i, build.Status, build.Error)
		}
		waits = append(waits, build.StartedAt.Sub(build.CreatedAt))
		answered = append(answered, got.Sub(sent))
	}
	p50, p99 := quantile(waits, 0.5), quantile(waits, 0.99)
	b.ReportMetric(float64(p50)/float64(time.Millisecond), "p50_ms")
	b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99_ms")
	body := fmt.Sprintf(`%d pushes to one repository, one after another, against `+"`slipway serve`"+` with two idle
workers (SLIPWAY_WORKERS=2, embedded NATS and BuildKit); the build is a one-file COPY FROM scratch,
and each push waits for the previous build to finish. The wait is the build's started_at (a
worker took its job and marked it running) minus its created_at (set when the webhook arrived,
before it was stored and answered). The webhook's own answer took p50 %s, p99 %s.

%s
| Target (issue 13) | Measured | |
|---|---|---|
| p50 ≤ 20 ms | %s | %s |
| p99 ≤ 100 ms | %s | %s |
`, queuePushes, ms(quantile(answered, 0.5)), ms(quantile(answered, 0.99)),
		table([]string{"Webhook received → running", "p50", "p99", "min", "max"},
			[][]string{{"wait", ms(p50), ms(p99), ms(quantile(waits, 0)), ms(quantile(waits, 1))}}),
		ms(p50), verdict(p50 <= 20*time.Millisecond), ms(p99), verdict(p99 <= 100*time.Millisecond))
	b.Log("\n" + body)
	Record(Section{Order: 5, Title: "Queue latency", Body: body})
}
