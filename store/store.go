// Package store keeps Slipway's records on NATS JetStream: repositories and
// builds in key-value buckets, with an index of each repository's builds
// (builds.go); the ref index (the newest push of each ref,
// the owner of each tag, the build slots of each repository) in another; and
// build logs in a stream. It knows nothing of work queues. Package queue
// builds on it, never the other way round: a job is always about a record
// written first, so the records are the lower layer and the queue the one
// that combines them with jobs (Enqueue, Cancel).
package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/seal"
)

// Names of the JetStream assets. They are created idempotently at start.
const (
	LogsStream       = "SLIPWAY_LOGS"
	reposBucket      = "slipway_repos"
	buildsBucket     = "slipway_builds"
	buildIndexBucket = "slipway_build_index"
	refsBucket       = "slipway_refs"
	logsPrefix       = "slipway.logs."
)

func nowUTC() time.Time { return time.Now().UTC() }

// ErrNotFound is returned for a missing repository or build.
var ErrNotFound = errors.New("not found")

// Store is Slipway's records on JetStream. It keeps nothing in memory that
// another Slipway process would need.
type Store struct {
	js    jetstream.JetStream
	repos jetstream.KeyValue
	// reposStream is the stream under repos, for erasing a deleted
	// repository's bytes (eraseKey) when erase says it allows that.
	reposStream jetstream.Stream
	erase       bool
	builds      jetstream.KeyValue
	// buildIndex lists each repository's builds newest first (builds.go).
	buildIndex jetstream.KeyValue
	refs       jetstream.KeyValue // newest push per ref, owner per tag, slots
	// deliveries are what each webhook delivery made, for DeliveryWindow.
	deliveries jetstream.KeyValue
	logs       jetstream.Stream
	// keys seal the secrets of repositories; swapped whole on rotation.
	keys   atomic.Pointer[seal.Keyring]
	logger *slog.Logger
}

// Options configures Open.
type Options struct {
	// Replicas is the replica count of streams and buckets (3 on a
	// clustered NATS); 0 means 1.
	Replicas int
	// Keys seal every secret of a repository before it is written and open
	// it when read. Required: a store without keys would keep secrets in
	// the clear.
	Keys *seal.Keyring
	// Logger says when a deleted repository's bytes cannot be erased; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Open creates (or finds) every bucket and the log stream and returns a
// Store on them. Creating is idempotent, so any number of Slipway processes
// may open the same NATS at once; they must share the keys.
func Open(ctx context.Context, nc *nats.Conn, o Options) (*Store, error) {
	if o.Keys == nil {
		return nil, errors.New("store: no keyring; repositories' secrets would be stored in the clear")
	}
	replicas := max(o.Replicas, 1)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s := &Store{js: js, logger: o.Logger}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.keys.Store(o.Keys)
	s.logs, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: LogsStream, Subjects: []string{logsPrefix + ">"}, Storage: jetstream.FileStorage,
		Replicas: replicas, MaxAge: 90 * 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", LogsStream, err)
	}
	if err := s.openRepos(ctx, replicas); err != nil {
		return nil, err
	}
	if s.builds, err = bucket(ctx, js, buildsBucket, replicas); err != nil {
		return nil, err
	}
	if s.buildIndex, err = bucket(ctx, js, buildIndexBucket, replicas); err != nil {
		return nil, err
	}
	if err := s.indexOldBuilds(ctx); err != nil {
		return nil, err
	}
	if s.refs, err = bucket(ctx, js, refsBucket, replicas); err != nil {
		return nil, err
	}
	if s.deliveries, err = deliveriesKV(ctx, js, replicas); err != nil {
		return nil, err
	}
	return s, nil
}

func bucket(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: name, Storage: jetstream.FileStorage, Replicas: replicas, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", name, err)
	}
	return kv, nil
}

// Ping checks that JetStream answers.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// --- repositories ---

// nameKey indexes a repository by host and full name; hex keeps any
// character of a full name legal in a KV key.
func nameKey(provider, fullName string) string {
	return "name." + provider + "." + hex.EncodeToString([]byte(strings.ToLower(fullName)))
}

