package bench

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/e2e/rig"
	"github.com/slipway-build/slipway/model"
)

// hookSecret signs the benchmarks' webhooks.
const hookSecret = "bench-hook-secret"

// register adds a GitHub repository whose one rule builds every branch.
func register(b *testing.B, s *rig.Slipway, fullName, cloneURL string) model.Repo {
	b.Helper()
	var repo model.Repo
	code := s.Do("POST", "/api/v1/repos", model.Repo{
		Provider: "github", FullName: fullName, CloneURL: cloneURL, WebhookSecret: hookSecret,
		Image: s.RegistryAddr + "/" + fullName,
		Rules: []model.Rule{{SourceType: "branch", Source: "/.*/", Tags: []string{"{branch}"}, Dockerfile: "Dockerfile", Context: "."}},
	}, &repo)
	if code != http.StatusCreated {
		b.Fatalf("register repo %s: HTTP %d", fullName, code)
	}
	return repo
}

// quantile answers the q-quantile (0 < q ≤ 1) of durations, nearest rank.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// verdict says whether a target was met.
func verdict(met bool) string {
	if met {
		return "met"
	}
	return "**missed**"
}

// table renders a Markdown table.
func table(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}
