package bench

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// stageOrder is the overhead chart's X axis (1, 2, ...).
var stageOrder = []string{"ingest", "queue", "login", "ping", "clone", "prepare", "tests", "cache-import", "cache-export", "build-other", "record", "tag", "size", "finish", "notify"}

// offPath are measured stages that are not on the path to the deploy hook.
var offPath = []string{"export-after"}

type spread struct{ median, min, max float64 }

func msOf(ss []sample) spread {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = float64(s.total.Microseconds()) / 1000
	}
	return spreadOf(v)
}

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	v = slices.Clone(v)
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return spread{median: m, min: v[0], max: v[len(v)-1]}
}

// stageMedians is each stage's median over Slipway's samples (ms), with
// the build stage split into the registry cache's steps and the rest.
func stageMedians(ss []sample) map[string]float64 {
	by := map[string][]float64{}
	for _, s := range ss {
		st := s.stages
		for k, v := range st {
			by[k] = append(by[k], v)
		}
		by["build-other"] = append(by["build-other"], st["build"]-st["cache-import"]-st["cache-export"])
	}
	out := map[string]float64{}
	for k, v := range by {
		out[k] = spreadOf(v).median
	}
	return out
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func (r *e2eRig) report(warm, cold map[string][]sample) {
	b := r.b
	var body strings.Builder
	fmt.Fprintf(&body, "Signed GitHub push webhook sent → deploy webhook received (Slipway), against `git clone --depth 1` + `buildctl build --frontend dockerfile.v0 … --output type=image,push=true` (by hand, buildctl built from the pinned buildkit module), on the same buildkitd (the one `slipway serve` embeds) and the same registry (the embedded one, same login). ")
	fmt.Fprintf(&body, "Repository: `FROM <registry>/library/busybox` + `COPY . /app`; every sample pushes its own new commit changing one file, so no contender rides on another's cache of the same content. %d samples each, interleaved, order turned each round. ", e2eSamples)
	fmt.Fprintf(&body, "Warm: the daemon's cache holds the base. Cold: `buildctl prune --all` (builder.Client.Prune) before every sample, so the base is pulled again (Slipway imports its registry cache too). ")
	fmt.Fprintf(&body, "BuildKit's solve: one in-process builder.Client.Build of the same kind of commit, pushed, timed alone (clone not included).\n\n")
	fmt.Fprintf(&body, "| | Slipway median (min–max) | by hand median (min–max) | BuildKit solve median | Slipway/by hand | Slipway − by hand | Slipway − solve | target |\n|---|---|---|---|---|---|---|---|\n")
	targets := map[string]string{}
	for _, k := range []struct {
		name string
		set  map[string][]sample
	}{{"warm", warm}, {"cold", cold}} {
		sl, bh, so := msOf(k.set["slipway"]), msOf(k.set["byhand"]), msOf(k.set["solve"])
		ratio := sl.median / bh.median
		target := fmt.Sprintf("ratio ≤ 1.05: %s", met(ratio <= 1.05))
		if k.name == "warm" {
			target = fmt.Sprintf("ratio ≤ 1.00: %s; ≤ 50 ms above solve: %s", met(ratio <= 1.00), met(sl.median-so.median <= 50))
		}
		targets[k.name] = target
		fmt.Fprintf(&body, "| %s | %.0f ms (%.0f–%.0f) | %.0f ms (%.0f–%.0f) | %.0f ms (%.0f–%.0f) | %.2f | %+.0f ms | %+.0f ms | %s |\n",
			k.name, sl.median, sl.min, sl.max, bh.median, bh.min, bh.max, so.median, so.min, so.max, ratio, sl.median-bh.median, sl.median-so.median, target)
		b.ReportMetric(sl.median, k.name+"-slipway-ms")
		b.ReportMetric(bh.median, k.name+"-byhand-ms")
		b.ReportMetric(so.median, k.name+"-solve-ms")
		b.ReportMetric(ratio, k.name+"-ratio")
	}
	body.WriteString("\n" + stageTable(warm["slipway"], cold["slipway"], msOf(warm["solve"]).median))
	Record(Section{Order: 1, Title: "End to end, warm and cold, against by hand", Body: body.String()})
	r.plotStages(warm["slipway"], cold["slipway"])
	r.reportBuildx(warm, cold)
	b.Logf("section 1:\n%s", body.String())
}

// stageTable is the median of each stage of Slipway's runs, warm and cold.
func stageTable(warm, cold []sample, solve float64) string {
	var sb strings.Builder
	w, c := stageMedians(warm), stageMedians(cold)
	fmt.Fprintf(&sb, "Slipway's run by stage (medians, ms; from the build record's times, the worker's `==> stages:` log line and BuildKit's progress for the registry cache steps). The warm BuildKit solve alone takes %.0f ms; the build stage's rest (build-other) is that solve plus Slipway's extras in it.\n\n| stage | warm | cold |\n|---|---|---|\n", solve)
	for _, s := range stageOrder {
		fmt.Fprintf(&sb, "| %s | %.1f | %.1f |\n", s, w[s], c[s])
	}
	for _, s := range offPath {
		if _, ok := w[s]; ok {
			fmt.Fprintf(&sb, "| %s (after the hook, off the path) | %.1f | %.1f |\n", s, w[s], c[s])
		}
	}
	fmt.Fprintf(&sb, "\nWarm, the stages besides BuildKit's own work, largest first: %s.\n", aroundSolve(w))
	return sb.String()
}

// aroundSolve lists the stages outside the solve (all but build-other and
// the cache steps inside it), largest median first: where the time above
// BuildKit's solve goes.
func aroundSolve(medians map[string]float64) string {
	var names []string
	for _, s := range stageOrder {
		if s != "build-other" && s != "cache-import" && s != "cache-export" {
			names = append(names, s)
		}
	}
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(medians[b], medians[a]) })
	parts := make([]string, len(names))
	for i, s := range names {
		parts[i] = fmt.Sprintf("%s %.1f ms", s, medians[s])
	}
	return strings.Join(parts, ", ")
}

