package store_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/store"
)

// Secrets distinctive enough that finding them in a file is no accident.
const (
	plainWebhook = "whsec-PLAINTEXT-webhook-7731"
	plainToken   = "ghp-PLAINTEXT-token-7731"
	plainSSH     = "-----BEGIN PLAINTEXT SSH KEY 7731-----"
	plainHook    = "whsec-PLAINTEXT-hook-7731"
	plainBadge   = "badge-PLAINTEXT-key-7731"
)

var allPlain = []string{plainWebhook, plainToken, plainSSH, plainHook, plainBadge}

func secretRepo(id, name string) model.Repo {
	return model.Repo{
		ID: id, Provider: "github", FullName: name, CloneURL: "https://git.example/" + name + ".git",
		WebhookSecret: plainWebhook, Token: plainToken, SSHKey: plainSSH, BadgeKey: plainBadge, Image: "registry.example/" + name,
		Hooks:     []model.Hook{{URL: "https://deploy.example/hook", Secret: plainHook}, {URL: "https://deploy.example/none"}},
		CreatedAt: base,
	}
}

func fixedKeys(t *testing.T, fill ...byte) *seal.Keyring {
	t.Helper()
	var keys [][]byte
	for _, b := range fill {
		keys = append(keys, bytes.Repeat([]byte{b}, 32))
	}
	kr, err := seal.New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// Ids of the fixed keys: seal.KeyID of 32 bytes of 0xaa and of 0xbb.
const (
	keyAID = "e0e77a50"
	keyBID = "4ca14526"
)

func openWith(t *testing.T, e *natsd.Server, kr *seal.Keyring) *store.Store {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s, err := store.Open(testCtx(t), nc, store.Options{Keys: kr})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// rawRepo is the repository record as it is stored, secrets sealed.
func rawRepo(t *testing.T, e *natsd.Server, id string) model.Repo {
	t.Helper()
	kv, err := jetStream(t, e).KeyValue(testCtx(t), "slipway_repos")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(testCtx(t), "id."+id)
	if err != nil {
		t.Fatalf("raw get %s: %v", id, err)
	}
	var r model.Repo
	if err := json.Unmarshal(entry.Value(), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func putRaw(t *testing.T, e *natsd.Server, key string, v any) {
	t.Helper()
	kv, err := jetStream(t, e).KeyValue(testCtx(t), "slipway_repos")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(v)
	if id, ok := v.(string); ok {
		raw = []byte(id) // the name index holds the bare id
	}
	if _, err := kv.Put(testCtx(t), key, raw); err != nil {
		t.Fatal(err)
	}
}

// filesContaining names the files under dir that hold any of needles.
func filesContaining(t *testing.T, dir string, needles ...string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path) // #nosec G304 -- the test's own temp dir
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(raw, []byte(n)) {
				hits = append(hits, strings.TrimPrefix(path, dir)+": "+n[:12]+"…")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func TestOpenRefusesNoKeys(t *testing.T) {
	nc, err := startServer(t, t.TempDir()).Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	_, err = store.Open(testCtx(t), nc, store.Options{Replicas: 1})
	if want := "store: no keyring; repositories' secrets would be stored in the clear"; err == nil || err.Error() != want {
		t.Fatalf("Open without keys = %v, want %q", err, want)
	}
}

func TestSecretsSealedAtRestAndErasedOnDelete(t *testing.T) {
	dir := t.TempDir()
	e := startServer(t, dir)
	s := openWith(t, e, fixedKeys(t, 0xaa))
	ctx := testCtx(t)
	r := secretRepo("r-secret", "acme/secret")
	if err := s.CreateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Hooks[0].Secret != plainHook {
		t.Fatal("CreateRepo sealed the caller's hooks in place")
	}

	// Callers see plaintext, by id, by name and in the list.
	got, err := s.GetRepo(ctx, "r-secret")
	if err != nil {
		t.Fatal(err)
	}
	found, _ := s.FindRepo(ctx, "github", "acme/secret")
	list, _ := s.ListRepos(ctx)
	for _, g := range []model.Repo{got, found, list[0]} {
		if g.WebhookSecret != plainWebhook || g.Token != plainToken || g.SSHKey != plainSSH || g.BadgeKey != plainBadge || g.Hooks[0].Secret != plainHook || g.Hooks[1].Secret != "" {
			t.Fatalf("read back = %+v, want the plaintext secrets", g)
		}
	}

	// The record holds sealed values under key a2b3b2a5; no-secret stays "".
	raw := rawRepo(t, e, "r-secret")
	for name, v := range map[string]string{"webhook_secret": raw.WebhookSecret, "token": raw.Token, "ssh_key": raw.SSHKey, "badge_key": raw.BadgeKey, "hooks[0].secret": raw.Hooks[0].Secret} {
		if !strings.HasPrefix(v, "sealed:v1:"+keyAID+":") {
			t.Errorf("stored %s = %.30q, want sealed:v1:%s:…", name, v, keyAID)
		}
	}
	if raw.Hooks[1].Secret != "" {
		t.Errorf("stored empty hook secret = %q, want empty", raw.Hooks[1].Secret)
	}

	// The sealed token reaches the files (so the scan sees what is
	// written); no plaintext ever does.
	waitFor(t, func() bool { return len(filesContaining(t, dir, raw.Token)) > 0 }, "the sealed token in the store files")
	if hits := filesContaining(t, dir, allPlain...); len(hits) > 0 {
		t.Fatalf("plaintext secrets on disk: %v", hits)
	}

	if err := s.DeleteRepo(ctx, "r-secret"); err != nil {
		t.Fatal(err)
	}
	if hits := filesContaining(t, dir, allPlain...); len(hits) > 0 {
		t.Fatalf("plaintext secrets on disk after delete: %v", hits)
	}
	// Stronger: the deleted record's ciphertext is overwritten too.
	if hits := filesContaining(t, dir, raw.Token, raw.SSHKey, raw.WebhookSecret, raw.BadgeKey, raw.Hooks[0].Secret); len(hits) > 0 {
		t.Fatalf("sealed secrets still on disk after delete: %v", hits)
	}
	if _, err := s.GetRepo(ctx, "r-secret"); err == nil {
		t.Fatal("GetRepo after delete found the repository")
	}
	if _, err := s.FindRepo(ctx, "github", "acme/secret"); err == nil {
		t.Fatal("FindRepo after delete found the repository")
	}
	// The name is free again.
	if err := s.CreateRepo(ctx, secretRepo("r-again", "acme/secret")); err != nil {
		t.Fatalf("register the name again: %v", err)
	}
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 5s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUpdateRepoKeepsSecretsSealed(t *testing.T) {
	e := startServer(t, t.TempDir())
	s := openWith(t, e, fixedKeys(t, 0xaa))
	ctx := testCtx(t)
	if err := s.CreateRepo(ctx, secretRepo("r1", "acme/one")); err != nil {
		t.Fatal(err)
	}
	got, err := s.UpdateRepo(ctx, "r1", func(r *model.Repo) error {
		if r.Token != plainToken {
			t.Errorf("change sees token %.30q, want the plaintext", r.Token)
		}
		r.PushInstallationID = 42
		r.Hooks = append(r.Hooks, model.Hook{URL: "https://deploy.example/new", Secret: "whsec-new"})
		return nil
	})
	if err != nil || got.PushInstallationID != 42 || got.Token != plainToken || got.Hooks[2].Secret != "whsec-new" {
		t.Fatalf("UpdateRepo = %+v, %v", got, err)
	}
	raw := rawRepo(t, e, "r1")
	if raw.PushInstallationID != 42 || !strings.HasPrefix(raw.Token, "sealed:v1:") || !strings.HasPrefix(raw.Hooks[2].Secret, "sealed:v1:") {
		t.Fatalf("stored after update = %+v, want sealed secrets", raw)
	}
}

// A sealed value is bound to its record and field: moved, it does not open.
func TestSealedValueCannotMove(t *testing.T) {
	e := startServer(t, t.TempDir())
	s := openWith(t, e, fixedKeys(t, 0xaa))
	ctx := testCtx(t)
	for _, r := range []model.Repo{secretRepo("r1", "acme/one"), {ID: "r2", Provider: "github", FullName: "acme/two", CreatedAt: base}} {
		if err := s.CreateRepo(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	stolen := rawRepo(t, e, "r1")
	for _, tc := range []struct {
		name string
		move func(r *model.Repo)
		want string
	}{
		{"to another record", func(r *model.Repo) { r.Token = stolen.Token }, "open repo/r2/token: value sealed under key " + keyAID + " was altered or belongs to another field"},
		{"to another field", func(r *model.Repo) { r.WebhookSecret = stolen.Token }, "open repo/r2/webhook_secret: value sealed under key " + keyAID + " was altered or belongs to another field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r2 := rawRepo(t, e, "r2")
			tc.move(&r2)
			putRaw(t, e, "id.r2", r2)
			_, err := s.GetRepo(ctx, "r2")
			if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
				t.Fatalf("GetRepo = %v, want an error ending %q", err, tc.want)
			}
			if strings.Contains(err.Error(), plainToken) || strings.Contains(err.Error(), stolen.Token) {
				t.Fatal("the error shows the secret")
			}
		})
	}
}

// Records an older Slipway wrote in the clear are read, and Reseal seals
// them.
func TestLegacyPlaintextReadAndResealed(t *testing.T) {
	dir := t.TempDir()
	e := startServer(t, dir)
	s := openWith(t, e, fixedKeys(t, 0xaa))
	ctx := testCtx(t)
	legacy := secretRepo("r-old", "acme/old")
	putRaw(t, e, "id.r-old", legacy)
	got, err := s.GetRepo(ctx, "r-old")
	if err != nil || got.Token != plainToken || got.Hooks[0].Secret != plainHook {
		t.Fatalf("GetRepo of a plaintext record = %+v, %v", got, err)
	}
	n, err := s.Reseal(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Reseal = %d, %v; want 1", n, err)
	}
	raw := rawRepo(t, e, "r-old")
	for _, v := range []string{raw.WebhookSecret, raw.Token, raw.SSHKey, raw.Hooks[0].Secret} {
		if seal.SealedWith(v) != keyAID {
			t.Errorf("after Reseal a field is %.30q, want sealed under %s", v, keyAID)
		}
	}
	if n, err := s.Reseal(ctx); err != nil || n != 0 {
		t.Fatalf("second Reseal = %d, %v; want 0 (nothing left to seal)", n, err)
	}
	if got, _ := s.GetRepo(ctx, "r-old"); got.SSHKey != plainSSH {
		t.Fatalf("after Reseal ssh_key = %.30q", got.SSHKey)
	}
}

// Records sealed under key A, rotated to B: a keyring of B alone opens
// every field, and one of A alone no longer does.
func TestResealRotatesToNewKey(t *testing.T) {
	dir := t.TempDir()
	e := startServer(t, dir)
	ctx := testCtx(t)
	s := openWith(t, e, fixedKeys(t, 0xaa))
	for _, r := range []model.Repo{secretRepo("r1", "acme/one"), secretRepo("r2", "acme/two"), {ID: "r3", Provider: "github", FullName: "acme/three", CreatedAt: base}} {
		if err := s.CreateRepo(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	underA := rawRepo(t, e, "r1")
	waitFor(t, func() bool { return len(filesContaining(t, dir, underA.Token)) > 0 }, "the token sealed under A in the store files")
	s.SetKeys(fixedKeys(t, 0xbb, 0xaa))
	n, err := s.Reseal(ctx)
	// r3 has no secret, so there is nothing to reseal in it.
	if err != nil || n != 2 {
		t.Fatalf("Reseal = %d, %v; want 2", n, err)
	}
	// The values sealed under A leave the files as well.
	eventuallyGone(t, dir, underA.Token, underA.SSHKey)
	onlyB := openWith(t, e, fixedKeys(t, 0xbb))
	for _, id := range []string{"r1", "r2"} {
		r, err := onlyB.GetRepo(ctx, id)
		if err != nil {
			t.Fatalf("GetRepo(%s) with key B alone: %v", id, err)
		}
		if r.WebhookSecret != plainWebhook || r.Token != plainToken || r.SSHKey != plainSSH || r.Hooks[0].Secret != plainHook {
			t.Fatalf("GetRepo(%s) with key B alone = %+v", id, r)
		}
		if seal.SealedWith(rawRepo(t, e, id).Token) != keyBID {
			t.Fatalf("%s's token is not sealed under %s", id, keyBID)
		}
	}
	onlyA := openWith(t, e, fixedKeys(t, 0xaa))
	want := "open repo/r1/webhook_secret: key " + keyBID + ": sealed under a key this keyring does not hold (keyring holds " + keyAID + ")"
	if _, err := onlyA.GetRepo(ctx, "r1"); err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("GetRepo with the old key alone = %v, want an error ending %q", err, want)
	}
	// A record no key here opens can still be deleted.
	if err := onlyA.DeleteRepo(ctx, "r1"); err != nil {
		t.Fatalf("DeleteRepo of a record under an unknown key: %v", err)
	}
	if _, err := onlyB.GetRepo(ctx, "r1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRepo after delete = %v, want ErrNotFound", err)
	}
}

// A Reseal racing with updates loses none of them and leaves nothing under
// the old key.
func TestResealWithConcurrentUpdates(t *testing.T) {
	e := startServer(t, t.TempDir())
	ctx := testCtx(t)
	s := openWith(t, e, fixedKeys(t, 0xaa))
	if err := s.CreateRepo(ctx, secretRepo("r1", "acme/one")); err != nil {
		t.Fatal(err)
	}
	s.SetKeys(fixedKeys(t, 0xbb, 0xaa))
	done := make(chan error)
	go func() {
		for i := 0; i < 20; i++ {
			if _, err := s.UpdateRepo(ctx, "r1", func(r *model.Repo) error { r.MaxConcurrentBuilds++; return nil }); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < 5; i++ {
		if _, err := s.Reseal(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	raw := rawRepo(t, e, "r1")
	if raw.MaxConcurrentBuilds != 20 || seal.SealedWith(raw.Token) != keyBID {
		t.Fatalf("after the race: %d updates, token under %q; want 20 and %s", raw.MaxConcurrentBuilds, seal.SealedWith(raw.Token), keyBID)
	}
}

// Build and delivery records have no field for a secret: what a build
// needs of its repository's credentials it reads from the repository.
func TestBuildRecordsCarryNoSecrets(t *testing.T) {
	for _, v := range []any{model.Build{}, model.Rule{}, model.Delivery{}, model.Attempt{}, model.StatusPost{}, store.Delivery{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			tag := typ.Field(i).Tag.Get("json")
			for _, word := range []string{"secret", "token", "ssh_key", "password", "credential"} {
				if strings.Contains(tag, word) {
					t.Errorf("%s.%s (json %q) looks like a secret; seal it or carry an id", typ.Name(), typ.Field(i).Name, tag)
				}
			}
		}
	}
}

// legacyBucket makes the repositories bucket as a Slipway older than
// sealing did: a KV bucket, whose stream denies message deletes.
func legacyBucket(t *testing.T, e *natsd.Server) {
	t.Helper()
	if _, err := jetStream(t, e).CreateKeyValue(testCtx(t), jetstream.KeyValueConfig{Bucket: "slipway_repos", Storage: jetstream.FileStorage, History: 1}); err != nil {
		t.Fatal(err)
	}
}

// eventuallyGone waits for needles to leave every file under dir: the file
// store rewrites a closed block in the background.
func eventuallyGone(t *testing.T, dir string, needles ...string) {
	t.Helper()
	waitFor(t, func() bool { return len(filesContaining(t, dir, needles...)) == 0 }, "erasure")
}

// A repositories bucket an older Slipway made denies message deletes, and
// NATS cannot undo that: DeleteRepo purges, then rolls the block so that
// the record's bytes leave the disk all the same.
func TestDeleteOnBucketOfOlderSlipway(t *testing.T) {
	dir := t.TempDir()
	e := startServer(t, dir)
	ctx := testCtx(t)
	legacyBucket(t, e)
	s := openWith(t, e, fixedKeys(t, 0xaa))
	if err := s.CreateRepo(ctx, secretRepo("r1", "acme/one")); err != nil {
		t.Fatal(err)
	}
	raw := rawRepo(t, e, "r1")
	waitFor(t, func() bool { return len(filesContaining(t, dir, raw.Token)) > 0 }, "the sealed token in the store files")
	if err := s.DeleteRepo(ctx, "r1"); err != nil {
		t.Fatalf("DeleteRepo: %v", err)
	}
	if _, err := s.GetRepo(ctx, "r1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRepo after delete = %v, want ErrNotFound", err)
	}
	eventuallyGone(t, dir, raw.Token, raw.SSHKey, raw.WebhookSecret, raw.Hooks[0].Secret)
	if hits := filesContaining(t, dir, allPlain...); len(hits) > 0 {
		t.Fatalf("plaintext secrets on disk: %v", hits)
	}
	// The padding is gone from the bucket too.
	if repos, err := s.ListRepos(ctx); err != nil || len(repos) != 0 {
		t.Fatalf("ListRepos after delete = %v, %v", repos, err)
	}
}

// On an upgraded install the plaintext an older Slipway wrote is in NATS's
// files; after Reseal it is not.
func TestResealErasesLegacyPlaintextOnOlderBucket(t *testing.T) {
	dir := t.TempDir()
	e := startServer(t, dir)
	ctx := testCtx(t)
	legacyBucket(t, e)
	putRaw(t, e, "id.r-old", secretRepo("r-old", "acme/old"))
	putRaw(t, e, nameKeyOf("github", "acme/old"), "r-old")
	waitFor(t, func() bool { return len(filesContaining(t, dir, plainToken)) > 0 }, "the legacy plaintext in the store files")
	s := openWith(t, e, fixedKeys(t, 0xaa))
	if n, err := s.Reseal(ctx); err != nil || n != 1 {
		t.Fatalf("Reseal = %d, %v; want 1", n, err)
	}
	eventuallyGone(t, dir, allPlain...)
	if r, err := s.FindRepo(ctx, "github", "acme/old"); err != nil || r.Token != plainToken {
		t.Fatalf("FindRepo after Reseal = %+v, %v", r, err)
	}
}

// nameKeyOf is the store's name index key (store.nameKey).
func nameKeyOf(provider, fullName string) string {
	return "name." + provider + "." + hex.EncodeToString([]byte(strings.ToLower(fullName)))
}

// A build record is not sealed, so its clone URL must hold no credentials.
func TestCreateBuildRefusesCredentialsInCloneURL(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	for i, tc := range []struct {
		url, want string
	}{
		{"https://x-access-token:ghs_PLAINTEXT@github.com/acme/app.git", "store build b: its clone_url carries credentials; give them as the repository's token"},
		{"https://ghp_PLAINTEXT@github.com/acme/app.git", "store build b: its clone_url carries credentials; give them as the repository's token"},
		{"ssh://git:hunter2@git.example/app.git", "store build b: its clone_url carries credentials; give them as the repository's token"},
		{"ssh://git@git.example/app.git", ""},
		{"git@git.example:acme/app.git", ""},
		{"https://git.example/app.git", ""},
	} {
		b := newBuild("b", "r1", 0)
		if tc.want == "" {
			b.ID = fmt.Sprintf("ok%d", i)
		}
		b.CloneURL = tc.url
		created, err := s.CreateBuild(ctx, b)
		if tc.want == "" {
			if err != nil || !created {
				t.Errorf("CreateBuild(%s) = %v, %v; want created", tc.url, created, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.want || strings.Contains(err.Error(), "PLAINTEXT") {
			t.Errorf("CreateBuild(%.30s…) = %v, want %q", tc.url, err, tc.want)
		}
	}
}
