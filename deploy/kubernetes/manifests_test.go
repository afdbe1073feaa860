package kubernetes

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/slipway-build/slipway/config"
	"github.com/slipway-build/slipway/queue"
)

// workload is a Deployment or StatefulSet, as far as these checks go.
type workload struct {
	kind, name string
	selector   *metav1.LabelSelector
	pod        corev1.PodTemplateSpec
}

func workloads(r rendered) []workload {
	var out []workload
	for _, d := range all[appsv1.Deployment](r) {
		out = append(out, workload{"Deployment", d.Name, d.Spec.Selector, d.Spec.Template})
	}
	for _, s := range all[appsv1.StatefulSet](r) {
		out = append(out, workload{"StatefulSet", s.Name, s.Spec.Selector, s.Spec.Template})
	}
	return out
}

func containers(p corev1.PodSpec) []corev1.Container {
	return append(append([]corev1.Container{}, p.InitContainers...), p.Containers...)
}

// env is a container's environment as the kubelet would give it: envFrom
// ConfigMaps and Secrets, then env (values and secretKeyRefs resolved).
func env(t *testing.T, r rendered, c corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm := one(t, r, from.ConfigMapRef.Name, func(c *corev1.ConfigMap) string { return c.Name })
			for k, v := range cm.Data {
				out[k] = v
			}
		case from.SecretRef != nil:
			s := secret(t, r, from.SecretRef.Name)
			for k, v := range secretData(s) {
				out[k] = v
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secretData(secret(t, r, ref.Name))[ref.Key]
			if !ok {
				t.Errorf("%s: %s comes from key %q of Secret %s, which has no such key", c.Name, e.Name, ref.Key, ref.Name)
			}
			out[e.Name] = v
		}
	}
	return out
}

func secret(t *testing.T, r rendered, name string) *corev1.Secret {
	return one(t, r, name, func(s *corev1.Secret) string { return s.Name })
}

func secretData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

func slipwayContainer(t *testing.T, r rendered, deploymentName string) corev1.Container {
	t.Helper()
	cs := deployment(t, r, deploymentName).Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("deployment %s has %d containers, want 1", deploymentName, len(cs))
	}
	return cs[0]
}

func TestNATS(t *testing.T) {
	r := render(t, ".")
	s := statefulSet(t, r, "nats")
	if *s.Spec.Replicas != 3 {
		t.Errorf("nats replicas = %d, want 3", *s.Spec.Replicas)
	}
	c := s.Spec.Template.Spec.Containers[0]
	if c.Image != "nats:2.15-alpine" {
		t.Errorf("nats image = %q, want nats:2.15-alpine", c.Image)
	}
	if !strings.Contains(goMod(t), "github.com/nats-io/nats-server/v2 v2.15.") {
		t.Errorf("go.mod no longer pins nats-server v2.15.x: change the nats image's tag with it")
	}
	conf := one(t, r, "nats-config", func(c *corev1.ConfigMap) string { return c.Name }).Data["nats.conf"]
	for _, want := range []string{"jetstream {", "store_dir: /data", "max_file_store: 9GB", "server_name: $POD_NAME",
		"nats://nats-0.nats-headless:6222", "nats://nats-1.nats-headless:6222", "nats://nats-2.nats-headless:6222"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}
	if got := s.Spec.VolumeClaimTemplates; len(got) != 1 || got[0].Name != "data" {
		t.Fatalf("nats volumeClaimTemplates = %v, want one named data", got)
	}
	if !mounted(c, "data", "/data") {
		t.Errorf("nats does not mount its claim data at /data, the JetStream store_dir")
	}
	if h := service(t, r, "nats-headless"); h.Spec.ClusterIP != "None" || s.Spec.ServiceName != "nats-headless" {
		t.Errorf("nats routes need the headless Service: clusterIP %q, serviceName %q", h.Spec.ClusterIP, s.Spec.ServiceName)
	}
	if got := ports(service(t, r, "nats")); got != "client:4222 monitor:8222" {
		t.Errorf("Service nats ports = %q, want client:4222 monitor:8222", got)
	}
}

