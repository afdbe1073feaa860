package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/slipway-build/slipway/registry"
	"github.com/slipway-build/slipway/store"
)

// RegistryReader reads the embedded registry for the registry browser
// (registry.Browser).
type RegistryReader interface {
	Catalog(ctx context.Context) ([]string, error)
	TagNames(ctx context.Context, repository string) ([]string, error)
	Tags(ctx context.Context, repository string) ([]registry.Tag, error)
}

// TagOwners answer which build pushed what a tag names (package store).
type TagOwners interface {
	TagOwner(ctx context.Context, image, tag string) (store.TagOwner, bool, error)
}

// Image is one image of the registry browser.
type Image struct {
	Organization string `json:"organization"`
	// Name is the image's path on the registry (acme/demo), Image the
	// whole name (host/acme/demo).
	Name  string `json:"name"`
	Image string `json:"image"`
	// Repo is the id of the repository that builds it, "" for an image
	// pushed by hand (or one whose repository the caller may not read).
	Repo   string `json:"repo"`
	Public bool   `json:"public"`
	Tags   int    `json:"tags"`
}

// ImageTag is one tag of an image.
type ImageTag struct {
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	// Build is the build that pushed Digest under the tag, "" when no
	// build did (pushed by hand, or moved since).
	Build string `json:"build"`
}

// tagCounters is how many images' tags are listed at once.
const tagCounters = 4

// listImages answers the images of the embedded registry the caller may
// read: its organizations' and the public ones, ?org= of one
// organization, ?q= whose name holds the text (any case).
func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	known, err := s.knownImages(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	org, q := r.URL.Query().Get("org"), strings.ToLower(r.URL.Query().Get("q"))
	out := []Image{}
	for _, im := range known {
		if !s.mayRead(r, im) || (org != "" && im.Organization != org) || !strings.Contains(strings.ToLower(im.Name), q) {
			continue
		}
		if !sees(r, im.Organization) {
			im.Repo = "" // another organization's repository is not shown to exist
		}
		out = append(out, im)
	}
	if err := s.countTags(r.Context(), out); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// imageTags answers the tags of the image {org}/{name...}, each with the
// build that pushed it.
func (s *Server) imageTags(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutSuffix(r.PathValue("path"), "/tags")
	if !ok {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	known, err := s.knownImages(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(known, func(im Image) bool { return im.Name == path })
	if i < 0 || !s.mayRead(r, known[i]) {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	out, err := s.tagsOf(r.Context(), known[i])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// mayRead reports whether the caller may see im: read in its
// organization, or the image is public, which anyone may pull.
func (s *Server) mayRead(r *http.Request, im Image) bool {
	return im.Public || sees(r, im.Organization)
}

// knownImages are the images of the embedded registry, sorted by name:
// the repositories' images on it, the organizations' public images and
// what the registry holds. Without an embedded registry there are none.
func (s *Server) knownImages(ctx context.Context) ([]Image, error) {
	if s.RegistryHost == "" {
		return nil, nil
	}
	byName := map[string]*Image{}
	add := func(name string) *Image {
		im, ok := byName[name]
		if !ok {
			org, _, _ := strings.Cut(name, "/")
			im = &Image{Organization: org, Name: name, Image: s.RegistryHost + "/" + name}
			byName[name] = im
		}
		return im
	}
	repos, err := s.Repos.ListRepos(ctx)
	if err != nil {
		return nil, err
	}
	for _, repo := range repos {
		if name, ok := s.onRegistry(repo.Image); ok {
			im := add(name)
			im.Repo, im.Public = repo.ID, im.Public || repo.PublicImage
		}
	}
	orgs, err := s.Orgs.ListOrgs(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		for _, name := range o.PublicImages {
			add(name).Public = true
		}
	}
	if s.Registry != nil {
		names, err := s.Registry.Catalog(ctx)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			add(name)
		}
	}
	out := make([]Image, 0, len(byName))
	for _, im := range byName {
		out = append(out, *im)
	}
	slices.SortFunc(out, func(a, b Image) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// onRegistry is image's path when it lives on the embedded registry.
func (s *Server) onRegistry(image string) (string, bool) {
	host, name, ok := strings.Cut(image, "/")
	return name, ok && name != "" && strings.EqualFold(host, s.RegistryHost)
}

// countTags fills in each image's number of tags, a few images at a time.
func (s *Server) countTags(ctx context.Context, images []Image) error {
	if s.Registry == nil {
		return nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		slots = make(chan struct{}, tagCounters)
	)
	for i := range images {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			tags, err := s.Registry.TagNames(ctx, images[i].Name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			images[i].Tags = len(tags)
		}()
	}
	wg.Wait()
	return first
}

// tagsOf lists im's tags with the builds that pushed them: a tag's owner
// (the build that last claimed it) when it names the digest the tag holds.
func (s *Server) tagsOf(ctx context.Context, im Image) ([]ImageTag, error) {
	out := []ImageTag{}
	if s.Registry == nil {
		return out, nil
	}
	tags, err := s.Registry.Tags(ctx, im.Name)
	if err != nil {
		return nil, err
	}
	for _, t := range tags {
		it := ImageTag{Tag: t.Name, Digest: t.Digest}
		if s.TagOwners != nil {
			owner, ok, err := s.TagOwners.TagOwner(ctx, im.Image, t.Name)
			if err != nil {
				return nil, err
			}
			if ok && owner.Digest == t.Digest {
				it.Build = owner.BuildID
			}
		}
		out = append(out, it)
	}
	return out, nil
}
