package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envOf returns a getenv reading only m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "slipway.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load("", envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{HTTPAddr: ":8080", DataDir: "./data", RegistryAddr: "127.0.0.1:5000", RegistryAuth: "token", Workers: 2, LogLevel: "info", LogFormat: "text", BuildkitAffinityMargin: 2,
		NATSReplicas: 1, ReconcileInterval: 10 * time.Minute, ShutdownGrace: 5 * time.Minute, AckWait: 30 * time.Second, RegistryRetry: 10 * time.Minute,
		BuildNetwork: "bridge", BuildBridge: "slipway0", BuildSubnet: "10.213.0.0/24",
		LogLimit: 16 << 20, MirrorMaxBytes: 10 << 30}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load = %+v, want %+v", c, want)
	}
	if err := Defaults().Validate(); err != nil {
		t.Errorf("Defaults do not validate: %v", err)
	}
}

const fullFile = `
http_addr: 0.0.0.0:9000
data_dir: /var/lib/slipway
api_token: slp_from_file
registry_addr: registry.internal:5000
registry_auth: none
buildkit_addr: unix:///run/buildkit/buildkitd.sock
nats_url: nats://nats-1:4222,nats://nats-2:4222
nats_listen: 127.0.0.1:4222
public_url: https://slipway.acme.example/
workers: 4
dockerhub_mirror: mirror.gcr.io
hook_schedule: [5s, 1m, 1h30m]
log_level: debug
log_format: json
build_network: bridge
build_bridge: slipway1
build_subnet: 192.168.77.0/24
cni_dir: /usr/lib/slipway/cni
log_limit: 512KiB
mirror_max_bytes: 1GiB
`