// imageKey indexes a repository by the image it pushes: an image belongs
// to one repository.
func imageKey(image string) string {
	return "image." + hex.EncodeToString([]byte(strings.ToLower(image)))
}

// claimImage records that r pushes its image; another repository's claim
// is refused. A record without an image (only tests make one) claims none.
func (s *Store) claimImage(ctx context.Context, r model.Repo) error {
	if r.Image == "" {
		return nil
	}
	if _, err := s.repos.Create(ctx, imageKey(r.Image), []byte(r.ID)); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("image %s is already claimed by another repository", r.Image)
		}
		return fmt.Errorf("index image %s: %w", r.Image, err)
	}
	return nil
}

// ClaimImages records the image of every repository an older Slipway
// registered, which claimed none, so that no new repository can take it.
// repos are the stored repositories (ListRepos). It returns how many it
// claimed.
func (s *Store) ClaimImages(ctx context.Context, repos []model.Repo) (int, error) {
	n := 0
	for _, r := range repos {
		if r.Image == "" {
			continue
		}
		_, err := s.repos.Create(ctx, imageKey(r.Image), []byte(r.ID))
		switch {
		case err == nil:
			n++
		case !errors.Is(err, jetstream.ErrKeyExists):
			return n, fmt.Errorf("claim image %s of repo %s: %w", r.Image, r.ID, err)
		}
	}
	return n, nil
}

// CreateRepo stores a new repository; a second repository with the same
// provider and full name, or the same image, is refused.
func (s *Store) CreateRepo(ctx context.Context, r model.Repo) error {
	if err := s.claimImage(ctx, r); err != nil {
		return err
	}
	if _, err := s.repos.Create(ctx, nameKey(r.Provider, r.FullName), []byte(r.ID)); err != nil {
		if r.Image != "" {
			s.release(ctx, imageKey(r.Image))
		}
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("repository %s/%s is already registered", r.Provider, r.FullName)
		}
		return fmt.Errorf("index repo %s: %w", r.FullName, err)
	}
	raw, err := s.repoCodec().encode(r)
	if err != nil {
		return fmt.Errorf("store repo %s: %w", r.FullName, err)
	}
	if _, err := s.repos.Put(ctx, "id."+r.ID, raw); err != nil {
		return fmt.Errorf("store repo %s: %w", r.FullName, err)
	}
	return nil
}

// GetRepo returns a repository by id.
func (s *Store) GetRepo(ctx context.Context, id string) (model.Repo, error) {
	var r model.Repo
	err := getWith(ctx, s.repos, "id."+id, &r, s.repoCodec())
	return r, err
}

// FindRepo returns the repository a webhook names.
func (s *Store) FindRepo(ctx context.Context, provider, fullName string) (model.Repo, error) {
	e, err := s.repos.Get(ctx, nameKey(provider, fullName))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return model.Repo{}, ErrNotFound
		}
		return model.Repo{}, fmt.Errorf("find repo %s: %w", fullName, err)
	}
	return s.GetRepo(ctx, string(e.Value()))
}

// RepoByImage returns the repository that pushes image (host/path).
func (s *Store) RepoByImage(ctx context.Context, image string) (model.Repo, error) {
	e, err := s.repos.Get(ctx, imageKey(image))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return model.Repo{}, ErrNotFound
		}
		return model.Repo{}, fmt.Errorf("find the repo of image %s: %w", image, err)
	}
	return s.GetRepo(ctx, string(e.Value()))
}