func TestBuilders(t *testing.T) {
	r := render(t, ".")
	s := statefulSet(t, r, "buildkit")
	c := s.Spec.Template.Spec.Containers[0]
	if c.Image != "moby/buildkit:v0.34.2-rootless" {
		t.Errorf("buildkit image = %q, want moby/buildkit:v0.34.2-rootless", c.Image)
	}
	if !strings.Contains(goMod(t), "github.com/moby/buildkit v0.34.2\n") {
		t.Errorf("go.mod no longer pins github.com/moby/buildkit v0.34.2: change the builders' image with it")
	}
	if got := strings.Join(c.Args, " "); got != "--addr unix:///run/user/1000/buildkit/buildkitd.sock --addr tcp://0.0.0.0:1234 --oci-worker-no-process-sandbox" {
		t.Errorf("buildkitd args = %q", got)
	}
	sc := c.SecurityContext
	if sc == nil || *sc.RunAsUser != 1000 || *sc.RunAsGroup != 1000 ||
		sc.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined || sc.AppArmorProfile.Type != corev1.AppArmorProfileTypeUnconfined {
		t.Errorf("buildkitd securityContext = %+v, want UID/GID 1000, seccomp and AppArmor Unconfined", sc)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("rootless builders must not be privileged")
	}
	if got := strings.Join(c.ReadinessProbe.Exec.Command, " "); got != "buildctl debug workers" {
		t.Errorf("buildkitd readiness = %q, want buildctl debug workers", got)
	}
	h := service(t, r, "buildkit")
	if h.Spec.ClusterIP != "None" || ports(h) != "buildkit:1234" || s.Spec.ServiceName != "buildkit" {
		t.Errorf("Service buildkit: clusterIP %q ports %q (StatefulSet serviceName %q), want None, buildkit:1234, buildkit", h.Spec.ClusterIP, ports(h), s.Spec.ServiceName)
	}
	if got := s.Spec.VolumeClaimTemplates; len(got) != 1 || got[0].Name != "cache" {
		t.Fatalf("buildkit volumeClaimTemplates = %v, want one named cache", got)
	}
	if !mounted(c, "cache", "/home/user/.local/share/buildkit") {
		t.Errorf("buildkitd does not keep its cache on the claim")
	}
}

func TestWorkerScaledObject(t *testing.T) {
	r := render(t, ".")
	so := one(t, r, "worker", func(s *kedav1alpha1.ScaledObject) string { return s.Name })
	ref := so.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.Name != "worker" {
		t.Errorf("ScaledObject targets %s %s, want Deployment worker", ref.Kind, ref.Name)
	}
	if *so.Spec.MinReplicaCount != 1 || *so.Spec.MaxReplicaCount != 20 || *so.Spec.CooldownPeriod != 300 {
		t.Errorf("replicas %d..%d cooldown %d, want 1..20, 300", *so.Spec.MinReplicaCount, *so.Spec.MaxReplicaCount, *so.Spec.CooldownPeriod)
	}
	if len(so.Spec.Triggers) != 1 {
		t.Fatalf("%d triggers, want 1", len(so.Spec.Triggers))
	}
	tr := so.Spec.Triggers[0]
	want := map[string]string{
		"natsServerMonitoringEndpoint": "nats.slipway.svc.cluster.local:8222",
		"account":                      "$G",
		"stream":                       "SLIPWAY_JOBS",
		"consumer":                     "workers", // queue.BuildJobs' durable name
		"lagThreshold":                 "2",
		"activationLagThreshold":       "0",
		"useHttps":                     "false",
	}
	if tr.Type != "nats-jetstream" {
		t.Errorf("trigger type = %q, want nats-jetstream", tr.Type)
	}
	for k, v := range want {
		if tr.Metadata[k] != v {
			t.Errorf("trigger %s = %q, want %q", k, tr.Metadata[k], v)
		}
	}
	if queue.JobsStream != "SLIPWAY_JOBS" {
		t.Errorf("queue.JobsStream is %q: the trigger's stream must follow it", queue.JobsStream)
	}
	if got := env(t, r, slipwayContainer(t, r, "worker"))["SLIPWAY_WORKERS"]; got != tr.Metadata["lagThreshold"] {
		t.Errorf("SLIPWAY_WORKERS = %q but lagThreshold = %q: one worker pod takes that many builds", got, tr.Metadata["lagThreshold"])
	}
}

func TestResourcesOnEveryContainer(t *testing.T) {
	r := render(t, ".")
	for _, w := range workloads(r) {
		for _, c := range containers(w.pod.Spec) {
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, lim := c.Resources.Requests[name], c.Resources.Limits[name]
				if req.IsZero() || lim.IsZero() {
					t.Errorf("%s %s container %s: %s request %q limit %q, want both", w.kind, w.name, c.Name, name, req.String(), lim.String())
				} else if req.Cmp(lim) > 0 {
					t.Errorf("%s %s container %s: %s request %s over its limit %s", w.kind, w.name, c.Name, name, req.String(), lim.String())
				}
			}
		}
	}
}

