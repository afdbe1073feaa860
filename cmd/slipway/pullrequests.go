package main

import (
	"context"
	"fmt"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/queue"
	"github.com/slipway-build/slipway/registry"
	"github.com/slipway-build/slipway/store"
)

// pullRequests meets webhook.PullRequests: the store knows a pull
// request's newest builds, the queue cancels them (and queues their
// "cancelled" statuses).
type pullRequests struct {
	st *store.Store
	q  *queue.Queue
}

func (p pullRequests) Newest(ctx context.Context, repoID, ref string) (string, []string, error) {
	return p.st.Newest(ctx, repoID, ref)
}

func (p pullRequests) GetBuild(ctx context.Context, id string) (model.Build, error) {
	return p.st.GetBuild(ctx, id)
}

func (p pullRequests) Cancel(ctx context.Context, id, reason, by string) (bool, error) {
	return p.q.Cancel(ctx, id, reason, by)
}

// tagDeleter meets webhook.TagDeleter: it deletes a repository's tags
// with credentials asked for that one deletion (deleteLogin).
type tagDeleter struct {
	client registry.Client
	login  func(ctx context.Context, b model.Build) (builder.Credentials, error)
}

func (d tagDeleter) DeleteTags(ctx context.Context, repo model.Repo, tags []string) error {
	creds, err := d.login(ctx, model.Build{Org: repo.Organization(), Image: repo.Image})
	if err != nil {
		return fmt.Errorf("registry credentials to delete tags of %s: %w", repo.Image, err)
	}
	c := d.client
	c.Credentials = creds
	for _, t := range tags {
		if err := c.Delete(ctx, repo.Image, t); err != nil {
			return err
		}
	}
	return nil
}
