package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/regauth"
	"github.com/slipway-build/slipway/seal"
	"github.com/slipway-build/slipway/store"
)

// appKeyContext binds a sealed GitHub App key file to that setting.
const appKeyContext = "config/github_app_key"

// secretsCmd is the CLI for the keys that seal secrets at rest.
func secretsCmd(c *cli) *cobra.Command {
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "ask the running server to seal every secret under a new key",
		Long: `Ask the running server to seal every secret under a new key: with the key
file it makes the key; with SLIPWAY_SECRET_KEY it uses the variable's first
key. Only the bootstrap admin may.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			out, err := client.RotateSecrets(cmd.Context())
			if err != nil {
				return explain(err, client.BaseURL)
			}
			fmt.Fprintf(c.stdout, "resealed %d records under key %s\n", out.Resealed, out.KeyID)
			fmt.Fprintln(c.stdout, "a sealed SLIPWAY_GITHUB_APP_KEY_FILE must be sealed again ('slipway secrets seal') before the next restart")
			return nil
		},
	}
	var sealContext string
	sealCmd := &cobra.Command{
		Use:   "seal [--context WHAT]",
		Short: "read a secret on stdin and print it sealed, e.g. the GitHub App's key for SLIPWAY_GITHUB_APP_KEY_FILE",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			return sealStdin(c.stdin, c.stdout, c.getenv, sealContext)
		},
	}
	sealCmd.Flags().StringVar(&sealContext, "context", appKeyContext, "what the sealed value is for; it opens only there")
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "print a new key for SLIPWAY_SECRET_KEY",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			k, err := seal.Generate()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.stdout, seal.EncodeKey(k))
			return err
		},
	}
	cmd := group("secrets", "rotate the key sealing secrets at rest, seal a secret, make a key", rotate, sealCmd, keygen)
	cmd.GroupID = "server"
	return cmd
}

// sealStdin seals stdin with the server's keys: SLIPWAY_SECRET_KEY, else
// the key file of the data dir, which it never creates.
func sealStdin(stdin io.Reader, stdout io.Writer, getenv func(string) string, context string) error {
	plain, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	if len(plain) == 0 {
		return errors.New("secrets seal: nothing on stdin")
	}
	var kr *seal.Keyring
	if env := getenv("SLIPWAY_SECRET_KEY"); env != "" {
		kr, err = seal.Load(env, "")
	} else {
		kr, err = seal.ReadFile(filepath.Join(cmp.Or(getenv("SLIPWAY_DATA_DIR"), "./data"), seal.FileName))
	}
	if err != nil {
		return fmt.Errorf("secrets seal: %w (set SLIPWAY_SECRET_KEY or SLIPWAY_DATA_DIR as the server has them)", err)
	}
	sealed, err := kr.Seal(string(plain), context)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, sealed)
	return nil
}

// loadKeys returns the keys sealing secrets at rest. Processes sharing a
// NATS must share them, so a key file is made only when this process runs
// its own NATS; otherwise it must be given.
func loadKeys(cfg config.Config, dataDir string, logger *slog.Logger) (*seal.Keyring, error) {
	path := filepath.Join(dataDir, seal.FileName)
	if cfg.SecretKey == "" && cfg.NATSURL != "" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("SLIPWAY_SECRET_KEY: every process on a shared NATS needs the same key to read repositories' secrets; "+
				"set SLIPWAY_SECRET_KEY on each (make one with 'slipway secrets keygen'), or copy %s from the data dir of the process that made it", seal.FileName)
		}
	}
	kr, err := seal.Load(cfg.SecretKey, dataDir)
	if err != nil {
		return nil, err
	}
	source := "SLIPWAY_SECRET_KEY"
	if cfg.SecretKey == "" {
		source = path
	}
	logger.Info("secrets at rest are sealed", "key_id", kr.PrimaryID(), "keys", len(kr.IDs()), "from", source)
	return kr, nil
}

// openAppKey returns the GitHub App's private key, opening it when the
// file holds it sealed ('slipway secrets seal').
func openAppKey(raw []byte, kr *seal.Keyring) ([]byte, error) {
	text := strings.TrimSpace(string(raw))
	if !seal.IsSealed(text) {
		return raw, nil
	}
	plain, err := kr.Open(text, appKeyContext)
	if err != nil {
		return nil, err
	}
	return []byte(plain), nil
}

// rotator is the API's api.Secrets: it makes a new key, reseals every
// repository under it and drops the old keys, while the server runs.
type rotator struct {
	mu sync.Mutex // one rotation at a time
	st *store.Store
	// fromEnv: the keys are SLIPWAY_SECRET_KEY's, which the operator
	// rotates; Rotate only reseals and never writes a file.
	fromEnv bool
	path    string // the key file otherwise
	// shared: the NATS is not this process's own, so other processes may
	// read it with their own copy of the key file, which a rotation here
	// would leave behind.
	shared bool
	// also reseal what is kept outside the store under the store's keys:
	// the organizations' registry passwords.
	also   []func(ctx context.Context, keys access.Sealer) (int, error)
	logger *slog.Logger
}

// liveKeys seals and opens with the store's current keyring, which a
// rotation swaps.
type liveKeys struct{ st *store.Store }

func (k liveKeys) Seal(plain, context string) (string, error) {
	return k.st.Keys().Seal(plain, context)
}
func (k liveKeys) Open(sealed, context string) (string, error) {
	return k.st.Keys().Open(sealed, context)
}

// Rotate implements api.Secrets.
func (r *rotator) Rotate(ctx context.Context) (api.Rotated, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fromEnv {
		n, err := r.reseal(ctx)
		return api.Rotated{Resealed: n, KeyID: r.st.Keys().PrimaryID()}, err
	}
	if r.shared {
		return api.Rotated{}, errors.New("the key file rotates only with the embedded NATS: on a shared NATS every process needs the new key at once; rotate with SLIPWAY_SECRET_KEY (new key first, then the old one, on every process)")
	}
	k, err := seal.Generate()
	if err != nil {
		return api.Rotated{}, err
	}
	both, err := seal.New(append([][]byte{k}, r.st.Keys().Keys()...)...)
	if err != nil {
		return api.Rotated{}, err
	}
	// The file first: whatever happens next, it opens every record.
	if err := seal.WriteFile(r.path, both); err != nil {
		return api.Rotated{}, err
	}
	r.st.SetKeys(both)
	n, err := r.reseal(ctx)
	if err != nil {
		// Old and new keys stay, so nothing is unreadable; rotating again
		// finishes the job.
		return api.Rotated{}, fmt.Errorf("reseal under key %s (the key file keeps the old keys too): %w", both.PrimaryID(), err)
	}
	only, err := seal.New(k)
	if err != nil {
		return api.Rotated{}, err
	}
	if err := seal.WriteFile(r.path, only); err != nil {
		return api.Rotated{}, err
	}
	r.st.SetKeys(only)
	r.logger.Info("secret key rotated; the old keys are gone from the key file", "key_id", only.PrimaryID(), "dropped", both.IDs()[1:])
	return api.Rotated{Resealed: n, KeyID: only.PrimaryID()}, nil
}

// reseal runs two passes: a writer that read the keyring just before the
// swap may have sealed one record under the old key after the first pass
// went by it.
func (r *rotator) reseal(ctx context.Context) (int, error) {
	n, err := r.st.Reseal(ctx)
	if err != nil {
		return n, err
	}
	m, err := r.st.Reseal(ctx)
	n += m
	for _, reseal := range r.also {
		if err != nil {
			break
		}
		m, err = reseal(ctx, liveKeys{r.st})
		n += m
	}
	return n, err
}

// resealSigningKey seals the registry's shared token signing key again
// under the current key.
func resealSigningKey(dir *access.Directory) func(ctx context.Context, keys access.Sealer) (int, error) {
	return func(ctx context.Context, keys access.Sealer) (int, error) {
		if err := regauth.ResealShared(ctx, dir, keys, isAccessNotFound); err != nil {
			return 0, err
		}
		return 1, nil
	}
}
