package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/slipway-build/slipway/api"
)

const defaultServer = "http://localhost:8080"

// clientConfig is what `slipway login` keeps: the server and the token
// that works there.
type clientConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// configPath is $XDG_CONFIG_HOME/slipway/config.json, else
// ~/.config/slipway/config.json.
func configPath(getenv func(string) string) (string, error) {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("neither XDG_CONFIG_HOME nor HOME is set: there is nowhere to keep the login")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "slipway", "config.json"), nil
}

// loadConfig reads the login; no file is no login, not an error.
func loadConfig(getenv func(string) string) (clientConfig, error) {
	path, err := configPath(getenv)
	if err != nil {
		return clientConfig{}, nil
	}
	raw, err := os.ReadFile(path) // #nosec G304 -- the user's own config file
	if errors.Is(err, fs.ErrNotExist) {
		return clientConfig{}, nil
	}
	if err != nil {
		return clientConfig{}, fmt.Errorf("read the login: %w", err)
	}
	var cfg clientConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return clientConfig{}, fmt.Errorf("%s: %w (run `slipway login` to write it again)", path, err)
	}
	return cfg, nil
}

// saveConfig writes the login readable by its owner only (0600, in a
// 0700 directory): the token is as good as a password.
func saveConfig(path string, cfg clientConfig) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil { // #nosec G302 -- a directory needs x; 0700 is its owner's alone
		return err
	}
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".config-*.json") // 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// sameServer compares server URLs as typed ("http://h:8080/" is
// "http://h:8080").
func sameServer(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

// serverURL is --server, else $SLIPWAY_URL, else the login's, else
// localhost.
func (c *cli) serverURL(cfg clientConfig) string {
	for _, s := range []string{c.server, c.getenv("SLIPWAY_URL"), cfg.Server} {
		if s != "" {
			return strings.TrimRight(s, "/")
		}
	}
	return defaultServer
}

// client is the API client of the server and token that --server and
// --token, the environment, the login or the data dir name, in that
// order. The login's token goes only to the login's server.
func (c *cli) client() (api.Client, error) {
	cfg, err := loadConfig(c.getenv)
	if err != nil {
		return api.Client{}, err
	}
	server := c.serverURL(cfg)
	token := c.token
	if token == "" {
		token = c.getenv("SLIPWAY_API_TOKEN")
	}
	if token == "" && cfg.Token != "" && sameServer(cfg.Server, server) {
		token = cfg.Token
	}
	if token == "" {
		token = dataDirToken(c.getenv)
	}
	if token == "" {
		return api.Client{}, fmt.Errorf("no API token for %s: run `slipway login --server %s` (or set SLIPWAY_API_TOKEN)", server, server)
	}
	return api.Client{BaseURL: server, Token: token}, nil
}

// dataDirToken is the token `slipway serve` generated in its data dir,
// so that `make run`'s server answers the CLI next to it.
func dataDirToken(getenv func(string) string) string {
	dir := getenv("SLIPWAY_DATA_DIR")
	if dir == "" {
		dir = "./data"
	}
	raw, err := os.ReadFile(filepath.Join(dir, "api-token")) // #nosec G304 -- the token file in the operator's data dir
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(raw))
}

func loginCmd(c *cli) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "login [--server URL] [--token T | --token-stdin]",
		Short: "check an API token on a server and keep both for the next commands",
		Long: `Check an API token with GET /api/v1/whoami and keep the server and the
token in $XDG_CONFIG_HOME/slipway/config.json (~/.config/slipway/config.json),
mode 0600. Later commands use them; --server and --token, or SLIPWAY_URL and
SLIPWAY_API_TOKEN, override the file. Without --token or --token-stdin the
token is $SLIPWAY_API_TOKEN, else asked for on a terminal.`,
		Example: `  slipway login --server https://slipway.example.com --token-stdin < token.txt
  slipway login --server http://localhost:8080 --token "$(cat data/api-token)"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fromStdin && c.token != "" {
				return usageErr("login: give --token or --token-stdin, not both")
			}
			return c.login(cmd, fromStdin)
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "token-stdin", false, "read the token from standard input")
	return cmd
}

func (c *cli) login(cmd *cobra.Command, fromStdin bool) error {
	server := c.server
	if server == "" {
		server = c.getenv("SLIPWAY_URL")
	}
	if server == "" {
		server = defaultServer
	}
	server = strings.TrimRight(server, "/")
	token, err := c.loginToken(fromStdin)
	if err != nil {
		return err
	}
	who, err := api.Client{BaseURL: server, Token: token}.Whoami(cmd.Context())
	if err != nil {
		return explain(err, server)
	}
	path, err := configPath(c.getenv)
	if err != nil {
		return err
	}
	if err := saveConfig(path, clientConfig{Server: server, Token: token}); err != nil {
		return fmt.Errorf("keep the login: %w", err)
	}
	fmt.Fprintf(c.stdout, "logged in to %s as %s\nsaved in %s\n", server, describe(who), path)
	return nil
}

// loginToken is the token to check: --token, stdin, $SLIPWAY_API_TOKEN,
// else asked for.
func (c *cli) loginToken(fromStdin bool) (string, error) {
	var token string
	switch {
	case c.token != "":
		token = c.token
	case fromStdin:
		line, err := bufio.NewReader(io.LimitReader(c.stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the token from stdin: %w", err)
		}
		token = line
	case c.getenv("SLIPWAY_API_TOKEN") != "":
		token = c.getenv("SLIPWAY_API_TOKEN")
	case c.stdinTerminal:
		fmt.Fprint(c.stderr, "API token: ")
		raw, err := term.ReadPassword(int(os.Stdin.Fd())) // #nosec G115 -- a file descriptor fits an int
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read the token: %w", err)
		}
		token = string(raw)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", usageErr("login: no token: give --token, --token-stdin or SLIPWAY_API_TOKEN " +
			"(an admin makes one with `slipway token create`; `slipway serve` keeps its own in <data dir>/api-token)")
	}
	return token, nil
}

// describe says who a token is, as login and whoami print it.
func describe(w api.Whoami) string {
	if w.SiteAdmin {
		return w.Account + " (bootstrap admin)"
	}
	return fmt.Sprintf("%s (%s in %s)", w.Account, w.Role, w.Organization)
}

func logoutCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "forget the login (the token itself stays valid: revoke it with `slipway token revoke`)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			path, err := configPath(c.getenv)
			if err != nil {
				return err
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			fmt.Fprintln(c.stdout, "removed", path)
			return nil
		},
	}
}

func whoamiCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "the account, organization and role of the token in use",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			who, err := api.Whoami(cmd.Context())
			if err != nil {
				return explain(err, api.BaseURL)
			}
			if c.format("table") == "json" {
				return writeJSON(c.stdout, who)
			}
			_, err = fmt.Fprintf(c.stdout, "%s on %s\n", describe(who), api.BaseURL)
			return err
		},
	}
}
