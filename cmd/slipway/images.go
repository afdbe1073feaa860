package main

import (
	"context"
	"fmt"
	"time"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/regauth"
	"github.com/slipway-build/slipway/registry"
)

// readTTL bounds a read pass: it reads one image page's manifests and
// configs, at once.
const readTTL = 2 * time.Minute

// imageReader is the API's api.Images: it reads a build's image through
// the registry client the workers use (behind the same outbound guard),
// logged in as readLogin says.
type imageReader struct {
	client registry.Client
	login  func(ctx context.Context, b model.Build) (builder.Credentials, error)
}

func (r imageReader) Inspect(ctx context.Context, b model.Build, platform string) (model.Image, error) {
	creds, err := r.login(ctx, b)
	if err != nil {
		return model.Image{}, fmt.Errorf("registry credentials for %s: %w", b.Image, err)
	}
	c := r.client
	c.Credentials = creds
	return c.Inspect(ctx, b.Image, b.Digest, platform)
}

// readLogin is registryLogin for reading an image: on the embedded
// registry a short ReadPass for the image's repository alone, elsewhere
// the organization's stored logins.
func readLogin(srv *regauth.Server, host string, stored storedLogins) func(ctx context.Context, b model.Build) (builder.Credentials, error) {
	return loginWith(srv, host, stored, func(_ context.Context, org, repo string) (string, string) {
		return srv.ReadPass(org, repo, readTTL)
	})
}
