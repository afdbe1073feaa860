// Package config loads Slipway's settings from an optional YAML file and the
// SLIPWAY_* environment variables; the environment wins.
package config

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slipway-build/slipway/natsd"
	"github.com/slipway-build/slipway/outbound"
	"github.com/slipway-build/slipway/seal"
)

// Config is every setting `slipway serve` reads.
type Config struct {
	HTTPAddr     string `yaml:"http_addr"`
	DataDir      string `yaml:"data_dir"`
	APIToken     string `yaml:"api_token"`
	RegistryAddr string `yaml:"registry_addr"`
	// RegistryListen is where `slipway registry` listens when the name
	// images use (RegistryAddr, such as registry:5000) is not an address
	// to bind, such as :5000. Empty means RegistryAddr.
	RegistryListen string `yaml:"registry_listen"`
	// RegistryAuth is "token" (the embedded registry asks Slipway's token
	// server at /v2/token) or "none" (anyone who reaches it may read,
	// push and delete).
	RegistryAuth string `yaml:"registry_auth"`
	// BuildkitAddr is one address, a comma-separated list (a pool), or one
	// dns+tcp://name:port whose A/AAAA records are the daemons.
	BuildkitAddr string `yaml:"buildkit_addr"`
	// BuildkitAffinityMargin is how many more running builds a pool's
	// daemon may have than the least busy one and still get the builds of
	// the repository it built last.
	BuildkitAffinityMargin int    `yaml:"buildkit_affinity_margin"`
	NATSURL                string `yaml:"nats_url"`
	NATSListen             string `yaml:"nats_listen"`
	// NATSCreds is the credentials file a process connects to
	// SLIPWAY_NATS_URL with: the nkey seed `slipway serve` writes to
	// <data dir>/nats.nk, a NATS .creds file, or one line user:password.
	NATSCreds string `yaml:"nats_creds"`
	// NATSTLSCert and NATSTLSKey make the embedded NATS take TLS clients
	// only; an address other machines reach needs them.
	NATSTLSCert string `yaml:"nats_tls_cert"`
	NATSTLSKey  string `yaml:"nats_tls_key"`
	// NATSTLSCA is the PEM a NATS server's certificate must chain to.
	NATSTLSCA       string          `yaml:"nats_tls_ca"`
	PublicURL       string          `yaml:"public_url"`
	Workers         int             `yaml:"workers"`
	DockerHubMirror string          `yaml:"dockerhub_mirror"`
	HookSchedule    []time.Duration `yaml:"hook_schedule"`
	LogLevel        string          `yaml:"log_level"`
	// LogFormat is "text" (key=value lines) or "json" (one object a line).
	LogFormat string `yaml:"log_format"`
	// PprofAddr serves net/http/pprof on this loopback address; empty
	// (the default) serves no profiles.
	PprofAddr string `yaml:"pprof_addr"`
	// NATSReplicas is the replication factor of streams and buckets.
	NATSReplicas int `yaml:"nats_replicas"`
	// ReconcileInterval is how often branch tips are compared with the
	// last builds (0 turns it off).
	ReconcileInterval time.Duration `yaml:"reconcile_interval"`
	// ShutdownGrace is how long running builds may finish after SIGTERM.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// AckWait bounds how long the job of a worker that died waits before
	// another worker takes it.
	AckWait time.Duration `yaml:"ack_wait"`
	// RegistryRetry is how long a build keeps retrying an unreachable
	// registry before it fails.
	RegistryRetry time.Duration `yaml:"registry_retry"`
	// LogLimit is the most a build's log keeps, in bytes; the build goes on
	// past it, its log does not.
	LogLimit int64 `yaml:"log_limit"`
	// MirrorMaxBytes bounds the per-repository Git mirrors under
	// <data dir>/mirrors; 0 turns mirrors off (every build clones).
	MirrorMaxBytes int64 `yaml:"mirror_max_bytes"`
	// GitHub App mode: installation tokens for clones and statuses.
	GitHubAppID      int64  `yaml:"github_app_id"`
	GitHubAppKeyFile string `yaml:"github_app_key_file"`
	GitHubAPIURL     string `yaml:"github_api_url"`
	// BuildNetwork is "bridge" (RUN steps get their own network namespace
	// on a fenced bridge) or "host" (they share the host's network).
	BuildNetwork string `yaml:"build_network"`
	// BuildBridge and BuildSubnet name this instance's build bridge; each
	// Slipway on one machine needs its own pair.
	BuildBridge string `yaml:"build_bridge"`
	BuildSubnet string `yaml:"build_subnet"`
	// CNIDir holds the CNI plugins; empty looks in cni/ next to slipway,
	// then in cni/ of the PATH directories.
	CNIDir string `yaml:"cni_dir"`
	// OutboundAllow are address ranges Slipway may connect to although
	// they are not public (loopback, private networks); see package
	// outbound.
	OutboundAllow []netip.Prefix `yaml:"outbound_allow_cidrs"`
	// SecretKey seals repositories' secrets at rest: base64 32-byte keys
	// separated by commas, the first sealing, all opening. Empty means the
	// key file in the data dir (package seal).
	SecretKey string `yaml:"secret_key"`
}

