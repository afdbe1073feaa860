package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipway-build/slipway/model"
)

// ErrNoImage is wrapped by Inspect's error when the registry has no such
// manifest (deleted, or collected as garbage).
var ErrNoImage = errors.New("no such image in the registry")

// ErrNoPlatform is wrapped by Inspect's error when the image has no
// manifest for the platform asked for; the error names those it has.
var ErrNoPlatform = errors.New("no such platform in the image")

// DefaultPlatform is the platform Inspect picks from an index when asked
// for none and the index has it.
const DefaultPlatform = "linux/amd64"

// Inspect reads the image image@digest (image as host[:port]/name): its
// config, its layers paired with the history entries that made them, and
// their sizes, as pushed. For an index (a multi-platform image), platform
// picks the manifest ("linux/arm64"); "" picks DefaultPlatform, else the
// first platform the index lists. Attestation manifests (BuildKit's
// unknown/unknown) are never picked. A platform asked of a single-platform
// image must be its own.
func (c Client) Inspect(ctx context.Context, image, digest, platform string) (model.Image, error) {
	opts := nameOptions(registryHost(image))
	if _, err := name.NewRepository(image, opts...); err != nil {
		return model.Image{}, fmt.Errorf("registry: invalid image %q (want host[:port]/name without tag or digest): %w", image, err)
	}
	ref, err := name.NewDigest(image+"@"+digest, opts...)
	if err != nil {
		return model.Image{}, fmt.Errorf("registry: inspect %s: invalid digest %q: %w", image, digest, err)
	}
	s := c.session(registryHost(image))
	img, err := s.inspect(ctx, ref, platform)
	switch {
	case errors.Is(err, ErrNoPlatform):
		return model.Image{}, fmt.Errorf("registry: inspect %s@%s: %w", image, digest, err)
	case notFound(err):
		return model.Image{}, fmt.Errorf("registry: inspect %s@%s: %w", image, digest, ErrNoImage)
	case err != nil:
		err = fmt.Errorf("registry: inspect %s@%s: %w", image, digest, s.explain(ctx, err, "pull"))
		return model.Image{}, s.scrub(err)
	}
	return img, nil
}

// inspect reads ref on one transport scoped for pull: the manifest (or
// index, then the platform's manifest) and the config.
func (s *session) inspect(ctx context.Context, ref name.Digest, platform string) (model.Image, error) {
	repo := ref.Context()
	rt, err := transport.NewWithContext(ctx, repo.Registry, s.authenticator(),
		transport.NewUserAgent(s.guard, userAgent), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return model.Image{}, err
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(rt)}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return model.Image{}, err
	}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return model.Image{}, err
		}
		out, err := Describe(img, nil)
		if err == nil && platform != "" && !samePlatform(platform, out.Platform) {
			return model.Image{}, fmt.Errorf("%w: %s (the image is %s only)", ErrNoPlatform, platform, out.Platform)
		}
		return out, err
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return model.Image{}, err
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		return model.Image{}, err
	}
	chosen, platforms, err := pick(manifest.Manifests, platform)
	if err != nil {
		return model.Image{}, err
	}
	img, err := remote.Image(repo.Digest(chosen.Digest.String()), opts...)
	if err != nil {
		return model.Image{}, err
	}
	out, err := Describe(img, chosen.Platform)
	out.Platforms = platforms
	return out, err
}

// pick chooses the manifest of platform from an index's, and lists the
// platforms there are.
func pick(manifests []v1.Descriptor, platform string) (v1.Descriptor, []string, error) {
	var images []v1.Descriptor
	var platforms []string
	for _, d := range manifests {
		if !d.MediaType.IsImage() || d.Platform == nil || attestation(d) {
			continue
		}
		images = append(images, d)
		platforms = append(platforms, platformName(d.Platform))
	}
	if len(images) == 0 {
		return v1.Descriptor{}, nil, fmt.Errorf("%w: the index lists no platform image", ErrNoPlatform)
	}
	want := platform
	if want == "" {
		want = DefaultPlatform
	}
	for i, p := range platforms {
		if samePlatform(want, p) {
			return images[i], platforms, nil
		}
	}
	if platform == "" {
		return images[0], platforms, nil
	}
	return v1.Descriptor{}, nil, fmt.Errorf("%w: %s (the image has %s)", ErrNoPlatform, platform, strings.Join(platforms, ", "))
}

// attestation tells BuildKit's provenance and SBOM manifests, which an
// index lists beside the platforms as unknown/unknown.
func attestation(d v1.Descriptor) bool {
	return d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" ||
		(d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown")
}

// samePlatform reports whether have is the platform want names: the same
// os/arch/variant, or the same os/arch when want names no variant.
func samePlatform(want, have string) bool {
	if want == have {
		return true
	}
	return strings.Count(want, "/") == 1 && strings.HasPrefix(have, want+"/")
}

// platformName is os/architecture[/variant].
func platformName(p *v1.Platform) string {
	if p == nil || p.OS == "" {
		return ""
	}
	return strings.Join(slices.DeleteFunc([]string{p.OS, p.Architecture, p.Variant}, func(s string) bool { return s == "" }), "/")
}

// Describe is img as model.Image; platform is what the index said of it,
// nil to take the config's word.
func Describe(img v1.Image, platform *v1.Platform) (model.Image, error) {
	digest, err := img.Digest()
	if err != nil {
		return model.Image{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return model.Image{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return model.Image{}, err
	}
	if platform == nil {
		platform = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	}
	return model.Image{
		Manifest:   digest.String(),
		Platform:   platformName(platform),
		Config:     config(cf.Config),
		ConfigSize: m.Config.Size,
		Layers:     Pair(m.Layers, cf.History),
	}, nil
}

// config is what an image runs with, lists and maps never null.
func config(c v1.Config) model.ImageConfig {
	out := model.ImageConfig{
		Entrypoint: orEmpty(c.Entrypoint), Cmd: orEmpty(c.Cmd), Env: orEmpty(c.Env),
		Labels: c.Labels, WorkingDir: c.WorkingDir, User: c.User, ExposedPorts: []string{},
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for p := range c.ExposedPorts {
		out.ExposedPorts = append(out.ExposedPorts, p)
	}
	slices.Sort(out.ExposedPorts)
	return out
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Pair matches an image's history with its layers: the history entries
// that made a layer (not empty_layer) name the manifest's layers in order;
// the others come with size 0. A history entry beyond the layers keeps no
// digest, and layers beyond the history (an image that records none) come
// without an instruction.
func Pair(layers []v1.Descriptor, history []v1.History) []model.Layer {
	out := make([]model.Layer, 0, max(len(layers), len(history)))
	next := 0
	for _, h := range history {
		l := model.Layer{CreatedBy: h.CreatedBy, EmptyLayer: h.EmptyLayer}
		if !h.EmptyLayer && next < len(layers) {
			l.Digest, l.Size = layers[next].Digest.String(), layers[next].Size
			next++
		}
		out = append(out, l)
	}
	for _, d := range layers[next:] {
		out = append(out, model.Layer{Digest: d.Digest.String(), Size: d.Size})
	}
	return out
}
