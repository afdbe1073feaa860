package kubernetes

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kinds maps apiVersion/kind to the Go type a manifest must decode into.
// A kind missing here fails the test: add it with its real API type.
var kinds = map[string]func() any{
	"v1/Namespace":                       func() any { return &corev1.Namespace{} },
	"v1/Secret":                          func() any { return &corev1.Secret{} },
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"v1/PersistentVolumeClaim":           func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/Deployment":                 func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/Ingress":       func() any { return &networkingv1.Ingress{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
	"keda.sh/v1alpha1/ScaledObject":      func() any { return &kedav1alpha1.ScaledObject{} },
}

// decodeStrict decodes one manifest into its API type; a field the type
// does not have, a duplicate field or an unknown kind is an error.
func decodeStrict(doc []byte) (any, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, fmt.Errorf("read apiVersion and kind: %w", err)
	}
	make, ok := kinds[head.APIVersion+"/"+head.Kind]
	if !ok {
		return nil, fmt.Errorf("unknown kind %s/%s", head.APIVersion, head.Kind)
	}
	obj := make()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", head.Kind, err)
	}
	return obj, nil
}

// rendered is the kustomization's output, decoded.
type rendered struct {
	objs []any
}

// render builds the kustomization in dir as `kubectl apply -k` would.
func render(t *testing.T, dir string) rendered {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out rendered
	for _, r := range m.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Fatalf("rendered %s: %v", r.CurId(), err)
		}
		out.objs = append(out.objs, obj)
	}
	return out
}

func all[T any](r rendered) []*T {
	var out []*T
	for _, o := range r.objs {
		if v, ok := o.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

func one[T any](t *testing.T, r rendered, name string, nameOf func(*T) string) *T {
	t.Helper()
	for _, v := range all[T](r) {
		if nameOf(v) == name {
			return v
		}
	}
	t.Fatalf("no %T named %q in the rendered manifests", new(T), name)
	return nil
}

func deployment(t *testing.T, r rendered, name string) *appsv1.Deployment {
	return one(t, r, name, func(d *appsv1.Deployment) string { return d.Name })
}

func statefulSet(t *testing.T, r rendered, name string) *appsv1.StatefulSet {
	return one(t, r, name, func(s *appsv1.StatefulSet) string { return s.Name })
}

func service(t *testing.T, r rendered, name string) *corev1.Service {
	return one(t, r, name, func(s *corev1.Service) string { return s.Name })
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

func TestRenderDecodesStrictly(t *testing.T) {
	r := render(t, ".")
	if len(r.objs) < 20 {
		t.Fatalf("rendered %d objects, want every manifest (at least 20)", len(r.objs))
	}
}

// TestFilesDecodeStrictly decodes every YAML file on its own, so a file
// the kustomization forgets to list is still checked.
func TestFilesDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML files here: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f) // #nosec G304 -- this directory's own manifests
		if err != nil {
			t.Fatal(err)
		}
		if f == "kustomization.yaml" {
			var k types.Kustomization
			if err := yaml.UnmarshalStrict(raw, &k); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			continue
		}
		for i, doc := range docSep.Split(string(raw), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			if _, err := decodeStrict([]byte(doc)); err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
			}
		}
	}
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// TestKustomizationListsEveryFile: a manifest left out of resources would
// never be applied.
func TestKustomizationListsEveryFile(t *testing.T) {
	raw, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k types.Kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		listed[r] = true
	}
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		if f != "kustomization.yaml" && !listed[f] {
			t.Errorf("%s is not in kustomization.yaml's resources", f)
		}
	}
	if k.Namespace != "slipway" {
		t.Errorf("namespace = %q, want slipway", k.Namespace)
	}
}

// TestStrictDecodingRejects proves the decoding above can fail: a misspelt
// field in a Deployment or a ScaledObject, and an unknown kind.
func TestStrictDecodingRejects(t *testing.T) {
	good := map[string]string{
		"deployment": `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: x
          image: x
          ports: [{containerPort: 8080}]
`,
		"scaledobject": `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: worker}
  minReplicaCount: 1
  triggers: [{type: nats-jetstream, metadata: {stream: S}}]
`,
	}
	for name, doc := range good {
		if _, err := decodeStrict([]byte(doc)); err != nil {
			t.Fatalf("the well-formed %s is refused: %v", name, err)
		}
	}
	bad := map[string]struct{ doc, want string }{
		"misspelt containerPort":   {strings.Replace(good["deployment"], "containerPort", "containerPrt", 1), `unknown field "containerPrt"`},
		"misspelt minReplicaCount": {strings.Replace(good["scaledobject"], "minReplicaCount", "minReplicas", 1), `unknown field "minReplicas"`},
		"unknown kind":             {strings.Replace(good["deployment"], "kind: Deployment", "kind: Deploymnt", 1), "unknown kind apps/v1/Deploymnt"},
		"duplicate field":          {good["deployment"] + "metadata: {name: y}\n", `key "metadata" already set in map`},
	}
	for name, c := range bad {
		_, err := decodeStrict([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", name, err, c.want)
		}
	}
}