// Defaults returns the settings used when nothing is configured.
func Defaults() Config {
	return Config{
		HTTPAddr:               ":8080",
		DataDir:                "./data",
		RegistryAddr:           "127.0.0.1:5000",
		RegistryAuth:           "token",
		Workers:                2,
		BuildkitAffinityMargin: 2,
		LogLevel:               "info",
		LogFormat:              "text",
		NATSReplicas:           1,
		ReconcileInterval:      10 * time.Minute,
		ShutdownGrace:          5 * time.Minute,
		AckWait:                30 * time.Second,
		RegistryRetry:          10 * time.Minute,
		BuildNetwork:           "bridge",
		BuildBridge:            "slipway0",
		BuildSubnet:            "10.213.0.0/24",
		LogLimit:               16 << 20,
		MirrorMaxBytes:         10 << 30,
	}
}

// key ties one setting to its environment variable and YAML name.
type key struct {
	env  string
	set  func(c *Config, v string) error
	yaml string
}

func duration(p func(c *Config) *time.Duration, least time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < least {
			return fmt.Errorf("want a duration of at least %s such as 30s or 10m, got %q", least, v)
		}
		*p(c) = d
		return nil
	}
}

func str(p func(c *Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

// EnvNames lists every environment variable Slipway reads, in the order
// of its settings; the deployment files are checked against it.
func EnvNames() []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.env
	}
	return out
}