func TestLoadFile(t *testing.T) {
	c, err := Load(writeFile(t, fullFile), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		HTTPAddr: "0.0.0.0:9000", DataDir: "/var/lib/slipway", APIToken: "slp_from_file",
		RegistryAddr: "registry.internal:5000", RegistryAuth: "none", BuildkitAddr: "unix:///run/buildkit/buildkitd.sock", BuildkitAffinityMargin: 2,
		NATSURL: "nats://nats-1:4222,nats://nats-2:4222", NATSListen: "127.0.0.1:4222",
		PublicURL: "https://slipway.acme.example/", Workers: 4, DockerHubMirror: "mirror.gcr.io",
		HookSchedule: []time.Duration{5 * time.Second, time.Minute, 90 * time.Minute}, LogLevel: "debug", LogFormat: "json",
		NATSReplicas: 1, ReconcileInterval: 10 * time.Minute, ShutdownGrace: 5 * time.Minute, AckWait: 30 * time.Second, RegistryRetry: 10 * time.Minute,
		BuildNetwork: "bridge", BuildBridge: "slipway1", BuildSubnet: "192.168.77.0/24", CNIDir: "/usr/lib/slipway/cni",
		LogLimit: 512 << 10, MirrorMaxBytes: 1 << 30,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load =\n %+v\nwant\n %+v", c, want)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	env := map[string]string{
		"SLIPWAY_HTTP_ADDR":     "127.0.0.1:8081",
		"SLIPWAY_API_TOKEN":     "slp_from_env",
		"SLIPWAY_WORKERS":       "0",
		"SLIPWAY_HOOK_SCHEDULE": "10s",
		"SLIPWAY_LOG_LEVEL":     "warn",
	}
	c, err := Load(writeFile(t, fullFile), envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8081" || c.APIToken != "slp_from_env" || c.Workers != 0 ||
		!reflect.DeepEqual(c.HookSchedule, []time.Duration{10 * time.Second}) || c.LogLevel != "warn" {
		t.Errorf("environment did not win: %+v", c)
	}
	// Keys the environment leaves unset keep the file's values.
	if c.DataDir != "/var/lib/slipway" || c.DockerHubMirror != "mirror.gcr.io" {
		t.Errorf("file values lost: %+v", c)
	}
}

func TestEnvEveryKey(t *testing.T) {
	tests := []struct {
		key, value string
		got        func(Config) any
		want       any
	}{
		{"SLIPWAY_HTTP_ADDR", "[::1]:8443", func(c Config) any { return c.HTTPAddr }, "[::1]:8443"},
		{"SLIPWAY_DATA_DIR", "/srv/slipway", func(c Config) any { return c.DataDir }, "/srv/slipway"},
		{"SLIPWAY_API_TOKEN", "slp_0123", func(c Config) any { return c.APIToken }, "slp_0123"},
		{"SLIPWAY_SECRET_KEY", "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=,ERERERERERERERERERERERERERERERERERERERERERE=", func(c Config) any { return c.SecretKey }, "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=,ERERERERERERERERERERERERERERERERERERERERERE="},
		{"SLIPWAY_REGISTRY_ADDR", "0.0.0.0:5001", func(c Config) any { return c.RegistryAddr }, "0.0.0.0:5001"},
		{"SLIPWAY_REGISTRY_ADDR", "off", func(c Config) any { return c.RegistryAddr }, "off"},
		{"SLIPWAY_REGISTRY_AUTH", "none", func(c Config) any { return c.RegistryAuth }, "none"},
		{"SLIPWAY_REGISTRY_AUTH", "token", func(c Config) any { return c.RegistryAuth }, "token"},
		{"SLIPWAY_BUILDKIT_ADDR", "tcp://buildkitd:1234", func(c Config) any { return c.BuildkitAddr }, "tcp://buildkitd:1234"},
		{"SLIPWAY_BUILDKIT_ADDR", "tcp://bk-0:1234,unix:///run/bk.sock", func(c Config) any { return c.BuildkitAddr }, "tcp://bk-0:1234,unix:///run/bk.sock"},
		{"SLIPWAY_BUILDKIT_ADDR", "dns+tcp://buildkitd.slipway.svc:1234", func(c Config) any { return c.BuildkitAddr }, "dns+tcp://buildkitd.slipway.svc:1234"},
		{"SLIPWAY_BUILDKIT_AFFINITY_MARGIN", "0", func(c Config) any { return c.BuildkitAffinityMargin }, 0},
		{"SLIPWAY_BUILDKIT_AFFINITY_MARGIN", "5", func(c Config) any { return c.BuildkitAffinityMargin }, 5},
		{"SLIPWAY_NATS_URL", "tls://nats.acme.example:4222", func(c Config) any { return c.NATSURL }, "tls://nats.acme.example:4222"},
		{"SLIPWAY_NATS_LISTEN", ":4222", func(c Config) any { return c.NATSListen }, ":4222"},
		{"SLIPWAY_REGISTRY_LISTEN", ":5000", func(c Config) any { return c.RegistryBind() }, ":5000"},
		{"SLIPWAY_NATS_LISTEN", "127.0.0.1:4222", func(c Config) any { return c.NATSListen }, "127.0.0.1:4222"},
		{"SLIPWAY_NATS_CREDS", "/var/lib/slipway/nats.nk", func(c Config) any { return c.NATSCreds }, "/var/lib/slipway/nats.nk"},
		{"SLIPWAY_NATS_TLS_CERT", "/etc/slipway/nats.pem", func(c Config) any { return c.NATSTLSCert }, "/etc/slipway/nats.pem"},
		{"SLIPWAY_NATS_TLS_KEY", "/etc/slipway/nats-key.pem", func(c Config) any { return c.NATSTLSKey }, "/etc/slipway/nats-key.pem"},
		{"SLIPWAY_NATS_TLS_CA", "/etc/slipway/ca.pem", func(c Config) any { return c.NATSTLSCA }, "/etc/slipway/ca.pem"},
		{"SLIPWAY_PUBLIC_URL", "http://builds.lan:8080", func(c Config) any { return c.PublicURL }, "http://builds.lan:8080"},
		{"SLIPWAY_WORKERS", "8", func(c Config) any { return c.Workers }, 8},
		{"SLIPWAY_DOCKERHUB_MIRROR", "https://mirror.gcr.io", func(c Config) any { return c.DockerHubMirror }, "https://mirror.gcr.io"},
		{"SLIPWAY_HOOK_SCHEDULE", "5s, 30s,2m", func(c Config) any { return c.HookSchedule }, []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute}},
		{"SLIPWAY_LOG_LEVEL", "error", func(c Config) any { return c.LogLevel }, "error"},
		{"SLIPWAY_LOG_FORMAT", "json", func(c Config) any { return c.LogFormat }, "json"},
		{"SLIPWAY_NATS_REPLICAS", "3", func(c Config) any { return c.NATSReplicas }, 3},
		{"SLIPWAY_RECONCILE_INTERVAL", "2m", func(c Config) any { return c.ReconcileInterval }, 2 * time.Minute},
		{"SLIPWAY_RECONCILE_INTERVAL", "0s", func(c Config) any { return c.ReconcileInterval }, time.Duration(0)},
		{"SLIPWAY_SHUTDOWN_GRACE", "90s", func(c Config) any { return c.ShutdownGrace }, 90 * time.Second},
		{"SLIPWAY_ACK_WAIT", "5s", func(c Config) any { return c.AckWait }, 5 * time.Second},
		{"SLIPWAY_REGISTRY_RETRY", "1m", func(c Config) any { return c.RegistryRetry }, time.Minute},
		{"SLIPWAY_BUILD_NETWORK", "host", func(c Config) any { return c.BuildNetwork }, "host"},
		{"SLIPWAY_BUILD_BRIDGE", "slw12", func(c Config) any { return c.BuildBridge }, "slw12"},
		{"SLIPWAY_BUILD_SUBNET", "172.20.0.0/16", func(c Config) any { return c.BuildSubnet }, "172.20.0.0/16"},
		{"SLIPWAY_BUILD_SUBNET", "10.0.0.0/8", func(c Config) any { return c.BuildSubnet }, "10.0.0.0/8"},
		{"SLIPWAY_BUILD_SUBNET", "192.168.255.248/29", func(c Config) any { return c.BuildSubnet }, "192.168.255.248/29"},
		{"SLIPWAY_CNI_DIR", "/opt/cni/bin", func(c Config) any { return c.CNIDir }, "/opt/cni/bin"},
		{"SLIPWAY_OUTBOUND_ALLOW_CIDRS", "127.0.0.0/8, 10.1.0.0/16", func(c Config) any { return fmt.Sprint(c.OutboundAllow) }, "[127.0.0.0/8 10.1.0.0/16]"},
		{"SLIPWAY_GITHUB_API_URL", "https://ghe.acme.example/api/v3/", func(c Config) any { return c.GitHubAPIURL }, "https://ghe.acme.example/api/v3/"},
		{"SLIPWAY_LOG_LIMIT", "16MiB", func(c Config) any { return c.LogLimit }, int64(16777216)},
		{"SLIPWAY_LOG_LIMIT", "512KiB", func(c Config) any { return c.LogLimit }, int64(524288)},
		{"SLIPWAY_LOG_LIMIT", "65536", func(c Config) any { return c.LogLimit }, int64(65536)},
		{"SLIPWAY_MIRROR_MAX_BYTES", "0", func(c Config) any { return c.MirrorMaxBytes }, int64(0)},
		{"SLIPWAY_MIRROR_MAX_BYTES", "2GiB", func(c Config) any { return c.MirrorMaxBytes }, int64(2147483648)},
		{"SLIPWAY_LOG_LIMIT", "2048B", func(c Config) any { return c.LogLimit }, int64(2048)},
		{"SLIPWAY_LOG_LIMIT", "1GiB", func(c Config) any { return c.LogLimit }, int64(1073741824)},
		{"SLIPWAY_PPROF_ADDR", "127.0.0.1:6060", func(c Config) any { return c.PprofAddr }, "127.0.0.1:6060"},
		{"SLIPWAY_PPROF_ADDR", "[::1]:6060", func(c Config) any { return c.PprofAddr }, "[::1]:6060"},
		{"SLIPWAY_PPROF_ADDR", "localhost:6060", func(c Config) any { return c.PprofAddr }, "localhost:6060"},
		// The App's id and key come together; each case sets the other.
		{"SLIPWAY_GITHUB_APP_ID", "12345", func(c Config) any { return c.GitHubAppID }, int64(12345)},
		{"SLIPWAY_GITHUB_APP_KEY_FILE", "/etc/slipway/app.pem", func(c Config) any { return c.GitHubAppKeyFile }, "/etc/slipway/app.pem"},
	}
	pairs := map[string]map[string]string{
		"SLIPWAY_GITHUB_APP_ID":       {"SLIPWAY_GITHUB_APP_KEY_FILE": "/k.pem"},
		"SLIPWAY_GITHUB_APP_KEY_FILE": {"SLIPWAY_GITHUB_APP_ID": "1"},
		// TLS comes as a pair, and an open listen address needs it.
		"SLIPWAY_NATS_TLS_CERT": {"SLIPWAY_NATS_TLS_KEY": "/k.pem"},
		"SLIPWAY_NATS_TLS_KEY":  {"SLIPWAY_NATS_TLS_CERT": "/c.pem"},
		"SLIPWAY_NATS_LISTEN":   {"SLIPWAY_NATS_TLS_CERT": "/c.pem", "SLIPWAY_NATS_TLS_KEY": "/k.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			env := map[string]string{tt.key: tt.value}
			for k, v := range pairs[tt.key] {
				env[k] = v
			}
			c, err := Load("", envOf(env))
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.got(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	// Every key the loader knows is covered above.
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.key] = true
	}
	for _, k := range keys {
		if !covered[k.env] {
			t.Errorf("%s has no test case", k.env)
		}
	}
}

func TestEnvBadValues(t *testing.T) {
	tests := []struct{ key, value string }{
		{"SLIPWAY_HTTP_ADDR", "8080"},
		{"SLIPWAY_HTTP_ADDR", "localhost:http"},
		{"SLIPWAY_HTTP_ADDR", "localhost:65536"},
		{"SLIPWAY_REGISTRY_ADDR", "registry.internal"},
		{"SLIPWAY_REGISTRY_ADDR", "no"},
		{"SLIPWAY_REGISTRY_AUTH", "htpasswd"},
		{"SLIPWAY_REGISTRY_AUTH", "Token"},
		{"SLIPWAY_BUILDKIT_ADDR", "/run/buildkit/buildkitd.sock"},
		{"SLIPWAY_BUILDKIT_ADDR", "tcp://bk-0:1234,bk-1:1234"},
		{"SLIPWAY_BUILDKIT_ADDR", "dns+tcp://buildkitd:1234,tcp://bk-0:1234"},
		{"SLIPWAY_BUILDKIT_AFFINITY_MARGIN", "-1"},
		{"SLIPWAY_BUILDKIT_AFFINITY_MARGIN", "two"},
		{"SLIPWAY_NATS_URL", "nats-1:4222"},
		{"SLIPWAY_NATS_URL", "http://nats-1:4222"},
		{"SLIPWAY_NATS_URL", "nats://nats-1:4222,redis://cache:6379"},
		{"SLIPWAY_NATS_LISTEN", "4222"},
		{"SLIPWAY_NATS_LISTEN", ":4222"}, // every interface, no TLS
		{"SLIPWAY_NATS_LISTEN", "0.0.0.0:4222"},
		{"SLIPWAY_NATS_LISTEN", "10.0.0.1:4222"},
		{"SLIPWAY_NATS_LISTEN", "nats.lan:4222"},           // a name is not resolved: it needs TLS
		{"SLIPWAY_NATS_TLS_CERT", "/etc/slipway/nats.pem"}, // without its key
		{"SLIPWAY_NATS_TLS_KEY", "/etc/slipway/nats-key.pem"},
		{"SLIPWAY_PUBLIC_URL", "slipway.acme.example"},
		{"SLIPWAY_PUBLIC_URL", "ftp://slipway.acme.example"},
		{"SLIPWAY_PUBLIC_URL", "https://"},
		{"SLIPWAY_PUBLIC_URL", "https://a.example,https://b.example"},
		{"SLIPWAY_GITHUB_APP_ID", "abc"},
		{"SLIPWAY_SECRET_KEY", "c2hvcnQ="},
		{"SLIPWAY_SECRET_KEY", "not base64!"},
		{"SLIPWAY_SECRET_KEY", " , "},
		{"SLIPWAY_NATS_REPLICAS", "0"},
		{"SLIPWAY_RECONCILE_INTERVAL", "often"},
		{"SLIPWAY_ACK_WAIT", "100ms"},
		{"SLIPWAY_SHUTDOWN_GRACE", "-1s"},
		{"SLIPWAY_GITHUB_APP_ID", "5"}, // without a key file
		{"SLIPWAY_GITHUB_API_URL", "api.github.com"},
		{"SLIPWAY_WORKERS", "two"},
		{"SLIPWAY_WORKERS", "-1"},
		{"SLIPWAY_WORKERS", "1.5"},
		{"SLIPWAY_HOOK_SCHEDULE", "5"},
		{"SLIPWAY_HOOK_SCHEDULE", "5s,soon"},
		{"SLIPWAY_HOOK_SCHEDULE", "5s,,1m"},
		{"SLIPWAY_HOOK_SCHEDULE", "-5s"},
		{"SLIPWAY_OUTBOUND_ALLOW_CIDRS", "127.0.0.0/33"},
		{"SLIPWAY_OUTBOUND_ALLOW_CIDRS", "localhost"},
		{"SLIPWAY_LOG_LEVEL", "verbose"},
		{"SLIPWAY_LOG_LEVEL", "INFO"},
		{"SLIPWAY_LOG_FORMAT", "logfmt"},
		{"SLIPWAY_LOG_FORMAT", "JSON"},
		{"SLIPWAY_BUILD_NETWORK", "none"},
		{"SLIPWAY_BUILD_NETWORK", "cni"},
		{"SLIPWAY_BUILD_BRIDGE", "slipway-bridge-0"}, // 16 bytes
		{"SLIPWAY_BUILD_BRIDGE", "br 0"},
		{"SLIPWAY_BUILD_BRIDGE", "br/0"},
		{"SLIPWAY_BUILD_BRIDGE", "-br"},
		{"SLIPWAY_BUILD_SUBNET", "10.213.0.0"},
		{"SLIPWAY_BUILD_SUBNET", "10.213.0.1/24"}, // not the network's first address
		{"SLIPWAY_BUILD_SUBNET", "10.213.0.0/30"},
		{"SLIPWAY_BUILD_SUBNET", "8.8.8.0/24"},
		{"SLIPWAY_BUILD_SUBNET", "100.64.0.0/24"},
		{"SLIPWAY_BUILD_SUBNET", "10.0.0.0/7"}, // runs past 10/8
		{"SLIPWAY_BUILD_SUBNET", "fd00:213::/64"},
		{"SLIPWAY_LOG_LIMIT", "16MB"}, // decimal or binary? refused rather than guessed
		{"SLIPWAY_LOG_LIMIT", "16 mebibytes"},
		{"SLIPWAY_LOG_LIMIT", "-1KiB"},
		{"SLIPWAY_LOG_LIMIT", "1.5MiB"},
		{"SLIPWAY_LOG_LIMIT", "1023"}, // below 1KiB
		{"SLIPWAY_LOG_LIMIT", "99999999999GiB"},
		{"SLIPWAY_PPROF_ADDR", ":6060"}, // every address: profiles stay on the machine
		{"SLIPWAY_PPROF_ADDR", "0.0.0.0:6060"},
		{"SLIPWAY_PPROF_ADDR", "10.1.2.3:6060"},
		{"SLIPWAY_PPROF_ADDR", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			_, err := Load("", envOf(map[string]string{tt.key: tt.value}))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), tt.key+": ") {
				t.Errorf("error %q does not start with %s", err, tt.key)
			}
		})
	}
}