func (r *e2eRig) plotStages(warm, cold []sample) {
	for _, k := range []struct {
		name string
		ss   []sample
	}{{"warm", warm}, {"cold", cold}} {
		m := stageMedians(k.ss)
		var x, y []float64
		var labels []string
		for i, s := range stageOrder {
			if m[s] < 1 {
				continue // a bar too short to see; the table has it
			}
			x, y, labels = append(x, float64(i+1)), append(y, m[s]), append(labels, s)
		}
		Plot(Series{Chart: "overhead", Name: k.name, Unit: "ms", X: x, Y: y, Labels: labels})
	}
}

func (r *e2eRig) reportBuildx(warm, cold map[string][]sample) {
	var body strings.Builder
	if r.buildx == "" {
		fmt.Fprintf(&body, "Not measured: buildx could not be built or set up here: %s\n", r.buildxErr)
		Record(Section{Order: 2, Title: "End to end against buildx", Body: body.String()})
		r.b.Logf("section 2:\n%s", body.String())
		return
	}
	fmt.Fprintf(&body, "The same as section 1 against `git clone --depth 1` + `buildx build --push --provenance=false` (buildx built from its Go module, `buildx create --driver remote` on Slipway's buildkitd, BUILDX_CONFIG in a temporary directory; provenance off since Slipway's rule does not ask for it).\n\n")
	fmt.Fprintf(&body, "| | Slipway median (min–max) | buildx median (min–max) | Slipway/buildx | target: faster than buildx |\n|---|---|---|---|---|\n")
	for _, k := range []struct {
		name string
		set  map[string][]sample
	}{{"warm", warm}, {"cold", cold}} {
		sl, bx := msOf(k.set["slipway"]), msOf(k.set["buildx"])
		fmt.Fprintf(&body, "| %s | %.0f ms (%.0f–%.0f) | %.0f ms (%.0f–%.0f) | %.2f | %s |\n", k.name, sl.median, sl.min, sl.max, bx.median, bx.min, bx.max, sl.median/bx.median, met(sl.median < bx.median))
		r.b.ReportMetric(bx.median, k.name+"-buildx-ms")
	}
	Record(Section{Order: 2, Title: "End to end against buildx", Body: body.String()})
	r.b.Logf("section 2:\n%s", body.String())
}
