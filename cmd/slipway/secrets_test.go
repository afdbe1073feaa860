package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/natsd/natsdtest"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/store"
)

// Test keys: 32 bytes of 0x11 (id 02d449a3) and of 0x22 (id 9f72ea0c).
const (
	key11 = "ERERERERERERERERERERERERERERERERERERERERERE="
	key22 = "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI="
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// natsStore is a store on a real embedded NATS in a temp dir.
func natsStore(t *testing.T, kr *seal.Keyring) (*store.Store, *natsd.Server) {
	t.Helper()
	e, err := natsd.Start(natsd.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return storeOn(t, e, kr), e
}

func storeOn(t *testing.T, e *natsd.Server, kr *seal.Keyring) *store.Store {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	st, err := store.Open(testContext(t), nc, store.Options{Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func repoWithSecrets(id, name string) model.Repo {
	return model.Repo{ID: id, Provider: "github", FullName: name, Token: "ghp-token-" + id, WebhookSecret: "hook-" + id,
		Hooks: []model.Hook{{URL: "https://deploy.example/", Secret: "whsec-" + id}}, CreatedAt: time.Now()}
}

// serveRotate serves the rotate route on loopback with the API token
// "slp_admin" and points the CLI at it.
func serveRotate(t *testing.T, r *rotator) {
	t.Helper()
	mux := http.NewServeMux()
	_, nc := natsdtest.Start(t)
	dir, err := access.Open(testContext(t), nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir.Bootstrap = "slp_admin"
	(&api.Server{Tokens: dir, Secrets: r, Logger: slog.Default()}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Setenv("SLIPWAY_URL", srv.URL)
	t.Setenv("SLIPWAY_API_TOKEN", "slp_admin")
}

// With the key file: `slipway secrets rotate` makes a new key while the
// server runs, reseals every repository under it, and the file ends with
// the new key alone.
func TestSecretsRotateKeyFile(t *testing.T) {
	dataDir := t.TempDir()
	cfg := config.Defaults()
	kr, err := loadKeys(cfg, dataDir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	oldID := kr.PrimaryID()
	st, e := natsStore(t, kr)
	ctx := testContext(t)
	for _, r := range []model.Repo{repoWithSecrets("r1", "acme/one"), repoWithSecrets("r2", "acme/two")} {
		if err := st.CreateRepo(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	serveRotate(t, &rotator{st: st, path: filepath.Join(dataDir, seal.FileName), logger: slog.Default()})

	out, errOut, code := cliRun(t, ctx, nil, "secrets", "rotate")
	if code != 0 {
		t.Fatalf("secrets rotate: exit %d: %s", code, errOut)
	}
	newID := st.Keys().PrimaryID()
	if newID == oldID || len(st.Keys().IDs()) != 1 {
		t.Fatalf("keyring after rotation = %v, want one new key (old %s)", st.Keys().IDs(), oldID)
	}
	if got, want := strings.SplitN(out, "\n", 2)[0], "resealed 2 records under key "+newID; got != want {
		t.Errorf("rotate printed %q, want %q", got, want)
	}
	// The file holds the new key alone, 0600; a restart reads every
	// repository with it.
	path := filepath.Join(dataDir, "secret.key")
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", info, err)
	}
	reloaded, err := seal.Load("", dataDir)
	if err != nil || strings.Join(reloaded.IDs(), ",") != newID {
		t.Fatalf("key file after rotation = %v, %v; want only %s", reloaded, err, newID)
	}
	restarted := storeOn(t, e, reloaded)
	for _, id := range []string{"r1", "r2"} {
		r, err := restarted.GetRepo(ctx, id)
		if err != nil || r.Token != "ghp-token-"+id || r.Hooks[0].Secret != "whsec-"+id {
			t.Fatalf("GetRepo(%s) with the new key alone = %+v, %v", id, r, err)
		}
	}
}

// With SLIPWAY_SECRET_KEY the operator holds the keys: rotate reseals under
// the variable's first key and writes no file.
func TestSecretsRotateEnv(t *testing.T) {
	dataDir := t.TempDir()
	old, err := loadKeys(config.Config{SecretKey: key11}, dataDir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	st, e := natsStore(t, old)
	ctx := testContext(t)
	if err := st.CreateRepo(ctx, repoWithSecrets("r1", "acme/one")); err != nil {
		t.Fatal(err)
	}
	// The operator puts "new,old" in the environment and restarts.
	both, err := loadKeys(config.Config{SecretKey: key22 + "," + key11}, dataDir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	st.SetKeys(both)
	got, err := (&rotator{st: st, fromEnv: true, logger: slog.Default()}).Rotate(ctx)
	if err != nil || got != (api.Rotated{Resealed: 1, KeyID: "9f72ea0c"}) {
		t.Fatalf("Rotate = %+v, %v; want {1 9f72ea0c}", got, err)
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
		t.Errorf("rotation with SLIPWAY_SECRET_KEY wrote to the data dir: %v", entries)
	}
	onlyNew, _ := seal.Load(key22, "")
	if r, err := storeOn(t, e, onlyNew).GetRepo(ctx, "r1"); err != nil || r.Token != "ghp-token-r1" {
		t.Fatalf("GetRepo with the new key alone = %+v, %v", r, err)
	}
}

// On a shared NATS the key file is not the only copy: rotation by file is
// refused, and a process without a key is told how to get one.
func TestSecretsSharedNATS(t *testing.T) {
	_, err := (&rotator{shared: true}).Rotate(context.Background())
	if err == nil || !strings.Contains(err.Error(), "rotate with SLIPWAY_SECRET_KEY") {
		t.Errorf("Rotate on a shared NATS = %v, want a refusal naming SLIPWAY_SECRET_KEY", err)
	}
	dataDir := t.TempDir()
	_, err = loadKeys(config.Config{NATSURL: "nats://127.0.0.1:4222"}, dataDir, slog.Default())
	if err == nil || !strings.HasPrefix(err.Error(), "SLIPWAY_SECRET_KEY: every process on a shared NATS needs the same key") {
		t.Errorf("loadKeys on a shared NATS without a key = %v", err)
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
		t.Errorf("a key file was made for a shared NATS: %v", entries)
	}
}

// `slipway secrets seal` seals a GitHub App key that serve opens at start;
// a plaintext key file still works.
func TestSealedAppKey(t *testing.T) {
	t.Setenv("SLIPWAY_SECRET_KEY", key11)
	pem := "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"
	out, errOut, code := cliRun(t, context.Background(), strings.NewReader(pem), "secrets", "seal")
	if code != 0 {
		t.Fatalf("secrets seal: exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "sealed:v1:02d449a3:") || strings.Contains(out, "MIIE") {
		t.Fatalf("secrets seal printed %q, want sealed:v1:02d449a3:…", out)
	}
	kr, _ := seal.Load(key11, "")
	if got, err := openAppKey([]byte(out), kr); err != nil || string(got) != pem {
		t.Fatalf("openAppKey = %q, %v; want the PEM", got, err)
	}
	if got, err := openAppKey([]byte(pem), kr); err != nil || string(got) != pem {
		t.Fatalf("openAppKey of a plaintext file = %q, %v", got, err)
	}
	other, _ := seal.Load(key22, "")
	if _, err := openAppKey([]byte(out), other); err == nil || !strings.Contains(err.Error(), "key 02d449a3") {
		t.Fatalf("openAppKey with another key = %v, want an error naming key 02d449a3", err)
	}
	// Sealed for another purpose, it does not open as the App's key.
	out, errOut, code = cliRun(t, context.Background(), strings.NewReader(pem), "secrets", "seal", "--context", "repo/r1/token")
	if code != 0 {
		t.Fatalf("secrets seal --context: exit %d: %s", code, errOut)
	}
	if _, err := openAppKey([]byte(out), kr); err == nil {
		t.Fatal("a value sealed for another context opened as the App key")
	}
}

func TestSecretsKeygen(t *testing.T) {
	out, errOut, code := cliRun(t, context.Background(), nil, "secrets", "keygen")
	if code != 0 {
		t.Fatalf("secrets keygen: exit %d: %s", code, errOut)
	}
	if kr, err := seal.Load(strings.TrimSpace(out), ""); err != nil || len(kr.IDs()) != 1 {
		t.Fatalf("keygen printed %q: %v", out, err)
	}
}
