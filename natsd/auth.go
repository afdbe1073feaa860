package natsd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// CheckListen refuses a listen address that other machines can reach
// unless clients connect over TLS: the key-value records hold every build,
// and nkey authentication alone would still send them in the clear. Only
// an IP literal on loopback or "localhost" counts as local; a host name is
// not resolved, so it needs TLS too. It decides without binding or dialing.
func CheckListen(listen string, withTLS bool) error {
	if listen == "" || withTLS {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("nats listen address %q: %w", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("nats listen address %q is reachable from other machines: give a TLS certificate and key, or listen on 127.0.0.1", listen)
}

// clientSeed returns the nkey pair outside clients authenticate with,
// from file, or made and written there (0600) on first start. The file is
// the credential: whoever reads it reads every record.
func clientSeed(file string) (nkeys.KeyPair, error) {
	raw, err := os.ReadFile(file) // #nosec G304 -- the operator's own data dir
	if err == nil {
		kp, perr := nkeys.FromSeed(bytes.TrimSpace(raw))
		if perr != nil {
			return nil, fmt.Errorf("nats credentials %s: not an nkey user seed: %w", file, perr)
		}
		return kp, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("nats credentials: new nkey: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	if err := writeSecret(file, append(seed, '\n')); err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	return kp, nil
}

// writeSecret creates file with mode 0600 and b in it, and fails if it
// exists: two processes starting at once must not hand out different keys.
func writeSecret(file string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the operator's own data dir
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		_ = os.Remove(file)
		return err
	}
	return f.Close()
}

// nkeyUser is the server's entry for a key pair's public half.
func nkeyUser(kp nkeys.KeyPair) (*server.NkeyUser, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("nats nkey: %w", err)
	}
	return &server.NkeyUser{Nkey: pub}, nil
}

// nkeyOption signs the server's nonce with kp, for a connection made in
// this process with a key that never touches the disk.
func nkeyOption(kp nkeys.KeyPair) (nats.Option, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("nats nkey: %w", err)
	}
	return nats.Nkey(pub, kp.Sign), nil
}

// ClientOptions are the options a Slipway process outside the embedded
// server connects with. creds is SLIPWAY_NATS_CREDS: an nkey seed file as
// `slipway serve` writes (nats.nk in its data dir), a standard NATS .creds
// file (user JWT and seed) for an operator-run cluster, or a file with one
// line user:password. ca is SLIPWAY_NATS_TLS_CA, the PEM the server's
// certificate must chain to; either may be empty.
func ClientOptions(creds, ca string) ([]nats.Option, error) {
	var opts []nats.Option
	if creds != "" {
		o, err := credsOption(creds)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	if ca != "" {
		if _, err := os.Stat(ca); err != nil {
			return nil, fmt.Errorf("nats tls ca: %w", err)
		}
		opts = append(opts, nats.RootCAs(ca))
	}
	return opts, nil
}

// credsOption reads which kind of credentials file creds is. Its contents
// never reach an error message: a typo would print the secret.
func credsOption(creds string) (nats.Option, error) {
	raw, err := os.ReadFile(creds) // #nosec G304 -- the operator names the file
	if err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	text := strings.TrimSpace(string(raw))
	switch {
	case strings.Contains(text, "-----BEGIN NATS USER JWT-----"):
		return nats.UserCredentials(creds), nil
	case strings.HasPrefix(text, "SU"):
		o, err := nats.NkeyOptionFromSeed(creds)
		if err != nil {
			return nil, fmt.Errorf("nats credentials %s: nkey seed: %w", creds, err)
		}
		return o, nil
	}
	user, password, ok := strings.Cut(text, ":")
	if !ok || user == "" || password == "" || strings.ContainsAny(text, "\n") {
		return nil, fmt.Errorf("nats credentials %s: want an nkey seed, a .creds file or one line user:password", creds)
	}
	return nats.UserInfo(user, password), nil
}
