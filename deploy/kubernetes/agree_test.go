package kubernetes

import (
	"context"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/slipway-build/slipway/config"
)

// The same service in Compose and in the cluster: compose service name →
// workload name.
var sameService = map[string]string{
	"slipway":  "webhook-api",
	"registry": "registry",
	"worker":   "worker",
	"buildkit": "buildkit",
	"nats":     "nats",
}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	raw, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  "..",
		ConfigFiles: []types.ConfigFile{{Filename: "../compose.yaml", Content: raw}},
		// What .env.example asks for, filled in.
		Environment: map[string]string{
			"SLIPWAY_SECRET_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
			"SLIPWAY_API_TOKEN":  "0123456789abcdef0123456789abcdef",
		},
	}, func(o *loader.Options) { o.SetProjectName("slipway", true) })
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	return p
}

// podOf is the pod template of a rendered Deployment or StatefulSet.
func podOf(t *testing.T, r rendered, name string) corev1.PodSpec {
	t.Helper()
	for _, w := range workloads(r) {
		if w.name == name {
			return w.pod.Spec
		}
	}
	t.Fatalf("no workload %s", name)
	return corev1.PodSpec{}
}

func composeEnv(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return port
}

// TestComposeClusterAndCodeAgree reads compose.yaml, the rendered
// manifests, the Dockerfile and the code's defaults, and checks that
// they name the same images, ports, settings and paths.
func TestComposeClusterAndCodeAgree(t *testing.T) {
	r := render(t, ".")
	c := loadCompose(t)
	defaults := config.Defaults()
	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("images", func(t *testing.T) {
		want := map[string][2]string{ // compose image, cluster image
			"slipway":  {"ghcr.io/slipway-build/slipway:v0.1.0", "ghcr.io/slipway-build/slipway:v0.1.0"},
			"registry": {"ghcr.io/slipway-build/slipway:v0.1.0", "ghcr.io/slipway-build/slipway:v0.1.0"},
			"worker":   {"ghcr.io/slipway-build/slipway:v0.1.0", "ghcr.io/slipway-build/slipway:v0.1.0"},
			"buildkit": {"moby/buildkit:v0.34.2", "moby/buildkit:v0.34.2-rootless"},
			"nats":     {"nats:2.15-alpine", "nats:2.15-alpine"},
		}
		for svc, w := range want {
			s, err := c.GetService(svc)
			if err != nil {
				t.Fatal(err)
			}
			got := podOf(t, r, sameService[svc]).Containers[0].Image
			if s.Image != w[0] || got != w[1] {
				t.Errorf("%s: compose %s, cluster %s; want %s and %s", svc, s.Image, got, w[0], w[1])
			}
		}
	})

	t.Run("roles", func(t *testing.T) {
		for _, svc := range []string{"slipway", "registry", "worker"} {
			s, _ := c.GetService(svc)
			args := podOf(t, r, sameService[svc]).Containers[0].Args
			if !slices.Equal(s.Command, args) {
				t.Errorf("%s runs %q in Compose and %q in the cluster", svc, s.Command, args)
			}
		}
	})

	t.Run("ports", func(t *testing.T) {
		// The code's defaults: HTTP on 8080, the registry on 5000.
		if portOf(t, defaults.HTTPAddr) != "8080" || portOf(t, defaults.RegistryAddr) != "5000" {
			t.Fatalf("defaults: HTTP %s, registry %s; want ports 8080 and 5000", defaults.HTTPAddr, defaults.RegistryAddr)
		}
		published := map[string]string{}
		for _, svc := range []string{"slipway", "registry"} {
			s, _ := c.GetService(svc)
			for _, p := range s.Ports {
				published[svc] += p.Published + ":" + strconv.FormatUint(uint64(p.Target), 10) + " "
			}
		}
		if published["slipway"] != "8080:8080 " || published["registry"] != "5000:5000 " {
			t.Errorf("compose publishes %q and %q; want 8080:8080 and 5000:5000", published["slipway"], published["registry"])
		}
		if ports(service(t, r, "webhook-api")) != "http:8080" || ports(service(t, r, "registry")) != "registry:5000" {
			t.Errorf("cluster Services: webhook-api %q, registry %q; want http:8080 and registry:5000",
				ports(service(t, r, "webhook-api")), ports(service(t, r, "registry")))
		}
		for _, svc := range []string{"slipway", "registry", "worker"} {
			pod := podOf(t, r, sameService[svc])
			probe := pod.Containers[0].ReadinessProbe
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port.String() != "8080" && probe.HTTPGet.Port.String() != "http" {
				t.Errorf("%s: readiness probe %+v, want /readyz on 8080", svc, probe)
			}
		}
	})

	t.Run("where the parts reach each other", func(t *testing.T) {
		cases := []struct{ svc, key, compose, cluster string }{
			{"worker", "SLIPWAY_NATS_URL", "nats://nats:4222", "nats://nats:4222"},
			{"worker", "SLIPWAY_BUILDKIT_ADDR", "tcp://buildkit:1234", "dns+tcp://buildkit.slipway.svc.cluster.local:1234"},
			{"worker", "SLIPWAY_REGISTRY_ADDR", "registry:5000", "registry.slipway.svc.cluster.local:5000"},
			{"registry", "SLIPWAY_REGISTRY_LISTEN", ":5000", ":5000"},
			{"slipway", "SLIPWAY_REGISTRY_ADDR", "registry:5000", "registry.slipway.svc.cluster.local:5000"},
		}
		for _, cs := range cases {
			s, _ := c.GetService(cs.svc)
			got := composeEnv(s)[cs.key]
			gotCluster := env(t, r, podOf(t, r, sameService[cs.svc]).Containers[0])[cs.key]
			if got != cs.compose || gotCluster != cs.cluster {
				t.Errorf("%s %s: compose %q, cluster %q; want %q and %q", cs.svc, cs.key, got, gotCluster, cs.compose, cs.cluster)
			}
		}
		bk, _ := c.GetService("buildkit")
		bkArgs := podOf(t, r, "buildkit").Containers[0].Args
		if !slices.Contains(bk.Command, "tcp://0.0.0.0:1234") || !slices.Contains(bkArgs, "tcp://0.0.0.0:1234") {
			t.Errorf("buildkitd listens with %q in Compose and %q in the cluster; want tcp://0.0.0.0:1234 in both", bk.Command, bkArgs)
		}
	})

	t.Run("settings", func(t *testing.T) {
		known := config.EnvNames()
		// Set only in the cluster: NATS runs 3 nodes there (R3), one in
		// Compose; the defaults of HTTP address and log level written out;
		// the worker's grace, which its pod's termination grace outlives.
		// Set only in Compose: nothing.
		clusterOnly := map[string][]string{
			"slipway":  {"SLIPWAY_HTTP_ADDR", "SLIPWAY_LOG_LEVEL", "SLIPWAY_NATS_REPLICAS"},
			"registry": {"SLIPWAY_HTTP_ADDR", "SLIPWAY_LOG_LEVEL", "SLIPWAY_NATS_REPLICAS"},
			"worker":   {"SLIPWAY_HTTP_ADDR", "SLIPWAY_LOG_LEVEL", "SLIPWAY_NATS_REPLICAS", "SLIPWAY_SHUTDOWN_GRACE"},
		}
		for _, svc := range []string{"slipway", "registry", "worker"} {
			s, _ := c.GetService(svc)
			ce := composeEnv(s)
			ke := env(t, r, podOf(t, r, sameService[svc]).Containers[0])
			for k := range ce {
				if !slices.Contains(known, k) {
					t.Errorf("compose %s sets %s, which Slipway does not read", svc, k)
				}
			}
			var extra []string
			for k := range ke {
				if !slices.Contains(known, k) {
					t.Errorf("cluster %s sets %s, which Slipway does not read", svc, k)
				}
				if _, ok := ce[k]; !ok {
					extra = append(extra, k)
				}
			}
			sort.Strings(extra)
			if !slices.Equal(extra, clusterOnly[svc]) {
				t.Errorf("%s: set only in the cluster: %q, want %q", svc, extra, clusterOnly[svc])
			}
			for k := range ce {
				if _, ok := ke[k]; !ok {
					t.Errorf("%s: Compose sets %s, the cluster does not", svc, k)
				}
			}
			if ce["SLIPWAY_DATA_DIR"] != "/var/lib/slipway" || ke["SLIPWAY_DATA_DIR"] != "/var/lib/slipway" {
				t.Errorf("%s: data dir %q in Compose, %q in the cluster; want /var/lib/slipway, the image's", svc, ce["SLIPWAY_DATA_DIR"], ke["SLIPWAY_DATA_DIR"])
			}
		}
		w, _ := c.GetService("worker")
		kw := env(t, r, podOf(t, r, "worker").Containers[0])
		if composeEnv(w)["SLIPWAY_WORKERS"] != "2" || kw["SLIPWAY_WORKERS"] != "2" {
			t.Errorf("builds per worker: %q in Compose, %q in the cluster; want 2", composeEnv(w)["SLIPWAY_WORKERS"], kw["SLIPWAY_WORKERS"])
		}
	})

	t.Run("the image", func(t *testing.T) {
		final := string(dockerfile[strings.LastIndex(string(dockerfile), "\nFROM "):])
		for _, want := range []string{"ENV SLIPWAY_DATA_DIR=/var/lib/slipway", "USER 65532:65532", "EXPOSE 8080"} {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).MatchString(final) {
				t.Errorf("the Dockerfile's final stage lacks %q", want)
			}
		}
		for _, svc := range []string{"slipway", "registry", "worker"} {
			s, _ := c.GetService(svc)
			if s.Build == nil || s.Build.Target != "slipway" || !strings.HasPrefix(final, "\nFROM scratch AS slipway\n") {
				t.Errorf("%s: Compose builds target %+v; want slipway, the Dockerfile's last stage (FROM scratch AS slipway)", svc, s.Build)
			}
		}
		for _, name := range []string{"webhook-api", "registry", "worker"} {
			sc := podOf(t, r, name).SecurityContext
			if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
				t.Errorf("%s: pod runs as %+v, want the image's user 65532", name, sc)
			}
		}
	})
}
