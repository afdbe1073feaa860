package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/registry"
)

// The layers of the test images: blobs of known sizes. The registry does
// not look inside a blob, so plain bytes stand in for tar.gz.
var (
	layerBase  = bytes.Repeat([]byte("a"), 1000)
	layerDeps  = bytes.Repeat([]byte("b"), 2000)
	layerBuild = bytes.Repeat([]byte("c"), 3456)
	layerArm   = bytes.Repeat([]byte("d"), 1500)
)

// configV1 is the config of the first test image: two layers made by ADD
// and RUN, an ENV that made none between them. It is 515 bytes long.
const configV1 = `{"architecture":"amd64","os":"linux",` +
	`"config":{"Entrypoint":["/bin/app"],"Cmd":["serve","--port","8080"],"Env":["PATH=/usr/bin:/bin","MODE=prod"],` +
	`"Labels":{"org.opencontainers.image.revision":"1111111111111111111111111111111111111111"},` +
	`"WorkingDir":"/srv","User":"65532","ExposedPorts":{"8080/tcp":{},"443/tcp":{}}},` +
	`"rootfs":{"type":"layers","diff_ids":[]},` +
	`"history":[{"created_by":"ADD base.tar / # buildkit"},` +
	`{"created_by":"ENV MODE=prod","empty_layer":true},` +
	`{"created_by":"RUN /bin/sh -c make deps # buildkit"}]}`

// configV2 is the next build's: the RUN changed its layer. It is 266
// bytes long.
const configV2 = `{"architecture":"amd64","os":"linux","config":{"Cmd":["serve"]},` +
	`"rootfs":{"type":"layers","diff_ids":[]},` +
	`"history":[{"created_by":"ADD base.tar / # buildkit"},` +
	`{"created_by":"RUN /bin/sh -c make build # buildkit"},{"created_by":"CMD [\"serve\"]","empty_layer":true}]}`

// configArm is an arm64 image's, with no history at all. It is 90
// bytes long.
const configArm = `{"architecture":"arm64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`

// imageRig is an API on the harness reading images from an open embedded
// registry on loopback.
type imageRig struct {
	*harness
	reg string // host:port
}

