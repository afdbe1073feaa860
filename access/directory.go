package access

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
)

// bucket holds organizations (org.<name>) and tokens (token.<id>).
const bucket = "slipway_access"

// lastUsedEvery is how stale a token's last-used time may get: writing it
// on every request would double the writes of a busy API.
const lastUsedEvery = time.Minute

// Directory is the organizations and tokens on JetStream.
type Directory struct {
	kv jetstream.KeyValue
	// Bootstrap is the site admin's token (the one in the data dir);
	// empty means none.
	Bootstrap string
	Logger    *slog.Logger
	Now       func() time.Time
}

// Open creates (or finds) the bucket. Any number of Slipway processes may
// open it at once.
func Open(ctx context.Context, nc *nats.Conn, replicas int) (*Directory, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, Storage: jetstream.FileStorage, Replicas: max(replicas, 1), History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return &Directory{kv: kv}, nil
}

func (d *Directory) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

func (d *Directory) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

// --- organizations ---

// CreateOrg stores a new organization with an owners team of admins.
func (d *Directory) CreateOrg(ctx context.Context, name string, owners []string) (Org, error) {
	if err := ValidOrg(name); err != nil {
		return Org{}, err
	}
	o := Org{Name: name, CreatedAt: d.now(), Teams: map[string]Team{OwnersTeam: {Role: Admin, Members: owners}}}
	if err := ValidTeam(name, OwnersTeam, o.Teams[OwnersTeam]); err != nil {
		return Org{}, err
	}
	raw, err := json.Marshal(o)
	if err != nil {
		return Org{}, err
	}
	if _, err := d.kv.Create(ctx, "org."+name, raw); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Org{}, fmt.Errorf("organization %s: %w", name, ErrExists)
		}
		return Org{}, fmt.Errorf("store organization %s: %w", name, err)
	}
	return o, nil
}

// GetOrg returns an organization.
func (d *Directory) GetOrg(ctx context.Context, name string) (Org, error) {
	var o Org
	_, err := d.get(ctx, "org."+name, &o)
	return o, err
}

