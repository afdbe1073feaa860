package worker

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/rules"
	"github.com/slipway-build/slipway/trigger"
)

// measure records the size of the image a build pushed (one registry read
// of its manifest and config) and compares it with the previous build of
// the same rule, warning past the rule's size_warn_increase. Nothing here
// fails the build: what cannot be read is said in the log and left out.
func (w *Worker) measure(ctx context.Context, b model.Build, creds builder.Credentials, out *outcome, logw io.Writer) {
	if w.Images == nil || !out.succeeded() || out.digest == "" {
		return
	}
	img, err := w.Images(creds).Inspect(ctx, b.Image, out.digest, "")
	if err != nil {
		fmt.Fprintf(logw, "==> image size not recorded: %v\n", err)
		w.logger().Warn("read the pushed image's size", "build", b.ID, "err", err)
		return
	}
	out.imageSize = img.TotalSize()
	prev, ok, err := trigger.Previous(ctx, w.Builds, b)
	if err != nil {
		w.logger().Warn("find the previous build to compare the image's size with", "build", b.ID, "err", err)
	}
	if !ok || prev.ImageSize == 0 {
		fmt.Fprintf(logw, "==> image size %s (%s, %d bytes)\n", humanBytes(out.imageSize), img.Platform, out.imageSize)
		return
	}
	fmt.Fprintf(logw, "==> image size %s (%s, %d bytes); previous build %s: %s\n",
		humanBytes(out.imageSize), img.Platform, out.imageSize, prev.ID, humanBytes(prev.ImageSize))
	if warning := sizeWarning(prev.ImageSize, out.imageSize, b.Rule.SizeWarnIncrease); warning != "" {
		out.warnings = append(out.warnings, warning)
		fmt.Fprintf(logw, "==> warning: %s\n", warning)
		w.logger().Warn("image grew past its rule's size_warn_increase", "build", b.ID, "previous", prev.ID, "warning", warning)
	}
}

// sizeWarning is the warning for an image that grew from before to now
// bytes by more than limit ("20%"); "" when it did not, or when no limit
// is set.
func sizeWarning(before, now int64, limit string) string {
	most, err := rules.ParsePercent(limit)
	if err != nil || before <= 0 {
		return ""
	}
	grew := float64(now-before) / float64(before) * 100
	if grew <= most {
		return ""
	}
	return fmt.Sprintf("image grew by %s%% (from %s to %s; warn above %s)", percent(grew), humanBytes(before), humanBytes(now), limit)
}

// percent writes p with at most one decimal: 25, 5.3.
func percent(p float64) string {
	return strconv.FormatFloat(math.Round(p*10)/10, 'f', -1, 64)
}

// humanBytes writes n in decimal units with one decimal, as registries
// show sizes: 812 B, 200.1 kB, 12.5 MB, 1.2 GB.
func humanBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1000, "kB"
	for _, u := range []string{"MB", "GB", "TB"} {
		if v < 999.95 { // would print as 1000.0
			break
		}
		v, unit = v/1000, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