// TestOneBudgetPerWorkload: every Deployment and StatefulSet has exactly
// one PodDisruptionBudget selecting its pods (two would make evictions
// fail), and every budget selects some workload.
func TestOneBudgetPerWorkload(t *testing.T) {
	r := render(t, ".")
	pdbs := all[policyv1.PodDisruptionBudget](r)
	used := map[string]bool{}
	want := map[string]bool{"Deployment/webhook-api": true, "Deployment/worker": true, "Deployment/registry": true, "StatefulSet/nats": true, "StatefulSet/buildkit": true}
	for _, w := range workloads(r) {
		if !want[w.kind+"/"+w.name] {
			t.Errorf("unexpected workload %s/%s: add it to this test", w.kind, w.name)
		}
		delete(want, w.kind+"/"+w.name)
		var matched []string
		for _, p := range pdbs {
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if err != nil {
				t.Fatalf("PDB %s: %v", p.Name, err)
			}
			if sel.Matches(labels.Set(w.pod.Labels)) {
				matched = append(matched, p.Name)
				used[p.Name] = true
			}
		}
		if len(matched) != 1 {
			t.Errorf("%s %s is covered by PDBs %v, want exactly one", w.kind, w.name, matched)
		}
	}
	for w := range want {
		t.Errorf("workload %s is missing", w)
	}
	for _, p := range pdbs {
		if !used[p.Name] {
			t.Errorf("PDB %s selects no workload's pods", p.Name)
		}
		if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("PDB %s: maxUnavailable %v, want 1", p.Name, p.Spec.MaxUnavailable)
		}
	}
}

// TestSelectorsMatchPods: a workload's selector must select its own pod
// template, and a Service must select some workload's pods.
func TestSelectorsMatchPods(t *testing.T) {
	r := render(t, ".")
	ws := workloads(r)
	for _, w := range ws {
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || !sel.Matches(labels.Set(w.pod.Labels)) {
			t.Errorf("%s %s: selector %v does not select its pods %v (%v)", w.kind, w.name, w.selector, w.pod.Labels, err)
		}
		if w.pod.Labels["app.kubernetes.io/part-of"] != "slipway" {
			t.Errorf("%s %s: pods lack app.kubernetes.io/part-of=slipway", w.kind, w.name)
		}
	}
	for _, s := range all[corev1.Service](r) {
		found := false
		for _, w := range ws {
			found = found || labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.pod.Labels))
		}
		if !found {
			t.Errorf("Service %s selects no pods", s.Name)
		}
	}
}

func TestSecurityContexts(t *testing.T) {
	r := render(t, ".")
	for _, w := range workloads(r) {
		if w.name == "buildkit" {
			continue // rootless BuildKit's exceptions are checked in TestBuilders
		}
		ps := w.pod.Spec.SecurityContext
		if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
			t.Errorf("%s %s: pod does not demand runAsNonRoot", w.kind, w.name)
		}
		for _, c := range containers(w.pod.Spec) {
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
				t.Errorf("%s %s container %s: want allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities drop ALL; got %+v", w.kind, w.name, c.Name, sc)
			}
		}
	}
	for _, name := range []string{"webhook-api", "worker", "registry"} {
		ps := deployment(t, r, name).Spec.Template.Spec.SecurityContext
		if *ps.RunAsUser != 65532 || *ps.RunAsGroup != 65532 {
			t.Errorf("%s runs as %d:%d, want the image's 65532:65532", name, *ps.RunAsUser, *ps.RunAsGroup)
		}
	}
}

