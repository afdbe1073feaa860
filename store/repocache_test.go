package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/store"
)

// cancelled is a context a read from NATS fails with at once: a lookup
// that succeeds with it was answered from memory.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// waitForgotten waits until the cache no longer answers acme/cached from
// memory, for at most five seconds.
func waitForgotten(t *testing.T, c *store.RepoCache) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := c.FindRepo(cancelled(), "github", "acme/cached"); err != nil {
			return
		}
	}
	t.Fatal("the cache still answers acme/cached from memory 5s after another process changed it")
}

// waitCached reads acme/cached until the cache answers it from memory:
// a read that raced with a change's watch event is not kept.
func waitCached(t *testing.T, c *store.RepoCache) model.Repo {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := c.FindRepo(context.Background(), "github", "acme/cached"); err != nil {
			t.Fatal(err)
		}
		if r, err := c.FindRepo(cancelled(), "github", "acme/cached"); err == nil {
			return r
		}
	}
	t.Fatal("acme/cached is not answered from memory after 5s of reading it")
	return model.Repo{}
}

// The cache answers a repository from memory once read, forgets it when
// another process (another Store on the same NATS) changes it, and then
// answers the new record.
func TestRepoCacheForgetsWhatAnotherProcessChanges(t *testing.T) {
	srv := startServer(t, t.TempDir())
	here, there := openStore(t, srv), openStore(t, srv)
	ctx := testCtx(t)
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	c, err := here.WatchRepos(watchCtx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindRepo(ctx, "github", "acme/cached"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindRepo of an unregistered repository: %v, want ErrNotFound", err)
	}
	if err := there.CreateRepo(ctx, secretRepo("r-cached", "acme/cached")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindRepo(cancelled(), "github", "acme/cached"); err == nil {
		t.Fatal("a repository never read was answered without reading NATS")
	}
	if r := waitCached(t, c); r.ID != "r-cached" || r.WebhookSecret != plainWebhook {
		t.Fatalf("FindRepo = %s secret %q, want r-cached with the opened secret", r.ID, r.WebhookSecret)
	}

	if _, err := there.UpdateRepo(ctx, "r-cached", func(r *model.Repo) error { r.WebhookSecret = "rotated"; return nil }); err != nil {
		t.Fatal(err)
	}
	waitForgotten(t, c)
	if r := waitCached(t, c); r.WebhookSecret != "rotated" {
		t.Fatalf("FindRepo after the rotation: secret %q, want rotated", r.WebhookSecret)
	}

	if err := there.DeleteRepo(ctx, "r-cached"); err != nil {
		t.Fatal(err)
	}
	waitForgotten(t, c)
	if _, err := c.FindRepo(ctx, "github", "acme/cached"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindRepo after the deletion: %v, want ErrNotFound", err)
	}
}

// Once its watch ends, the cache keeps nothing: every lookup reads NATS.
func TestRepoCacheWithoutItsWatchKeepsNothing(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	watchCtx, stop := context.WithCancel(ctx)
	c, err := s.WatchRepos(watchCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRepo(ctx, secretRepo("r-cached", "acme/cached")); err != nil {
		t.Fatal(err)
	}
	waitCached(t, c)
	stop()
	waitForgotten(t, c)
	if _, err := c.FindRepo(ctx, "github", "acme/cached"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindRepo(cancelled(), "github", "acme/cached"); err == nil {
		t.Error("a repository was answered from memory after the watch ended")
	}
}