func TestFileBadValues(t *testing.T) {
	tests := []struct {
		name, content string
		wantParts     []string
	}{
		{"unknown key", "workers: 2\nworker: 3\n", []string{"unknown key", `"worker"`}},
		{"env name as key", "SLIPWAY_WORKERS: 3\n", []string{"unknown key", "SLIPWAY_WORKERS"}},
		{"bad workers", "workers: many\n", []string{"workers", "many"}},
		{"bad schedule", "hook_schedule: [5s, later]\n", []string{"hook_schedule", "later"}},
		{"schedule without unit", "hook_schedule: 30\n", []string{"hook_schedule"}},
		// Parsed fine, refused by Validate under the environment name.
		{"empty data dir", "data_dir: ''\n", []string{"SLIPWAY_DATA_DIR"}},
		{"bad log level", "log_level: trace\n", []string{"SLIPWAY_LOG_LEVEL", "trace"}},
		{"bad http addr", "http_addr: 8080\n", []string{"SLIPWAY_HTTP_ADDR"}},
		{"bad registry auth", "registry_auth: htpasswd\n", []string{"registry_auth", "htpasswd"}},
		{"not yaml", "workers: [1\n", []string{"slipway.yaml"}},
		{"not a mapping", "- workers\n", []string{"slipway.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tt.content), envOf(nil))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), envOf(nil))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("Load of a missing file = %v, want an error naming it", err)
	}
}

func TestFileEdgeValues(t *testing.T) {
	tests := []struct {
		name, content string
		check         func(Config) bool
	}{
		{"empty file", "", func(c Config) bool { return reflect.DeepEqual(c, Defaults()) }},
		{"comments only", "# nothing yet\n", func(c Config) bool { return reflect.DeepEqual(c, Defaults()) }},
		// An empty value is unset, like an empty environment variable; it
		// must not become the text "<nil>" (a guessable API token).
		{"empty api token", "api_token:\n", func(c Config) bool { return c.APIToken == "" }},
		{"empty public url", "public_url:\nworkers:\n", func(c Config) bool { return c.PublicURL == "" && c.Workers == 2 }},
		{"registry off", "registry_addr: off\n", func(c Config) bool { return c.RegistryAddr == "off" }},
		{"schedule as string", "hook_schedule: 5s,1m\n", func(c Config) bool {
			return reflect.DeepEqual(c.HookSchedule, []time.Duration{5 * time.Second, time.Minute})
		}},
		{"workers zero", "workers: 0\n", func(c Config) bool { return c.Workers == 0 }},
		{"allow list as list", "outbound_allow_cidrs: [127.0.0.0/8, \"::1/128\"]\n", func(c Config) bool {
			return fmt.Sprint(c.OutboundAllow) == "[127.0.0.0/8 ::1/128]"
		}},
		{"log limit as a YAML number", "log_limit: 65536\n", func(c Config) bool { return c.LogLimit == 65536 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeFile(t, tt.content), envOf(nil))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("Load = %+v", c)
			}
		})
	}
}

