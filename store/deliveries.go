package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// for the repository. Keys are made of letters, digits and dots.
func (s *Store) SeenDelivery(ctx context.Context, repoID string, keys []string) (Delivery, bool, error) {
	for _, k := range keys {
		e, err := s.deliveries.Get(ctx, repoID+"."+k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return Delivery{}, false, fmt.Errorf("read delivery %s of repo %s: %w", k, repoID, err)
		}
		var d Delivery
		if err := json.Unmarshal(e.Value(), &d); err != nil {
			return Delivery{}, false, fmt.Errorf("decode delivery %s of repo %s: %w", k, repoID, err)
		}
		return d, true, nil
	}
	return Delivery{}, false, nil
}

// RecordDelivery records what a delivery made under each of keys.
func (s *Store) RecordDelivery(ctx context.Context, repoID string, keys []string, d Delivery) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	for _, k := range keys {
		if _, err := s.deliveries.Put(ctx, repoID+"."+k, raw); err != nil {
			return fmt.Errorf("record delivery %s of repo %s: %w", k, repoID, err)
		}
	}
	return nil
}