// ListRepos returns every repository, oldest first.
func (s *Store) ListRepos(ctx context.Context) ([]model.Repo, error) {
	var out []model.Repo
	c := s.repoCodec()
	err := eachJSON(ctx, s.repos, "id.*", func(raw []byte) error {
		var r model.Repo
		if err := c.decode(raw, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// DeleteRepo removes a repository and its secrets from the disk; its
// builds stay for the record. It reads the record without opening its
// secrets, so that one sealed under a lost key can still be deleted.
func (s *Store) DeleteRepo(ctx context.Context, id string) error {
	var r model.Repo
	if err := getJSON(ctx, s.repos, "id."+id, &r); err != nil {
		return err
	}
	if err := s.eraseKey(ctx, "id."+id); err != nil {
		return fmt.Errorf("delete repo %s: %w", id, err)
	}
	if err := s.eraseKey(ctx, nameKey(r.Provider, r.FullName)); err != nil {
		return fmt.Errorf("delete repo index %s: %w", id, err)
	}
	if r.Image != "" {
		if err := s.eraseKey(ctx, imageKey(r.Image)); err != nil {
			return fmt.Errorf("release image %s of repo %s: %w", r.Image, id, err)
		}
	}
	if !s.erase {
		s.forget(ctx) // eraseKey could only purge
	}
	return nil
}

// release frees an index key a failed registration took; a failure leaves
// the key taken, which the log says.
func (s *Store) release(ctx context.Context, key string) {
	if err := s.repos.Delete(context.WithoutCancel(ctx), key); err != nil {
		s.logger.Warn("release an index key of a failed registration", "key", key, "err", err)
	}
}

// eraseKey removes key from the repos bucket so that its value's bytes
// leave the disk (see openRepos): a secure delete of the stream message
// overwrites them in place, then a Purge drops the key's history, leaving
// one marker without a value. Where the bucket's stream denies message
// deletes (made by an older Slipway), only the Purge is done.
func (s *Store) eraseKey(ctx context.Context, key string) error {
	if s.erase {
		if err := s.eraseValue(ctx, key); err != nil {
			// The value is sealed: purging it still beats keeping it.
			s.logger.Warn("deleted repository's sealed bytes stay on disk until NATS compacts them", "key", key, "err", err)
		}
	}
	if err := s.repos.Purge(ctx, key); err != nil {
		return fmt.Errorf("purge %s: %w", key, err)
	}
	return nil
}

// forget gets the bytes of purged and overwritten records out of NATS's
// files (rollBlock).
func (s *Store) forget(ctx context.Context) {
	if err := s.rollBlock(ctx); err != nil {
		// The records are gone or sealed already; only their old bytes
		// stay until NATS compacts them.
		s.logger.Warn("old bytes of repositories stay in NATS's files until it compacts them", "err", err)
	}
}

// eraseValue securely deletes the message holding key's current value.
func (s *Store) eraseValue(ctx context.Context, key string) error {
	for tries := 1; ; tries++ {
		e, err := s.repos.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		err = s.reposStream.SecureDeleteMsg(ctx, e.Revision())
		if err == nil || tries == 3 {
			return err
		}
		// A concurrent update may have replaced that revision: erase
		// the new one.
	}
}

// --- builds ---

// CreateBuild stores b unless a build with its id exists; it reports whether
// this call created it.
func (s *Store) CreateBuild(ctx context.Context, b model.Build) (bool, error) {
	if err := noCredentials(b.CloneURL); err != nil {
		return false, fmt.Errorf("store build %s: %w", b.ID, err)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return false, err
	}
	// The record and its index entry are written at once: one round trip
	// instead of two. A failure of either fails the call, so the webhook
	// is answered 503 and its redelivery lands in the exists case below,
	// which repairs a missing entry; an entry whose record is missing is
	// skipped by the list.
	var entryErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		entryErr = s.index(ctx, b)
	}()
	_, err = s.builds.Create(ctx, b.ID, raw)
	<-done
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, s.indexExisting(ctx, b)
	}
	if err != nil {
		return false, fmt.Errorf("store build %s: %w", b.ID, err)
	}
	return true, entryErr
}

// noCredentials refuses a clone URL carrying a password, or any user part
// over HTTP(S), where it is a token. Build records are not sealed, and a
// build's clone URL is its repository's, which registration checks the same
// way; this keeps a record from an older Slipway from copying one in.
func noCredentials(cloneURL string) error {
	u, err := url.Parse(cloneURL)
	if err != nil || u.User == nil {
		return nil // scp-like ssh remotes and local test paths name no secret
	}
	if _, hasPassword := u.User.Password(); hasPassword || u.Scheme != "ssh" {
		return errors.New("its clone_url carries credentials; give them as the repository's token")
	}
	return nil
}

// GetBuild returns a build by id.
func (s *Store) GetBuild(ctx context.Context, id string) (model.Build, error) {
	var b model.Build
	err := getJSON(ctx, s.builds, id, &b)
	return b, err
}

// UpdateBuild applies change to the stored build with compare-and-set, so
// concurrent writers (worker, hook deliverer) never overwrite each other.
func (s *Store) UpdateBuild(ctx context.Context, id string, change func(*model.Build) error) (model.Build, error) {
	return update(ctx, s.builds, id, "build "+id, change, jsonCodec[model.Build]())
}

// UpdateRepo applies change to the stored repository with compare-and-set.
func (s *Store) UpdateRepo(ctx context.Context, id string, change func(*model.Repo) error) (model.Repo, error) {
	return update(ctx, s.repos, "id."+id, "repo "+id, change, s.repoCodec())
}

// update applies change to the JSON record at key under compare-and-set,
// reading again and re-applying when another writer came first. A missing
// record is ErrNotFound; an error from change leaves the record as it was.
func update[T any](ctx context.Context, kv jetstream.KeyValue, key, what string, change func(*T) error, c codec[T]) (T, error) {
	for {
		var v T
		e, err := kv.Get(ctx, key)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return v, fmt.Errorf("%s: %w", what, ErrNotFound)
			}
			return v, fmt.Errorf("read %s: %w", what, err)
		}
		if err := c.decode(e.Value(), &v); err != nil {
			return v, fmt.Errorf("decode %s: %w", what, err)
		}
		if err := change(&v); err != nil {
			return v, err
		}
		raw, err := c.encode(v)
		if err != nil {
			return v, fmt.Errorf("encode %s: %w", what, err)
		}
		_, err = kv.Update(ctx, key, raw, e.Revision())
		if err == nil {
			return v, nil
		}
		// A lost race is error code 10071 on one server but 10164 on a
		// replicated stream; ErrKeyRevisionMismatch matches both.
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return v, fmt.Errorf("update %s: %w", what, err)
		}
	}
}