func TestExternalURL(t *testing.T) {
	tests := []struct {
		httpAddr, publicURL, want string
	}{
		{":8080", "", "http://localhost:8080"},
		{"0.0.0.0:9000", "", "http://localhost:9000"},
		{"[::]:9000", "", "http://localhost:9000"},
		{"127.0.0.1:8080", "", "http://127.0.0.1:8080"},
		{"[::1]:8080", "", "http://[::1]:8080"},
		{"builds.lan:80", "", "http://builds.lan:80"},
		{":8080", "https://slipway.acme.example", "https://slipway.acme.example"},
		{":8080", "https://slipway.acme.example/", "https://slipway.acme.example"},
		{":8080", "https://acme.example/slipway//", "https://acme.example/slipway"},
	}
	for _, tt := range tests {
		t.Run(tt.httpAddr+" "+tt.publicURL, func(t *testing.T) {
			c := Defaults()
			c.HTTPAddr, c.PublicURL = tt.httpAddr, tt.publicURL
			if got := c.ExternalURL(); got != tt.want {
				t.Errorf("ExternalURL = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNATSListenNeedsTLSOffLoopback(t *testing.T) {
	tlsEnv := map[string]string{"SLIPWAY_NATS_TLS_CERT": "/c.pem", "SLIPWAY_NATS_TLS_KEY": "/k.pem"}
	for _, listen := range []string{"127.0.0.1:4222", "[::1]:0", "localhost:4222"} {
		if _, err := Load("", envOf(map[string]string{"SLIPWAY_NATS_LISTEN": listen})); err != nil {
			t.Errorf("%s without TLS: %v", listen, err)
		}
	}
	for _, listen := range []string{":4222", "0.0.0.0:0", "10.0.0.1:4222"} {
		env := map[string]string{"SLIPWAY_NATS_LISTEN": listen}
		_, err := Load("", envOf(env))
		if err == nil || !strings.Contains(err.Error(), "SLIPWAY_NATS_TLS_CERT") {
			t.Errorf("%s without TLS: %v, want a refusal naming SLIPWAY_NATS_TLS_CERT", listen, err)
		}
		for k, v := range tlsEnv {
			env[k] = v
		}
		if _, err := Load("", envOf(env)); err != nil {
			t.Errorf("%s with TLS: %v", listen, err)
		}
	}
}
