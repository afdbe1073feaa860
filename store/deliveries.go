package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DeliveryWindow is how long a webhook delivery is remembered: longer than
// the hosts let anyone redeliver (GitHub: three days). A body replayed
// after that names builds that exist already, and builds nothing new.
const DeliveryWindow = 7 * 24 * time.Hour

const deliveriesBucket = "slipway_deliveries"

// Delivery is what a webhook delivery made.
type Delivery struct {
	Builds  []string `json:"builds"`
	Skipped []string `json:"skipped,omitempty"`
}

func deliveriesKV(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: deliveriesBucket, Storage: jetstream.FileStorage, Replicas: replicas, History: 1, TTL: DeliveryWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", deliveriesBucket, err)
	}
	return kv, nil
}

// SeenDelivery answers the delivery recorded under the first of keys found
// for the repository. Keys are made of letters, digits and dots. They are
// read at once: one round trip to NATS, not one per key.
func (s *Store) SeenDelivery(ctx context.Context, repoID string, keys []string) (Delivery, bool, error) {
	entries, errs := make([]jetstream.KeyValueEntry, len(keys)), make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			entries[i], errs[i] = s.deliveries.Get(ctx, repoID+"."+k)
		}()
	}
	wg.Wait()
	for i, k := range keys {
		if errors.Is(errs[i], jetstream.ErrKeyNotFound) {
			continue
		}
		if errs[i] != nil {
			return Delivery{}, false, fmt.Errorf("read delivery %s of repo %s: %w", k, repoID, errs[i])
		}
		var d Delivery
		if err := json.Unmarshal(entries[i].Value(), &d); err != nil {
			return Delivery{}, false, fmt.Errorf("decode delivery %s of repo %s: %w", k, repoID, err)
		}
		return d, true, nil
	}
	return Delivery{}, false, nil
}

// RecordDelivery records what a delivery made under each of keys, all at
// once.
func (s *Store) RecordDelivery(ctx context.Context, repoID string, keys []string, d Delivery) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.deliveries.Put(ctx, repoID+"."+k, raw); err != nil {
				errs[i] = fmt.Errorf("record delivery %s of repo %s: %w", k, repoID, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