func newImageRig(t *testing.T) *imageRig {
	ctx := testCtx(t)
	e, err := registry.StartEmbeddedWith(ctx, registry.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	h := newHarness(t, func(s *api.Server) { s.Images = openRegistry{} })
	return &imageRig{harness: h, reg: e.Addr()}
}

// openRegistry reads images anonymously, as the registry is open.
type openRegistry struct{}

func (openRegistry) Inspect(ctx context.Context, b model.Build, platform string) (model.Image, error) {
	return registry.Client{}.Inspect(ctx, b.Image, b.Digest, platform)
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// rawManifest is a manifest or index the test wrote by hand.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// push uploads config and layers to repository (acme/demo) and puts an OCI
// manifest naming them; it answers the manifest's digest and size.
func (r *imageRig) push(repository, config string, layers ...[]byte) (string, int64) {
	r.t.Helper()
	repo, err := name.NewRepository(r.reg+"/"+repository, name.Insecure)
	if err != nil {
		r.t.Fatal(err)
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: r.blob(repo, []byte(config), types.OCIConfigJSON)}
	for _, l := range layers {
		m.Layers = append(m.Layers, r.blob(repo, l, types.OCILayer))
	}
	raw, err := json.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	return r.put(repo, rawManifest{raw, types.OCIManifestSchema1}), int64(len(raw))
}

func (r *imageRig) blob(repo name.Repository, b []byte, mt types.MediaType) v1.Descriptor {
	r.t.Helper()
	l := static.NewLayer(b, mt)
	if err := remote.WriteLayer(repo, l, remote.WithContext(testCtx(r.t))); err != nil {
		r.t.Fatalf("push blob: %v", err)
	}
	h, err := v1.NewHash(digestOf(b))
	if err != nil {
		r.t.Fatal(err)
	}
	return v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: h}
}

func (r *imageRig) put(repo name.Repository, m rawManifest) string {
	r.t.Helper()
	digest := digestOf(m.raw)
	ref, err := name.NewDigest(repo.String()+"@"+digest, name.Insecure)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := remote.Put(ref, m, remote.WithContext(testCtx(r.t))); err != nil {
		r.t.Fatalf("put manifest: %v", err)
	}
	return digest
}

// build stores a build of rule on the main branch made at minute n.
func (r *imageRig) build(id string, n int, rule model.Rule, status, digest string, change ...func(*model.Build)) model.Build {
	r.t.Helper()
	b := model.Build{
		ID: id, RepoID: "r1", Org: "acme", Ref: "refs/heads/main", Commit: strings.Repeat("1", 40), Status: status,
		Image: r.reg + "/acme/demo", Tags: []string{"latest"}, Digest: digest, Rule: rule, Rules: []int{0},
		CloneURL: "https://git.example/acme/demo.git", Trigger: "webhook", CreatedAt: base.Add(time.Duration(n) * time.Minute),
	}
	for _, c := range change {
		c(&b)
	}
	if _, err := r.store.CreateBuild(testCtx(r.t), b); err != nil {
		r.t.Fatal(err)
	}
	return b
}

var mainRule = model.Rule{SourceType: "branch", Source: "main", Tags: []string{"latest"}, Dockerfile: "Dockerfile", Context: "."}

// image asks for a build's image as the typed client does.
func (r *imageRig) image(id, platform string) api.ImageInfo {
	r.t.Helper()
	info, err := r.client.Image(testCtx(r.t), id, platform)
	if err != nil {
		r.t.Fatalf("Image(%s, %q): %v", id, platform, err)
	}
	return info
}

// The image page of a build: its config, each history entry with the
// layer it made and that layer's size, the entries that made none with
// size 0, and the total; the first build of its rule has nothing to be
// compared with.
func TestImageShowsConfigLayersAndHistory(t *testing.T) {
	r := newImageRig(t)
	if len(configV1) != 515 {
		t.Fatalf("configV1 is %d bytes; the expected sizes below assume 515", len(configV1))
	}
	digest, _ := r.push("acme/demo", configV1, layerBase, layerDeps)
	r.build("b1", 1, mainRule, model.StatusSucceeded, digest)

	code, _, raw := r.do("GET", "/api/v1/builds/b1/image", testToken, "")
	if code != http.StatusOK {
		t.Fatalf("GET image: HTTP %d %s", code, raw)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"image", "digest", "platform", "config", "layers", "history_only", "total_size", "previous", "diff", "warnings"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("answer has no %q: %s", k, raw)
		}
	}
	if string(keys["previous"]) != "null" || string(keys["diff"]) != "null" || string(keys["warnings"]) != "[]" {
		t.Errorf("previous %s, diff %s, warnings %s; want null, null, [] for a rule's first build", keys["previous"], keys["diff"], keys["warnings"])
	}

	want := api.ImageInfo{
		Image: r.reg + "/acme/demo", Digest: digest, Manifest: digest, Platform: "linux/amd64",
		Config: model.ImageConfig{
			Entrypoint: []string{"/bin/app"}, Cmd: []string{"serve", "--port", "8080"},
			Env:        []string{"PATH=/usr/bin:/bin", "MODE=prod"},
			Labels:     map[string]string{"org.opencontainers.image.revision": "1111111111111111111111111111111111111111"},
			WorkingDir: "/srv", User: "65532", ExposedPorts: []string{"443/tcp", "8080/tcp"},
		},
		Layers: []model.Layer{
			{Digest: digestOf(layerBase), Size: 1000, CreatedBy: "ADD base.tar / # buildkit"},
			{CreatedBy: "ENV MODE=prod", EmptyLayer: true},
			{Digest: digestOf(layerDeps), Size: 2000, CreatedBy: "RUN /bin/sh -c make deps # buildkit"},
		},
		HistoryOnly: []model.Layer{{CreatedBy: "ENV MODE=prod", EmptyLayer: true}},
		ConfigSize:  515,
		TotalSize:   3515, // 1000 + 2000 + the config's 515
		Warnings:    []string{},
	}
	if got := r.image("b1", ""); !reflect.DeepEqual(got, want) {
		t.Errorf("image =\n %+v\nwant\n %+v", got, want)
	}
}

