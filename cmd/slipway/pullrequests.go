package main

import (
	"context"

	"github.com/slipway-build/slipway/queue"
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

func (p pullRequests) Cancel(ctx context.Context, id, reason, by string) (bool, error) {
	return p.q.Cancel(ctx, id, reason, by)
}
