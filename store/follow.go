package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
)

// followIdle is how long the server keeps a follower's consumer once
// nobody asks it for messages: the process that followed may have died
// before it could delete the consumer itself.
const followIdle = 30 * time.Second

// followBatch bounds what one follower holds in memory: this many chunks
// of at most 64 KiB.
const followBatch = 32

// FollowLog hands fn a build's log from byte offset on: the chunks stored
// so far, then each chunk as it is appended, until ctx ends (its error is
// returned then) or fn fails. end is the byte offset in the whole log just
// after chunk; a chunk that holds offset is cut to the bytes after it, and
// chunks before it are not handed on. The consumer is deleted when it
// returns, so a follower that leaves leaves nothing behind.
func (s *Store) FollowLog(ctx context.Context, buildID string, offset int64, fn func(chunk []byte, end int64) error) error {
	c, err := s.logs.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{logsPrefix + buildID}, InactiveThreshold: followIdle,
	})
	if err != nil {
		return fmt.Errorf("follow log of %s: %w", buildID, err)
	}
	it, err := c.Messages(jetstream.PullMaxMessages(followBatch))
	if err != nil {
		return fmt.Errorf("follow log of %s: %w", buildID, err)
	}
	defer s.dropConsumer(c, it.Stop)
	var pos int64
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("follow log of %s: %w", buildID, err)
		}
		data := msg.Data()
		start := pos
		pos += int64(len(data))
		if pos <= offset {
			continue
		}
		if start < offset {
			data = data[offset-start:]
		}
		if err := fn(data, pos); err != nil {
			return err
		}
	}
}

// dropConsumer stops a consumer's delivery and deletes it on the server
// at once, rather than leaving it for its inactive threshold.
func (s *Store) dropConsumer(c jetstream.Consumer, stop func()) {
	if stop != nil {
		stop()
	}
	info := c.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.logs.DeleteConsumer(ctx, info.Name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		// The server drops it on its own after the inactive threshold.
		s.logger.Debug("delete a log consumer", "consumer", info.Name, "err", err)
	}
}

// Followers is how many consumers read build logs or watch build records
// now: a follower that left must have left none behind.
func (s *Store) Followers(ctx context.Context) (int, error) {
	logs, err := s.logs.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", LogsStream, err)
	}
	builds, err := s.builds.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("bucket %s: %w", buildsBucket, err)
	}
	kv, ok := builds.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, fmt.Errorf("bucket %s: unexpected status %T", buildsBucket, builds)
	}
	return logs.State.Consumers + kv.StreamInfo().State.Consumers, nil
}

// WatchBuild sends a build's record as it is now, then again after each
// change, until ctx ends; the channel is closed then (or when the watch
// ends otherwise, the connection to NATS closed). A deleted record is not
// sent.
func (s *Store) WatchBuild(ctx context.Context, id string) (<-chan model.Build, error) {
	w, err := s.builds.Watch(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("watch build %s: %w", id, err)
	}
	out := make(chan model.Build)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue // the end of the initial values, or a delete
			}
			var b model.Build
			if err := json.Unmarshal(e.Value(), &b); err != nil {
				s.logger.Warn("watch build: undecodable record", "build", id, "err", err)
				continue
			}
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
