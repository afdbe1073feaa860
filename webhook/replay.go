package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/store"
)

// Deliveries remembers, per repository, what each push delivery made, under
// the host's delivery id and under a digest of the signed body: a host's
// redelivery and a replay of a captured body under a new delivery id are
// both answered from the record, and neither queues anything.
type Deliveries interface {
	// SeenDelivery answers what the first delivery recorded under any of
	// keys made.
	SeenDelivery(ctx context.Context, repoID string, keys []string) (store.Delivery, bool, error)
	RecordDelivery(ctx context.Context, repoID string, keys []string, d store.Delivery) error
}

// deliveryKeys names a delivery by its id and by its body. The id is
// hashed so that whatever a host puts there makes a valid key.
func deliveryKeys(deliveryID string, body []byte) []string {
	sum := sha256.Sum256(body)
	keys := []string{"body." + hex.EncodeToString(sum[:])}
	if deliveryID != "" {
		id := sha256.Sum256([]byte(deliveryID))
		keys = append(keys, "id."+hex.EncodeToString(id[:]))
	}
	return keys
}

// seen answers a delivery recorded before. A failure to look is logged and
// the delivery treated as new: the builds' identity still makes a replay
// build nothing, and queueing needs NATS anyway.
func (h *Handler) seen(ctx context.Context, repo model.Repo, keys []string, log *slog.Logger) (Answer, bool) {
	if h.Deliveries == nil {
		return Answer{}, false
	}
	d, ok, err := h.Deliveries.SeenDelivery(ctx, repo.ID, keys)
	if err != nil {
		log.Warn("look up earlier deliveries", "err", err)
		return Answer{}, false
	}
	if !ok {
		return Answer{}, false
	}
	ans := Answer{Builds: d.Builds, Skipped: d.Skipped}
	if ans.Builds == nil {
		ans.Builds = []string{}
	}
	return ans, true
}

// remember records what a delivery made; a failure costs only the shortcut.
func (h *Handler) remember(ctx context.Context, repo model.Repo, keys []string, ans Answer, log *slog.Logger) {
	if h.Deliveries == nil {
		return
	}
	if err := h.Deliveries.RecordDelivery(ctx, repo.ID, keys, store.Delivery{Builds: ans.Builds, Skipped: ans.Skipped}); err != nil {
		log.Warn("record the delivery", "err", err)
	}
}