// codec turns a record into the bytes stored and back: plain JSON, or
// JSON with the secrets sealed (repoCodec).
type codec[T any] struct {
	decode func([]byte, *T) error
	encode func(T) ([]byte, error)
}

func jsonCodec[T any]() codec[T] {
	return codec[T]{
		decode: func(raw []byte, v *T) error { return json.Unmarshal(raw, v) },
		encode: func(v T) ([]byte, error) { return json.Marshal(v) },
	}
}

func getJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string, v *T) error {
	return getWith(ctx, kv, key, v, jsonCodec[T]())
}

func getWith[T any](ctx context.Context, kv jetstream.KeyValue, key string, v *T, c codec[T]) error {
	e, err := kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return ErrNotFound
		}
		return fmt.Errorf("read %s/%s: %w", kv.Bucket(), key, err)
	}
	if err := c.decode(e.Value(), v); err != nil {
		return fmt.Errorf("decode %s/%s: %w", kv.Bucket(), key, err)
	}
	return nil
}

func eachJSON(ctx context.Context, kv jetstream.KeyValue, filter string, fn func([]byte) error) error {
	keys, err := kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return fmt.Errorf("list %s: %w", kv.Bucket(), err)
	}
	var names []string
	for k := range keys.Keys() {
		names = append(names, k)
	}
	for _, k := range names {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted while listing
		}
		if err != nil {
			return fmt.Errorf("read %s/%s: %w", kv.Bucket(), k, err)
		}
		if err := fn(e.Value()); err != nil {
			return fmt.Errorf("decode %s/%s: %w", kv.Bucket(), k, err)
		}
	}
	return nil
}