var keys = []key{
	{"SLIPWAY_HTTP_ADDR", str(func(c *Config) *string { return &c.HTTPAddr }), "http_addr"},
	{"SLIPWAY_DATA_DIR", str(func(c *Config) *string { return &c.DataDir }), "data_dir"},
	{"SLIPWAY_API_TOKEN", str(func(c *Config) *string { return &c.APIToken }), "api_token"},
	{"SLIPWAY_SECRET_KEY", func(c *Config, v string) error {
		keys, err := seal.ParseKeys(strings.Split(v, ","))
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return fmt.Errorf("want base64 32-byte keys separated by commas")
		}
		c.SecretKey = v
		return nil
	}, "secret_key"},
	{"SLIPWAY_REGISTRY_ADDR", str(func(c *Config) *string { return &c.RegistryAddr }), "registry_addr"},
	{"SLIPWAY_REGISTRY_LISTEN", str(func(c *Config) *string { return &c.RegistryListen }), "registry_listen"},
	{"SLIPWAY_REGISTRY_AUTH", func(c *Config, v string) error {
		if v != "token" && v != "none" {
			return fmt.Errorf("want token or none, got %q", v)
		}
		c.RegistryAuth = v
		return nil
	}, "registry_auth"},
	{"SLIPWAY_BUILDKIT_ADDR", str(func(c *Config) *string { return &c.BuildkitAddr }), "buildkit_addr"},
	{"SLIPWAY_BUILDKIT_AFFINITY_MARGIN", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("want a whole number ≥ 0, got %q", v)
		}
		c.BuildkitAffinityMargin = n
		return nil
	}, "buildkit_affinity_margin"},
	{"SLIPWAY_NATS_URL", str(func(c *Config) *string { return &c.NATSURL }), "nats_url"},
	{"SLIPWAY_NATS_LISTEN", str(func(c *Config) *string { return &c.NATSListen }), "nats_listen"},
	{"SLIPWAY_NATS_CREDS", str(func(c *Config) *string { return &c.NATSCreds }), "nats_creds"},
	{"SLIPWAY_NATS_TLS_CERT", str(func(c *Config) *string { return &c.NATSTLSCert }), "nats_tls_cert"},
	{"SLIPWAY_NATS_TLS_KEY", str(func(c *Config) *string { return &c.NATSTLSKey }), "nats_tls_key"},
	{"SLIPWAY_NATS_TLS_CA", str(func(c *Config) *string { return &c.NATSTLSCA }), "nats_tls_ca"},
	{"SLIPWAY_PUBLIC_URL", str(func(c *Config) *string { return &c.PublicURL }), "public_url"},
	{"SLIPWAY_DOCKERHUB_MIRROR", str(func(c *Config) *string { return &c.DockerHubMirror }), "dockerhub_mirror"},
	{"SLIPWAY_LOG_LEVEL", str(func(c *Config) *string { return &c.LogLevel }), "log_level"},
	{"SLIPWAY_LOG_FORMAT", str(func(c *Config) *string { return &c.LogFormat }), "log_format"},
	{"SLIPWAY_PPROF_ADDR", func(c *Config, v string) error {
		if err := loopbackAddr(v); err != nil {
			return err
		}
		c.PprofAddr = v
		return nil
	}, "pprof_addr"},
	{"SLIPWAY_RECONCILE_INTERVAL", duration(func(c *Config) *time.Duration { return &c.ReconcileInterval }, 0), "reconcile_interval"},
	{"SLIPWAY_SHUTDOWN_GRACE", duration(func(c *Config) *time.Duration { return &c.ShutdownGrace }, 0), "shutdown_grace"},
	{"SLIPWAY_ACK_WAIT", duration(func(c *Config) *time.Duration { return &c.AckWait }, time.Second), "ack_wait"},
	{"SLIPWAY_REGISTRY_RETRY", duration(func(c *Config) *time.Duration { return &c.RegistryRetry }, 0), "registry_retry"},
	{"SLIPWAY_NATS_REPLICAS", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5 {
			return fmt.Errorf("want 1 to 5, got %q", v)
		}
		c.NATSReplicas = n
		return nil
	}, "nats_replicas"},
	{"SLIPWAY_BUILD_NETWORK", str(func(c *Config) *string { return &c.BuildNetwork }), "build_network"},
	{"SLIPWAY_BUILD_BRIDGE", str(func(c *Config) *string { return &c.BuildBridge }), "build_bridge"},
	{"SLIPWAY_BUILD_SUBNET", str(func(c *Config) *string { return &c.BuildSubnet }), "build_subnet"},
	{"SLIPWAY_CNI_DIR", str(func(c *Config) *string { return &c.CNIDir }), "cni_dir"},
	{"SLIPWAY_GITHUB_APP_KEY_FILE", str(func(c *Config) *string { return &c.GitHubAppKeyFile }), "github_app_key_file"},
	{"SLIPWAY_GITHUB_API_URL", str(func(c *Config) *string { return &c.GitHubAPIURL }), "github_api_url"},
	{"SLIPWAY_GITHUB_APP_ID", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("want the App's numeric id, got %q", v)
		}
		c.GitHubAppID = n
		return nil
	}, "github_app_id"},
	{"SLIPWAY_OUTBOUND_ALLOW_CIDRS", func(c *Config, v string) error {
		p, err := outbound.ParseCIDRs(v)
		if err != nil {
			return err
		}
		c.OutboundAllow = p
		return nil
	}, "outbound_allow_cidrs"},
	{"SLIPWAY_WORKERS", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("want a whole number ≥ 0, got %q", v)
		}
		c.Workers = n
		return nil
	}, "workers"},
	{"SLIPWAY_HOOK_SCHEDULE", func(c *Config, v string) error {
		var s []time.Duration
		for _, part := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(part))
			if err != nil || d < 0 {
				return fmt.Errorf("want comma-separated durations such as 5s,1m, got %q", v)
			}
			s = append(s, d)
		}
		c.HookSchedule = s
		return nil
	}, "hook_schedule"},
	{"SLIPWAY_LOG_LIMIT", func(c *Config, v string) error {
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		if n < 1<<10 {
			return fmt.Errorf("want at least 1KiB, got %q", v)
		}
		c.LogLimit = n
		return nil
	}, "log_limit"},
	{"SLIPWAY_MIRROR_MAX_BYTES", func(c *Config, v string) error {
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		c.MirrorMaxBytes = n
		return nil
	}, "mirror_max_bytes"},
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*(B|KiB|MiB|GiB)?$`)

// ParseSize reads a size written in bytes or with a binary unit: 65536,
// 512KiB, 16MiB, 1GiB.
func ParseSize(v string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(v))
	if m == nil {
		return 0, fmt.Errorf("want a size such as 16MiB, 512KiB or 65536 (bytes), got %q", v)
	}
	unit := map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("size %q is too large", v)
	}
	return n * unit, nil
}

// Load reads file (if not empty) and then the environment given by getenv.
func Load(file string, getenv func(string) string) (Config, error) {
	c := Defaults()
	if file != "" {
		if err := loadFile(&c, file); err != nil {
			return Config{}, err
		}
	}
	for _, k := range keys {
		v := getenv(k.env)
		if v == "" {
			continue
		}
		if err := k.set(&c, v); err != nil {
			return Config{}, fmt.Errorf("%s: %w", k.env, err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func loadFile(c *Config, file string) error {
	raw, err := os.ReadFile(file) // #nosec G304 -- the operator's own -config file
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	// Values are read as strings first so that file and environment share
	// one parser and one error message per key.
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("config file %s: %w", file, err)
	}
	known := map[string]key{}
	for _, k := range keys {
		known[k.yaml] = k
	}
	for name, v := range m {
		k, ok := known[name]
		if !ok {
			return fmt.Errorf("config file %s: unknown key %q", file, name)
		}
		if v == nil {
			continue // "key:" with no value is unset, like an empty variable
		}
		if err := k.set(c, yamlString(v)); err != nil {
			return fmt.Errorf("config file %s: %s: %w", file, name, err)
		}
	}
	return nil
}

func yamlString(v any) string {
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, p := range list {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// Validate checks every value so that a bad one stops start-up with one line
// naming its key.
func (c Config) Validate() error {
	if err := checkAddr(c.HTTPAddr); err != nil {
		return fmt.Errorf("SLIPWAY_HTTP_ADDR: %w", err)
	}
	if c.DataDir == "" {
		return fmt.Errorf("SLIPWAY_DATA_DIR: must not be empty")
	}
	if c.RegistryAddr != "off" {
		if err := checkAddr(c.RegistryAddr); err != nil {
			return fmt.Errorf("SLIPWAY_REGISTRY_ADDR: %w (or \"off\")", err)
		}
	}
	if c.RegistryListen != "" {
		if err := checkAddr(c.RegistryListen); err != nil {
			return fmt.Errorf("SLIPWAY_REGISTRY_LISTEN: %w", err)
		}
	}
	if c.RegistryAuth != "token" && c.RegistryAuth != "none" {
		return fmt.Errorf("SLIPWAY_REGISTRY_AUTH: want token or none, got %q", c.RegistryAuth)
	}
	if err := checkBuildkitAddr(c.BuildkitAddr); err != nil {
		return err
	}
	if c.BuildkitAffinityMargin < 0 {
		return fmt.Errorf("SLIPWAY_BUILDKIT_AFFINITY_MARGIN: want a whole number ≥ 0, got %d", c.BuildkitAffinityMargin)
	}
	if c.NATSURL != "" {
		if err := checkURL(c.NATSURL, "nats", "tls", "ws", "wss"); err != nil {
			return fmt.Errorf("SLIPWAY_NATS_URL: %w", err)
		}
	}
	if err := c.validateNATSListen(); err != nil {
		return err
	}
	if c.PublicURL != "" {
		if strings.Contains(c.PublicURL, ",") {
			return fmt.Errorf("SLIPWAY_PUBLIC_URL: want one URL, got %q", c.PublicURL)
		}
		if err := checkURL(c.PublicURL, "http", "https"); err != nil {
			return fmt.Errorf("SLIPWAY_PUBLIC_URL: %w", err)
		}
	}
	switch {
	case c.GitHubAppID != 0 && c.GitHubAppKeyFile == "":
		return fmt.Errorf("SLIPWAY_GITHUB_APP_ID: GitHub App mode also needs SLIPWAY_GITHUB_APP_KEY_FILE")
	case c.GitHubAppID == 0 && c.GitHubAppKeyFile != "":
		return fmt.Errorf("SLIPWAY_GITHUB_APP_KEY_FILE: GitHub App mode also needs SLIPWAY_GITHUB_APP_ID")
	}
	if c.GitHubAPIURL != "" {
		if err := checkURL(c.GitHubAPIURL, "http", "https"); err != nil {
			return fmt.Errorf("SLIPWAY_GITHUB_API_URL: %w", err)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("SLIPWAY_LOG_LEVEL: want debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("SLIPWAY_LOG_FORMAT: want text or json, got %q", c.LogFormat)
	}
	return c.validateBuildNetwork()
}

// loopbackAddr admits host:port on a loopback address only: profiles show
// what the process holds, and are for whoever is on the machine.
func loopbackAddr(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		return fmt.Errorf("want a loopback host:port such as 127.0.0.1:6060, got %q", v)
	}
	if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
		return fmt.Errorf("want a loopback address (127.0.0.1, [::1], localhost), got %q", v)
	}
	return nil
}

// bridgeRE is an interface name (at most 15 bytes) that also makes an
// iptables chain name.
var bridgeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)

func (c Config) validateBuildNetwork() error {
	if c.BuildNetwork != "bridge" && c.BuildNetwork != "host" {
		return fmt.Errorf("SLIPWAY_BUILD_NETWORK: want bridge or host, got %q", c.BuildNetwork)
	}
	if !bridgeRE.MatchString(c.BuildBridge) {
		return fmt.Errorf("SLIPWAY_BUILD_BRIDGE: want an interface name of 1 to 15 letters, digits, '.', '_' or '-', got %q", c.BuildBridge)
	}
	if _, err := BuildSubnet(c.BuildSubnet); err != nil {
		return fmt.Errorf("SLIPWAY_BUILD_SUBNET: %w", err)
	}
	return nil
}

// BuildSubnet parses a build bridge's range: a private IPv4 network, given
// by its first address, with room for the gateway and builds.
func BuildSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() > 29 || p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("want an IPv4 network such as 10.213.0.0/24 (at most /29), got %q", s)
	}
	if last := lastAddr(p); !p.Addr().IsPrivate() || !last.IsPrivate() {
		return netip.Prefix{}, fmt.Errorf("want a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16), got %q", s)
	}
	return p, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(a[:])|host)
	return netip.AddrFrom4(a)
}

// RegistryBind is where the registry role listens.
func (c Config) RegistryBind() string {
	if c.RegistryListen != "" {
		return c.RegistryListen
	}
	return c.RegistryAddr
}

// validateNATSListen refuses an embedded NATS that other machines reach
// without TLS, and half a TLS setting.
func (c Config) validateNATSListen() error {
	switch {
	case c.NATSTLSCert != "" && c.NATSTLSKey == "":
		return errors.New("SLIPWAY_NATS_TLS_CERT: needs SLIPWAY_NATS_TLS_KEY, the certificate's private key")
	case c.NATSTLSCert == "" && c.NATSTLSKey != "":
		return errors.New("SLIPWAY_NATS_TLS_KEY: needs SLIPWAY_NATS_TLS_CERT, the key's certificate")
	}
	if c.NATSListen == "" {
		return nil
	}
	if err := checkAddr(c.NATSListen); err != nil {
		return fmt.Errorf("SLIPWAY_NATS_LISTEN: %w", err)
	}
	if natsd.CheckListen(c.NATSListen, c.NATSTLSCert != "") != nil {
		return fmt.Errorf("SLIPWAY_NATS_LISTEN: %q is reachable from other machines; set SLIPWAY_NATS_TLS_CERT and SLIPWAY_NATS_TLS_KEY, or listen on 127.0.0.1", c.NATSListen)
	}
	return nil
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad port in %q", addr)
	}
	return nil
}

func checkURL(raw string, schemes ...string) error {
	for _, one := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.Host == "" {
			return fmt.Errorf("want a URL such as %s://host:port, got %q", schemes[0], raw)
		}
		ok := false
		for _, s := range schemes {
			ok = ok || u.Scheme == s
		}
		if !ok {
			return fmt.Errorf("scheme must be one of %s, got %q", strings.Join(schemes, ", "), raw)
		}
	}
	return nil
}

// ExternalURL is how links to this server are written: PublicURL when set,
// else derived from the listen address.
func (c Config) ExternalURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	host, port, _ := net.SplitHostPort(c.HTTPAddr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// checkBuildkitAddr admits "" (the embedded daemon), a comma-separated list
// of addresses, or one dns+tcp://name:port.
func checkBuildkitAddr(v string) error {
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	for _, a := range parts {
		a = strings.TrimSpace(a)
		if !strings.Contains(a, "://") {
			return fmt.Errorf("SLIPWAY_BUILDKIT_ADDR: want addresses such as unix:///run/buildkit/buildkitd.sock or tcp://host:1234, comma-separated, or one dns+tcp://name:port; got %q", v)
		}
		if strings.HasPrefix(a, "dns+tcp://") && len(parts) > 1 {
			return fmt.Errorf("SLIPWAY_BUILDKIT_ADDR: a dns+tcp name must be the only address, got %q", v)
		}
	}
	return nil
}