// The previous build is the newest earlier one of the same rule that
// pushed an image: not a build of another rule, not a failed one. The diff
// names the layers added and removed and the bytes added.
func TestImageDiffsWithThePreviousBuildOfTheSameRule(t *testing.T) {
	r := newImageRig(t)
	if len(configV2) != 266 {
		t.Fatalf("configV2 is %d bytes; the expected sizes below assume 266", len(configV2))
	}
	v1Digest, _ := r.push("acme/demo", configV1, layerBase, layerDeps)
	otherDigest, _ := r.push("acme/demo", configArm, layerArm)
	v2Digest, _ := r.push("acme/demo", configV2, layerBase, layerBuild)
	other := mainRule
	other.Dockerfile = "release.Dockerfile"
	r.build("first", 1, mainRule, model.StatusSucceeded, v1Digest)
	r.build("otherrule", 2, other, model.StatusSucceeded, otherDigest)
	r.build("failed", 3, mainRule, model.StatusFailed, "")
	warning := "image grew by 34.3% (from 3.5 kB to 4.7 kB; warn above 10%)"
	r.build("second", 4, mainRule, model.StatusSucceeded, v2Digest, func(b *model.Build) {
		b.ImageSize, b.Warnings = 4722, []string{warning}
	})

	got := r.image("second", "")
	if got.TotalSize != 4722 { // 1000 + 3456 + the config's 266
		t.Errorf("total_size = %d, want 4722", got.TotalSize)
	}
	wantLayers := []model.Layer{
		{Digest: digestOf(layerBase), Size: 1000, CreatedBy: "ADD base.tar / # buildkit"},
		{Digest: digestOf(layerBuild), Size: 3456, CreatedBy: "RUN /bin/sh -c make build # buildkit"},
		{CreatedBy: `CMD ["serve"]`, EmptyLayer: true},
	}
	if !reflect.DeepEqual(got.Layers, wantLayers) {
		t.Errorf("layers = %+v, want %+v", got.Layers, wantLayers)
	}
	wantPrev := &api.PreviousImage{Build: "first", Digest: v1Digest, TotalSize: 3515}
	if !reflect.DeepEqual(got.Previous, wantPrev) {
		t.Errorf("previous = %+v, want %+v", got.Previous, wantPrev)
	}
	wantDiff := &api.ImageDiff{Added: []string{digestOf(layerBuild)}, Removed: []string{digestOf(layerDeps)}, AddedBytes: 3456}
	if !reflect.DeepEqual(got.Diff, wantDiff) {
		t.Errorf("diff = %+v, want %+v", got.Diff, wantDiff)
	}
	if !slices.Equal(got.Warnings, []string{warning}) {
		t.Errorf("warnings = %q, want the build's %q", got.Warnings, warning)
	}

	// The build of the other rule has no earlier build of its own.
	if o := r.image("otherrule", ""); o.Previous != nil || o.Diff != nil {
		t.Errorf("other rule's build: previous %+v, diff %+v; want none", o.Previous, o.Diff)
	}
}

// A previous build whose image is gone from the registry is still named,
// with the size it recorded, but there is nothing to diff.
func TestImagePreviousGoneFromTheRegistry(t *testing.T) {
	r := newImageRig(t)
	v2Digest, _ := r.push("acme/demo", configV2, layerBase, layerBuild)
	gone := "sha256:" + strings.Repeat("0", 64)
	r.build("first", 1, mainRule, model.StatusSucceeded, gone, func(b *model.Build) { b.ImageSize = 3515 })
	r.build("second", 2, mainRule, model.StatusSucceeded, v2Digest)
	got := r.image("second", "")
	if want := (&api.PreviousImage{Build: "first", Digest: gone, TotalSize: 3515}); !reflect.DeepEqual(got.Previous, want) || got.Diff != nil {
		t.Errorf("previous %+v, diff %+v; want %+v and no diff", got.Previous, got.Diff, want)
	}
}

