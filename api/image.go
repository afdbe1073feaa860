package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/registry"
	"github.com/slipway-build/slipway/trigger"
)

// Images reads the image a build pushed from its registry, with
// credentials that may read it (cmd/slipway: a read pass for the image's
// repository on the embedded registry, the organization's stored logins
// elsewhere). platform is as registry.Client.Inspect takes it.
type Images interface {
	Inspect(ctx context.Context, b model.Build, platform string) (model.Image, error)
}

// ImageInfo answers GET /api/v1/builds/{id}/image: the build's image for
// one platform, its layers with the instructions that made them, and how
// it differs from the previous build of the same rule.
type ImageInfo struct {
	// Image is host[:port]/name; Digest what the build pushed (an index
	// for a multi-platform image); Manifest the platform's manifest.
	Image    string `json:"image"`
	Digest   string `json:"digest"`
	Manifest string `json:"manifest"`
	Platform string `json:"platform"`
	// Platforms are those a multi-platform image offers (?platform=).
	Platforms []string          `json:"platforms,omitempty"`
	Config    model.ImageConfig `json:"config"`
	// Layers is the whole history, oldest first; HistoryOnly the
	// entries of it that made no layer (empty_layer, size 0), also
	// listed in Layers.
	Layers      []model.Layer `json:"layers"`
	HistoryOnly []model.Layer `json:"history_only"`
	ConfigSize  int64         `json:"config_size"`
	// TotalSize is the layers' compressed sizes plus the config's.
	TotalSize int64 `json:"total_size"`
	// Previous is the newest earlier build of the same repository and
	// rule that pushed an image (trigger.Previous); Diff compares its
	// layers with these. Both null when there is none; Diff also when
	// the previous image cannot be read any more.
	Previous *PreviousImage `json:"previous"`
	Diff     *ImageDiff     `json:"diff"`
	// Warnings are the build's (an image that grew past its rule's
	// size_warn_increase).
	Warnings []string `json:"warnings"`
}

// PreviousImage is the build an image is compared with.
type PreviousImage struct {
	Build     string `json:"build"`
	Digest    string `json:"digest"`
	TotalSize int64  `json:"total_size"`
}

// ImageDiff is what changed between two images' layers, by digest.
type ImageDiff struct {
	Added      []string `json:"added"`
	Removed    []string `json:"removed"`
	AddedBytes int64    `json:"added_bytes"`
}

// platformRE is a ?platform= worth asking a registry about.
var platformRE = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)

func (s *Server) getImage(w http.ResponseWriter, r *http.Request) {
	b, ok := s.build(w, r, access.Read)
	if !ok {
		return
	}
	if msg := unpushed(b); msg != "" {
		writeError(w, http.StatusConflict, msg)
		return
	}
	platform := r.URL.Query().Get("platform")
	if platform != "" && !platformRE.MatchString(platform) {
		writeError(w, http.StatusBadRequest, "platform: want os/arch[/variant] such as linux/amd64, got "+platform)
		return
	}
	if s.Images == nil {
		writeError(w, http.StatusNotImplemented, "this server reads no registry: image pages are served by the api role")
		return
	}
	img, err := s.Images.Inspect(r.Context(), b, platform)
	if err != nil {
		s.imageError(w, r, err)
		return
	}
	info := newImageInfo(b, img)
	if err := s.compare(r.Context(), b, img, &info); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// unpushed says why build b has no image to show, "" when it has one.
func unpushed(b model.Build) string {
	switch {
	case b.PullRequest != nil && b.PullRequest.Fork:
		return "build " + b.ID + " is a pull request from a fork: it was built and tested, never pushed, so it has no image"
	case b.Digest != "":
		return ""
	case !model.Terminal(b.Status):
		return "build " + b.ID + " has pushed no image yet: it is " + b.Status
	}
	return "build " + b.ID + " pushed no image: it ended " + b.Status
}

// imageError answers a registry's failure: 404 for an image or platform
// the registry does not have, 502 for a registry that failed.
func (s *Server) imageError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, registry.ErrNoImage), errors.Is(err, registry.ErrNoPlatform):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		s.logger().Warn("read an image for the API", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusBadGateway, err.Error())
	}
}

func newImageInfo(b model.Build, img model.Image) ImageInfo {
	info := ImageInfo{
		Image: b.Image, Digest: b.Digest, Manifest: img.Manifest, Platform: img.Platform, Platforms: img.Platforms,
		Config: img.Config, Layers: img.Layers, HistoryOnly: []model.Layer{}, ConfigSize: img.ConfigSize,
		TotalSize: img.TotalSize(), Warnings: b.Warnings,
	}
	if info.Layers == nil {
		info.Layers = []model.Layer{}
	}
	if info.Warnings == nil {
		info.Warnings = []string{}
	}
	for _, l := range img.Layers {
		if l.EmptyLayer {
			info.HistoryOnly = append(info.HistoryOnly, l)
		}
	}
	return info
}

// compare fills in the previous build of b's rule and, when its image
// can still be read for the same platform, the difference of the layers.
func (s *Server) compare(ctx context.Context, b model.Build, img model.Image, info *ImageInfo) error {
	prev, ok, err := trigger.Previous(ctx, s.Builds, b)
	if err != nil || !ok {
		return err
	}
	info.Previous = &PreviousImage{Build: prev.ID, Digest: prev.Digest, TotalSize: prev.ImageSize}
	old, err := s.Images.Inspect(ctx, prev, img.Platform)
	if err != nil {
		// The page still shows this image; only the comparison is lost.
		s.logger().Warn("read the previous image; no diff", "build", b.ID, "previous", prev.ID, "err", err)
		return nil
	}
	info.Previous.TotalSize = old.TotalSize()
	d := diff(old, img)
	info.Diff = &d
	return nil
}

// diff compares two images' layers by digest: the layers of now that were
// not in before (and their bytes), and those of before that are gone.
func diff(before, now model.Image) ImageDiff {
	d := ImageDiff{Added: []string{}, Removed: []string{}}
	had, has := layerSet(before), layerSet(now)
	for _, l := range now.Layers {
		if l.Digest != "" && !had[l.Digest] {
			d.Added = append(d.Added, l.Digest)
			d.AddedBytes += l.Size
			had[l.Digest] = true // a layer twice is added once
		}
	}
	for _, l := range before.Layers {
		if l.Digest != "" && !has[l.Digest] {
			d.Removed = append(d.Removed, l.Digest)
			has[l.Digest] = true
		}
	}
	return d
}

func layerSet(img model.Image) map[string]bool {
	out := map[string]bool{}
	for _, l := range img.Layers {
		if l.Digest != "" {
			out[l.Digest] = true
		}
	}
	return out
}