// TestSlipwayEnvironment reads each role's environment as the pod gets it
// and hands it to config.Load, Slipway's own parser: every name must be one
// it knows, the values must pass, and the shipped placeholder secret must
// not.
func TestSlipwayEnvironment(t *testing.T) {
	r := render(t, ".")
	source, err := os.ReadFile("../../config/config.go")
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{"webhook-api": "webhook,api", "worker": "worker", "registry": "registry"}
	common := map[string]string{
		"SLIPWAY_NATS_URL":      "nats://nats:4222",
		"SLIPWAY_NATS_REPLICAS": "3",
		"SLIPWAY_REGISTRY_ADDR": "registry.slipway.svc.cluster.local:5000",
		"SLIPWAY_HTTP_ADDR":     ":8080",
		"SLIPWAY_DATA_DIR":      "/var/lib/slipway",
	}
	for name, role := range roles {
		c := slipwayContainer(t, r, name)
		if c.Image != "ghcr.io/slipway-build/slipway:v0.1.0" || strings.Join(c.Args, " ") != role {
			t.Errorf("%s runs %s %v, want ghcr.io/slipway-build/slipway:v0.1.0 %s", name, c.Image, c.Args, role)
		}
		e := env(t, r, c)
		for k := range e {
			if !strings.Contains(string(source), `"`+k+`"`) {
				t.Errorf("%s sets %s, which config/config.go does not read", name, k)
			}
		}
		for k, v := range common {
			if e[k] != v {
				t.Errorf("%s: %s = %q, want %q", name, k, e[k], v)
			}
		}
		if e["SLIPWAY_SECRET_KEY"] != "REPLACE-ME" {
			t.Errorf("%s: SLIPWAY_SECRET_KEY does not come from the Secret slipway", name)
		}
		if _, err := config.Load("", mapEnv(e)); err == nil || !strings.Contains(err.Error(), "SLIPWAY_SECRET_KEY") {
			t.Errorf("%s: the placeholder secret key is accepted (err = %v)", name, err)
		}
		e["SLIPWAY_SECRET_KEY"] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
		if _, err := config.Load("", mapEnv(e)); err != nil {
			t.Errorf("%s: Slipway refuses this environment: %v", name, err)
		}
	}
	api := env(t, r, slipwayContainer(t, r, "webhook-api"))
	if len(api["SLIPWAY_API_TOKEN"]) >= 32 {
		t.Errorf("the placeholder API token is %d characters: Slipway would accept it (it wants 32 or more)", len(api["SLIPWAY_API_TOKEN"]))
	}
	if api["SLIPWAY_PUBLIC_URL"] != "https://slipway.example.com" {
		t.Errorf("SLIPWAY_PUBLIC_URL = %q", api["SLIPWAY_PUBLIC_URL"])
	}
	reg := env(t, r, slipwayContainer(t, r, "registry"))
	if reg["SLIPWAY_REGISTRY_LISTEN"] != ":5000" || ports(service(t, r, "registry")) != "registry:5000" {
		t.Errorf("registry listens on %q behind Service ports %q, want :5000 and registry:5000", reg["SLIPWAY_REGISTRY_LISTEN"], ports(service(t, r, "registry")))
	}
	w := env(t, r, slipwayContainer(t, r, "worker"))
	if w["SLIPWAY_BUILDKIT_ADDR"] != "dns+tcp://buildkit.slipway.svc.cluster.local:1234" {
		t.Errorf("SLIPWAY_BUILDKIT_ADDR = %q", w["SLIPWAY_BUILDKIT_ADDR"])
	}
}

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestWorkerOutlivesItsGrace: the kubelet must not kill a worker while it
// still lets builds finish.
func TestWorkerOutlivesItsGrace(t *testing.T) {
	r := render(t, ".")
	d := deployment(t, r, "worker")
	grace, err := time.ParseDuration(env(t, r, slipwayContainer(t, r, "worker"))["SLIPWAY_SHUTDOWN_GRACE"])
	if err != nil {
		t.Fatal(err)
	}
	kill := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	if grace != 10*time.Minute || kill != 11*time.Minute {
		t.Errorf("SLIPWAY_SHUTDOWN_GRACE %s, terminationGracePeriodSeconds %s; want 10m and 11m", grace, kill)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("worker replicas is set to %d: KEDA owns it, and kubectl apply would fight it", *d.Spec.Replicas)
	}
	var data *corev1.Volume
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "data" {
			data = &d.Spec.Template.Spec.Volumes[i]
		}
	}
	if data == nil || data.EmptyDir == nil {
		t.Errorf("worker checkouts (SLIPWAY_DATA_DIR) are not on an emptyDir")
	}
}

// TestClusterNamesResolve: every name.namespace.svc.cluster.local the
// manifests use names a rendered Service in the namespace they render to.
func TestClusterNamesResolve(t *testing.T) {
	r := render(t, ".")
	names := regexp.MustCompile(`([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local`)
	var text []string
	for _, name := range []string{"webhook-api", "worker", "registry"} {
		for _, v := range env(t, r, slipwayContainer(t, r, name)) {
			text = append(text, v)
		}
	}
	for _, so := range all[kedav1alpha1.ScaledObject](r) {
		for _, tr := range so.Spec.Triggers {
			text = append(text, tr.Metadata["natsServerMonitoringEndpoint"])
		}
	}
	found := map[string]bool{}
	for _, m := range names.FindAllStringSubmatch(strings.Join(text, "\n"), -1) {
		found[m[1]] = true
		s := service(t, r, m[1])
		if m[2] != "slipway" || s.Namespace != "slipway" {
			t.Errorf("%s names namespace %s; the manifests render to %s", m[0], m[2], s.Namespace)
		}
	}
	if len(found) != 3 || !found["registry"] || !found["buildkit"] || !found["nats"] {
		t.Errorf("found cluster names of Services %v, want registry, buildkit and nats", found)
	}
	for _, o := range r.objs {
		m, ok := o.(metav1.Object)
		if !ok {
			t.Fatalf("%T has no metadata", o)
		}
		if _, isNS := o.(*corev1.Namespace); !isNS && m.GetNamespace() != "slipway" {
			t.Errorf("%T %s is in namespace %q, want slipway", o, m.GetName(), m.GetNamespace())
		}
	}
}

func mounted(c corev1.Container, volume, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume && m.MountPath == path {
			return true
		}
	}
	return false
}

func ports(s *corev1.Service) string {
	var out []string
	for _, p := range s.Spec.Ports {
		out = append(out, p.Name+":"+p.TargetPort.String())
	}
	return strings.Join(out, " ")
}

func goMod(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