// A multi-platform image answers linux/amd64 unless asked for another of
// its platforms; BuildKit's attestation manifest is never one.
func TestImagePicksAPlatformOfAnIndex(t *testing.T) {
	r := newImageRig(t)
	repo, err := name.NewRepository(r.reg+"/acme/demo", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	armDigest, armSize := r.push("acme/demo", configArm, layerArm)
	amdDigest, amdSize := r.push("acme/demo", configV1, layerBase, layerDeps)
	attDigest, attSize := r.push("acme/demo", `{"architecture":"unknown","os":"unknown","config":{}}`, []byte("provenance"))
	desc := func(d string, size int64, p v1.Platform, ann map[string]string) v1.Descriptor {
		h, err := v1.NewHash(d)
		if err != nil {
			t.Fatal(err)
		}
		return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: size, Platform: &p, Annotations: ann}
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{
		desc(armDigest, armSize, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, nil),
		desc(amdDigest, amdSize, v1.Platform{OS: "linux", Architecture: "amd64"}, nil),
		desc(attDigest, attSize, v1.Platform{OS: "unknown", Architecture: "unknown"},
			map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amdDigest}),
	}}
	raw, err := json.Marshal(index)
	if err != nil {
		t.Fatal(err)
	}
	indexDigest := r.put(repo, rawManifest{raw, types.OCIImageIndex})
	r.build("multi", 1, mainRule, model.StatusSucceeded, indexDigest)

	platforms := []string{"linux/arm64/v8", "linux/amd64"}
	amd := r.image("multi", "")
	if amd.Digest != indexDigest || amd.Manifest != amdDigest || amd.Platform != "linux/amd64" || !slices.Equal(amd.Platforms, platforms) || amd.TotalSize != 3515 {
		t.Errorf("default platform: digest %s manifest %s platform %s platforms %v total %d; want %s %s linux/amd64 %v 3515",
			amd.Digest, amd.Manifest, amd.Platform, amd.Platforms, amd.TotalSize, indexDigest, amdDigest, platforms)
	}
	arm := r.image("multi", "linux/arm64")
	wantArm := []model.Layer{{Digest: digestOf(layerArm), Size: 1500}}
	if arm.Manifest != armDigest || arm.Platform != "linux/arm64/v8" || !reflect.DeepEqual(arm.Layers, wantArm) || arm.TotalSize != 1590 {
		t.Errorf("linux/arm64: manifest %s platform %s layers %+v total %d; want %s linux/arm64/v8 %+v 1590 (1500 + the config's 90)",
			arm.Manifest, arm.Platform, arm.Layers, arm.TotalSize, armDigest, wantArm)
	}

	for platform, want := range map[string]struct {
		code int
		msg  string
	}{
		"windows/amd64": {http.StatusNotFound, "registry: inspect " + r.reg + "/acme/demo@" + indexDigest +
			": no such platform in the image: windows/amd64 (the image has linux/arm64/v8, linux/amd64)"},
		"unknown/unknown": {http.StatusNotFound, "registry: inspect " + r.reg + "/acme/demo@" + indexDigest +
			": no such platform in the image: unknown/unknown (the image has linux/arm64/v8, linux/amd64)"},
		"linux": {http.StatusBadRequest, "platform: want os/arch[/variant] such as linux/amd64, got linux"},
	} {
		code, _, raw := r.do("GET", "/api/v1/builds/multi/image?platform="+platform, testToken, "")
		if code != want.code || errorOf(t, raw) != want.msg {
			t.Errorf("?platform=%s: HTTP %d %s, want %d %q", platform, code, raw, want.code, want.msg)
		}
	}
}

// A build without an image answers why; an image the registry lost is
// 404.
func TestImageOfABuildWithoutOne(t *testing.T) {
	r := newImageRig(t)
	r.build("running", 1, mainRule, model.StatusRunning, "")
	r.build("failed", 2, mainRule, model.StatusFailed, "")
	r.build("fork", 3, mainRule, model.StatusSucceeded, "", func(b *model.Build) {
		b.PullRequest = &model.PullRequest{Number: 7, Head: strings.Repeat("2", 40), Base: "main", Fork: true}
	})
	lost := "sha256:" + strings.Repeat("0", 64)
	r.build("lost", 4, mainRule, model.StatusSucceeded, lost)
	for id, want := range map[string]struct {
		code int
		msg  string
	}{
		"running": {http.StatusConflict, "build running has pushed no image yet: it is running"},
		"failed":  {http.StatusConflict, "build failed pushed no image: it ended failed"},
		"fork":    {http.StatusConflict, "build fork is a pull request from a fork: it was built and tested, never pushed, so it has no image"},
		"lost":    {http.StatusNotFound, "registry: inspect " + r.reg + "/acme/demo@" + lost + ": no such image in the registry"},
		"missing": {http.StatusNotFound, "not found"},
	} {
		code, _, raw := r.do("GET", "/api/v1/builds/"+id+"/image", testToken, "")
		if code != want.code || errorOf(t, raw) != want.msg {
			t.Errorf("GET %s/image: HTTP %d %s, want %d %q", id, code, raw, want.code, want.msg)
		}
	}
}
