package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/seal"
)

// SetKeys replaces the keyring records are sealed and opened with. Rotation
// swaps in the new key with the old ones behind it, reseals, then swaps in
// the new key alone; readers never see a half-made keyring.
func (s *Store) SetKeys(kr *seal.Keyring) {
	if kr != nil {
		s.keys.Store(kr)
	}
}

// Keys is the keyring in use.
func (s *Store) Keys() *seal.Keyring { return s.keys.Load() }

// secretField is one secret of a repository and the context its sealed
// value is bound to, so that it cannot be moved to another field or record.
type secretField struct {
	context string
	value   *string
}

// secretFields are every secret a repository carries. A new secret field
// of model.Repo belongs here, or it is stored in the clear.
func secretFields(r *model.Repo) []secretField {
	ctx := func(field string) string { return "repo/" + r.ID + "/" + field }
	f := []secretField{
		{ctx("webhook_secret"), &r.WebhookSecret},
		{ctx("token"), &r.Token},
		{ctx("ssh_key"), &r.SSHKey},
		{ctx("badge_key"), &r.BadgeKey},
	}
	for i := range r.Hooks {
		f = append(f, secretField{ctx("hooks/" + strconv.Itoa(i) + "/secret"), &r.Hooks[i].Secret})
	}
	return f
}

// withOwnHooks is r with a copy of its hooks, so that sealing or opening
// them does not write through to the caller's slice.
func withOwnHooks(r model.Repo) model.Repo {
	if r.Hooks != nil {
		r.Hooks = append([]model.Hook(nil), r.Hooks...)
	}
	return r
}

// sealRepo is r with every secret sealed under the primary key.
func sealRepo(kr *seal.Keyring, r model.Repo) (model.Repo, error) {
	r = withOwnHooks(r)
	for _, f := range secretFields(&r) {
		if seal.IsSealed(*f.value) {
			// Sealing twice would hide a caller's mistake and cost a
			// second rotation; a sealed value only ever comes from here.
			return r, fmt.Errorf("seal %s: the value is sealed already", f.context)
		}
		v, err := kr.Seal(*f.value, f.context)
		if err != nil {
			return r, err
		}
		*f.value = v
	}
	return r, nil
}

// openRepo is r with every secret opened; values written in the clear by a
// Slipway older than sealing are returned as they are.
func openRepo(kr *seal.Keyring, r model.Repo) (model.Repo, error) {
	r = withOwnHooks(r)
	for _, f := range secretFields(&r) {
		v, err := kr.Open(*f.value, f.context)
		if err != nil {
			return r, err
		}
		*f.value = v
	}
	return r, nil
}

// sealedUnder reports whether every secret of the stored r is sealed under
// the key id (or empty), so that Reseal can leave it alone.
func sealedUnder(r model.Repo, id string) bool {
	for _, f := range secretFields(&r) {
		if *f.value != "" && seal.SealedWith(*f.value) != id {
			return false
		}
	}
	return true
}

// repoCodec stores repositories sealed and reads them opened, with the
// keyring current at each call.
func (s *Store) repoCodec() codec[model.Repo] {
	return codec[model.Repo]{
		decode: func(raw []byte, r *model.Repo) error {
			var stored model.Repo
			if err := json.Unmarshal(raw, &stored); err != nil {
				return err
			}
			opened, err := openRepo(s.keys.Load(), stored)
			*r = opened
			return err
		},
		encode: func(r model.Repo) ([]byte, error) {
			sealed, err := sealRepo(s.keys.Load(), r)
			if err != nil {
				return nil, err
			}
			return json.Marshal(sealed)
		},
	}
}

// Reseal seals every secret of every repository under the keyring's
// primary key, plaintext from older Slipways included, with compare-and-set
// so that concurrent updates are neither lost nor left under an old key.
// It answers how many records it rewrote; records already sealed under the
// primary key are left alone.
func (s *Store) Reseal(ctx context.Context) (int, error) {
	keys, err := s.repos.ListKeysFiltered(ctx, "id.*")
	if err != nil {
		return 0, fmt.Errorf("reseal: list repos: %w", err)
	}
	var names []string
	for k := range keys.Keys() {
		names = append(names, k)
	}
	n := 0
	for _, k := range names {
		changed, err := s.resealOne(ctx, k)
		if err != nil {
			return n, fmt.Errorf("reseal %s: %w", k, err)
		}
		if changed {
			n++
		}
	}
	if n > 0 {
		// Plaintext and values under old keys were overwritten, but
		// their bytes are still in NATS's files.
		s.forget(ctx)
	}
	return n, nil
}

func (s *Store) resealOne(ctx context.Context, key string) (bool, error) {
	for {
		e, err := s.repos.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil // deleted since the listing
		}
		if err != nil {
			return false, fmt.Errorf("read: %w", err)
		}
		var stored model.Repo
		if err := json.Unmarshal(e.Value(), &stored); err != nil {
			return false, fmt.Errorf("decode: %w", err)
		}
		kr := s.keys.Load()
		if sealedUnder(stored, kr.PrimaryID()) {
			return false, nil
		}
		opened, err := openRepo(kr, stored)
		if err != nil {
			return false, err
		}
		raw, err := s.repoCodec().encode(opened)
		if err != nil {
			return false, err
		}
		_, err = s.repos.Update(ctx, key, raw, e.Revision())
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false, fmt.Errorf("update: %w", err)
		}
	}
}