// ListOrgs returns every organization by name.
func (d *Directory) ListOrgs(ctx context.Context) ([]Org, error) {
	var out []Org
	err := d.each(ctx, "org.*", func(raw []byte) error {
		var o Org
		if err := json.Unmarshal(raw, &o); err != nil {
			return err
		}
		out = append(out, o)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// UpdateOrg applies change to an organization with compare-and-set,
// retrying when another writer came first.
func (d *Directory) UpdateOrg(ctx context.Context, name string, change func(*Org) error) (Org, error) {
	return update(ctx, d, "org."+name, change)
}

// --- tokens ---

// IssueToken stores a new token for req and returns it with its text,
// which is shown once and never stored.
func (d *Directory) IssueToken(ctx context.Context, by Principal, req TokenRequest) (Token, string, error) {
	if err := CheckName(req.Name); err != nil {
		return Token{}, "", err
	}
	if err := ValidAccount(req.Account); err != nil {
		return Token{}, "", err
	}
	o, err := d.GetOrg(ctx, req.Org)
	if err != nil {
		return Token{}, "", fmt.Errorf("organization %s: %w", req.Org, err)
	}
	if err := MayIssue(by, req, o.RoleOf(req.Account)); err != nil {
		return Token{}, "", err
	}
	t := Token{ID: model.NewID(), Name: req.Name, Account: req.Account, Org: req.Org, Role: req.Role,
		CreatedBy: by.name(), CreatedAt: d.now()}
	if req.ExpiresIn != "" {
		ttl, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || ttl <= 0 {
			return Token{}, "", invalid("expires_in: want a duration such as 720h, got %q", req.ExpiresIn)
		}
		at := t.CreatedAt.Add(ttl)
		t.ExpiresAt = &at
	}
	text := NewSecret(t.ID)
	_, secret, _ := Split(text)
	t.Hash = HashSecret(secret)
	raw, err := json.Marshal(t)
	if err != nil {
		return Token{}, "", err
	}
	if _, err := d.kv.Create(ctx, "token."+t.ID, raw); err != nil {
		return Token{}, "", fmt.Errorf("store token %s: %w", t.ID, err)
	}
	return t, text, nil
}

func (p Principal) name() string {
	if p.Site {
		return "bootstrap-admin"
	}
	return p.Account
}

// Authenticate returns the principal of a bearer token: the bootstrap
// admin's, or a stored live token's. Anything else is ErrUnauthenticated.
func (d *Directory) Authenticate(ctx context.Context, text string) (Principal, error) {
	if d.Bootstrap != "" && subtle.ConstantTimeCompare([]byte(text), []byte(d.Bootstrap)) == 1 {
		return Principal{Account: "admin", Site: true, Role: Admin}, nil
	}
	id, secret, ok := Split(text)
	if !ok {
		return Principal{}, ErrUnauthenticated
	}
	t, err := d.GetToken(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	if !t.Matches(secret) || !t.Live(d.now()) {
		return Principal{}, ErrUnauthenticated
	}
	o, err := d.GetOrg(ctx, t.Org)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	d.touch(ctx, t)
	return Resolve(t, o), nil
}

// touch records that t was used, at most once a minute; a failure only
// leaves the time older.
func (d *Directory) touch(ctx context.Context, t Token) {
	now := d.now()
	if t.LastUsed != nil && now.Sub(*t.LastUsed) < lastUsedEvery {
		return
	}
	_, err := d.updateToken(ctx, t.ID, func(t *Token) error { t.LastUsed = &now; return nil })
	if err != nil {
		d.logger().Debug("record a token's last use", "token", t.ID, "err", err)
	}
}

// GetToken returns a token record by id.
func (d *Directory) GetToken(ctx context.Context, id string) (Token, error) {
	var t Token
	_, err := d.get(ctx, "token."+id, &t)
	return t, err
}

// ListTokens returns the tokens of org ("" for all), newest first.
func (d *Directory) ListTokens(ctx context.Context, org string) ([]Token, error) {
	var out []Token
	err := d.each(ctx, "token.*", func(raw []byte) error {
		var t Token
		if err := json.Unmarshal(raw, &t); err != nil {
			return err
		}
		if org == "" || t.Org == org {
			out = append(out, t)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, err
}

// RevokeToken marks a token revoked; it answers 401 from then on. The
// record stays, so that the list shows who had it.
func (d *Directory) RevokeToken(ctx context.Context, id string) (Token, error) {
	now := d.now()
	return d.updateToken(ctx, id, func(t *Token) error {
		if t.RevokedAt == nil {
			t.RevokedAt = &now
		}
		return nil
	})
}

func (d *Directory) updateToken(ctx context.Context, id string, change func(*Token) error) (Token, error) {
	return update(ctx, d, "token."+id, change)
}

// --- KV plumbing ---

func (d *Directory) get(ctx context.Context, key string, v any) (uint64, error) {
	e, err := d.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return 0, ErrNotFound
		}
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return e.Revision(), nil
}

func (d *Directory) each(ctx context.Context, filter string, fn func([]byte) error) error {
	lister, err := d.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return fmt.Errorf("list %s: %w", filter, err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, key := range keys {
		e, err := d.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted while listing
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		if err := fn(e.Value()); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
	}
	return nil
}

// update applies change to the record at key with compare-and-set,
// reading again and re-applying when another writer came first.
func update[T any](ctx context.Context, d *Directory, key string, change func(*T) error) (T, error) {
	for range 10 {
		var v T
		rev, err := d.get(ctx, key, &v)
		if err != nil {
			return v, err
		}
		if err := change(&v); err != nil {
			return v, err
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return v, err
		}
		if _, err := d.kv.Update(ctx, key, raw, rev); err == nil {
			return v, nil
		} else if !isConflict(err) {
			return v, fmt.Errorf("update %s: %w", key, err)
		}
	}
	var zero T
	return zero, fmt.Errorf("update %s: too many concurrent changes", key)
}

// isConflict is a lost compare-and-set race: error code 10071 on one
// server, 10164 on a replicated stream; ErrKeyRevisionMismatch matches both.
func isConflict(err error) bool { return errors.Is(err, jetstream.ErrKeyRevisionMismatch) }

// Reseal seals every organization's registry passwords again under keys'
// current key, for a key rotation; it reports how many it resealed.
func (d *Directory) Reseal(ctx context.Context, keys Sealer) (int, error) {
	orgs, err := d.ListOrgs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range orgs {
		if len(o.Registries) == 0 {
			continue
		}
		_, err := d.UpdateOrg(ctx, o.Name, func(o *Org) error {
			for host := range o.Registries {
				login, _, err := o.RegistryLogin(host, keys)
				if err != nil {
					return err
				}
				if err := o.SetRegistry(host, login, keys); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("reseal the registry logins of %s: %w", o.Name, err)
		}
		n += len(o.Registries)
	}
	return n, nil
}
