package kubernetes

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// endpoint is one side of a connection: a pod (namespace and labels) or an
// address outside the cluster (no namespace). ip is where it is reached.
type endpoint struct {
	namespace string
	labels    map[string]string
	ip        netip.Addr
}

// cluster is what the evaluator knows: the policies and namespaces' labels.
type cluster struct {
	policies        []*networkingv1.NetworkPolicy
	namespaceLabels map[string]map[string]string
}

// allowed says whether a TCP or UDP connection from src to dst's port gets
// through: src's egress policies and dst's ingress policies must both let
// it (a pod no policy of that direction selects is open in it), as the
// NetworkPolicy API defines. Named ports are not modelled; a test below
// makes sure the manifests use none.
func (c cluster) allowed(src, dst endpoint, proto corev1.Protocol, port int32) bool {
	return c.direction(src, networkingv1.PolicyTypeEgress, dst, proto, port) &&
		c.direction(dst, networkingv1.PolicyTypeIngress, src, proto, port)
}

// direction judges one end: self is the pod whose policies apply, peer the
// other end.
func (c cluster) direction(self endpoint, dir networkingv1.PolicyType, peer endpoint, proto corev1.Protocol, port int32) bool {
	if self.namespace == "" {
		return true // outside the cluster: no policy applies
	}
	selected := false
	for _, p := range c.policies {
		if p.Namespace != self.namespace || !matches(p.Spec.PodSelector, self.labels) || !hasType(p, dir) {
			continue
		}
		selected = true
		if dir == networkingv1.PolicyTypeEgress {
			for _, r := range p.Spec.Egress {
				if c.peersMatch(r.To, p.Namespace, peer) && portsMatch(r.Ports, proto, port) {
					return true
				}
			}
		} else {
			for _, r := range p.Spec.Ingress {
				if c.peersMatch(r.From, p.Namespace, peer) && portsMatch(r.Ports, proto, port) {
					return true
				}
			}
		}
	}
	return !selected
}

// hasType follows the API's defaulting: no policyTypes means Ingress, plus
// Egress when the policy has egress rules.
func hasType(p *networkingv1.NetworkPolicy, dir networkingv1.PolicyType) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return dir == networkingv1.PolicyTypeIngress || len(p.Spec.Egress) > 0
	}
	return slices.Contains(p.Spec.PolicyTypes, dir)
}

func (c cluster) peersMatch(peers []networkingv1.NetworkPolicyPeer, policyNamespace string, e endpoint) bool {
	if len(peers) == 0 {
		return true // no from/to: every source or destination
	}
	for _, p := range peers {
		if c.peerMatches(p, policyNamespace, e) {
			return true
		}
	}
	return false
}

func (c cluster) peerMatches(p networkingv1.NetworkPolicyPeer, policyNamespace string, e endpoint) bool {
	if p.IPBlock != nil {
		return inBlock(*p.IPBlock, e.ip)
	}
	if e.namespace == "" {
		return false // selectors pick pods, not outside addresses
	}
	if p.NamespaceSelector == nil {
		if e.namespace != policyNamespace {
			return false
		}
	} else if !matches(*p.NamespaceSelector, c.namespaceLabels[e.namespace]) {
		return false
	}
	return p.PodSelector == nil || matches(*p.PodSelector, e.labels)
}

func inBlock(b networkingv1.IPBlock, ip netip.Addr) bool {
	if !netip.MustParsePrefix(b.CIDR).Contains(ip) {
		return false
	}
	for _, ex := range b.Except {
		if netip.MustParsePrefix(ex).Contains(ip) {
			return false
		}
	}
	return true
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, proto corev1.Protocol, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		if p.Port == nil {
			return true
		}
		lo, hi := p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if port >= lo && port <= hi {
			return true
		}
	}
	return false
}

func matches(s metav1.LabelSelector, l map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(&s)
	if err != nil {
		panic(fmt.Sprintf("bad selector %v: %v", s, err))
	}
	return sel.Matches(labels.Set(l))
}

// renderedCluster is the rendered policies plus the pods of the rendered
// workloads, and the outside world they talk to.
func renderedCluster(t *testing.T) (cluster, map[string]endpoint) {
	t.Helper()
	r := render(t, ".")
	c := cluster{
		policies: all[networkingv1.NetworkPolicy](r),
		namespaceLabels: map[string]map[string]string{
			"slipway":       {"kubernetes.io/metadata.name": "slipway"},
			"kube-system":   {"kubernetes.io/metadata.name": "kube-system"},
			"keda":          {"kubernetes.io/metadata.name": "keda"},
			"ingress-nginx": {"kubernetes.io/metadata.name": "ingress-nginx"},
			"default":       {"kubernetes.io/metadata.name": "default"},
		},
	}
	eps := map[string]endpoint{
		"kube-dns":      {"kube-system", map[string]string{"k8s-app": "kube-dns"}, netip.MustParseAddr("10.244.9.2")},
		"keda":          {"keda", map[string]string{"app": "keda-operator"}, netip.MustParseAddr("10.244.9.3")},
		"ingress-nginx": {"ingress-nginx", map[string]string{"app.kubernetes.io/name": "ingress-nginx"}, netip.MustParseAddr("10.244.9.4")},
		"default-pod":   {"default", map[string]string{"app": "other"}, netip.MustParseAddr("10.244.9.5")},
		"git-host":      {"", nil, netip.MustParseAddr("140.82.121.3")},
		"metadata":      {"", nil, netip.MustParseAddr("169.254.169.254")},
		"private-host":  {"", nil, netip.MustParseAddr("10.1.2.3")},
		"office-host":   {"", nil, netip.MustParseAddr("192.168.1.10")},
	}
	for i, w := range workloads(r) {
		eps[w.name] = endpoint{"slipway", w.pod.Labels, netip.AddrFrom4([4]byte{10, 244, 1, byte(10 + i)})}
	}
	return c, eps
}

func TestNetworkPolicies(t *testing.T) {
	c, eps := renderedCluster(t)
	const tcp, udp = corev1.ProtocolTCP, corev1.ProtocolUDP
	cases := []struct {
		src, dst string
		proto    corev1.Protocol
		port     int32
		want     bool
	}{
		// Workers: NATS, builders, registry, DNS and the internet.
		{"worker", "nats", tcp, 4222, true},
		{"worker", "buildkit", tcp, 1234, true},
		{"worker", "registry", tcp, 5000, true},
		{"worker", "kube-dns", udp, 53, true},
		{"worker", "kube-dns", tcp, 53, true},
		{"worker", "git-host", tcp, 443, true},
		{"worker", "git-host", tcp, 22, true},
		{"worker", "nats", tcp, 6222, false},
		{"worker", "webhook-api", tcp, 8080, false},
		{"worker", "metadata", tcp, 80, false},
		{"worker", "private-host", tcp, 443, false},
		{"worker", "default-pod", tcp, 80, false},
		// Builders: registry, DNS and the internet, and nothing of Slipway's.
		{"buildkit", "registry", tcp, 5000, true},
		{"buildkit", "kube-dns", udp, 53, true},
		{"buildkit", "git-host", tcp, 443, true},
		{"buildkit", "nats", tcp, 4222, false},
		{"buildkit", "nats", tcp, 8222, false},
		{"buildkit", "webhook-api", tcp, 8080, false},
		{"buildkit", "worker", tcp, 8080, false},
		{"buildkit", "buildkit", tcp, 1234, false},
		{"buildkit", "metadata", tcp, 80, false},
		{"buildkit", "private-host", tcp, 22, false},
		{"buildkit", "office-host", tcp, 443, false},
		{"buildkit", "kube-dns", tcp, 443, false},
		// Webhooks and API: NATS, the registry, DNS, Git hosts; not builders.
		{"webhook-api", "nats", tcp, 4222, true},
		{"webhook-api", "registry", tcp, 5000, true},
		{"webhook-api", "kube-dns", udp, 53, true},
		{"webhook-api", "git-host", tcp, 443, true},
		{"webhook-api", "buildkit", tcp, 1234, false},
		{"webhook-api", "worker", tcp, 8080, false},
		{"webhook-api", "metadata", tcp, 80, false},
		// The registry: NATS and DNS only.
		{"registry", "nats", tcp, 4222, true},
		{"registry", "kube-dns", udp, 53, true},
		{"registry", "git-host", tcp, 443, false},
		{"registry", "buildkit", tcp, 1234, false},
		{"registry", "webhook-api", tcp, 8080, false},
		// NATS: routes between its servers, DNS, nothing else.
		{"nats", "nats", tcp, 6222, true},
		{"nats", "kube-dns", udp, 53, true},
		{"nats", "nats", tcp, 4222, false},
		{"nats", "git-host", tcp, 443, false},
		{"nats", "webhook-api", tcp, 8080, false},
		// From outside the namespace.
		{"ingress-nginx", "webhook-api", tcp, 8080, true},
		{"ingress-nginx", "registry", tcp, 5000, true},
		{"git-host", "webhook-api", tcp, 8080, true},
		{"ingress-nginx", "webhook-api", tcp, 9090, false},
		{"ingress-nginx", "worker", tcp, 8080, false},
		{"ingress-nginx", "nats", tcp, 4222, false},
		{"ingress-nginx", "buildkit", tcp, 1234, false},
		{"keda", "nats", tcp, 8222, true},
		{"keda", "nats", tcp, 4222, false},
		{"default-pod", "nats", tcp, 8222, false},
		{"default-pod", "nats", tcp, 4222, false},
		{"git-host", "buildkit", tcp, 1234, false},
		{"git-host", "nats", tcp, 4222, false},
	}
	for _, tc := range cases {
		src, ok := eps[tc.src]
		dst, ok2 := eps[tc.dst]
		if !ok || !ok2 {
			t.Fatalf("no endpoint %q or %q", tc.src, tc.dst)
		}
		if got := c.allowed(src, dst, tc.proto, tc.port); got != tc.want {
			t.Errorf("%s -> %s %s/%d: allowed = %v, want %v", tc.src, tc.dst, tc.proto, tc.port, got, tc.want)
		}
	}
}

// TestEvaluator checks the evaluator on its own against small policies
// whose outcome the NetworkPolicy API fixes, so that a mistake in it does
// not pass for a property of the manifests.
func TestEvaluator(t *testing.T) {
	a := endpoint{"ns", map[string]string{"app": "a"}, netip.MustParseAddr("10.0.0.1")}
	b := endpoint{"ns", map[string]string{"app": "b"}, netip.MustParseAddr("10.0.0.2")}
	ext := endpoint{"", nil, netip.MustParseAddr("8.8.8.8")}
	port := intstrPort(80)
	deny := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"}}}
	egressAtoB := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			PolicyTypes: []networkingv1.PolicyType{"Egress"},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}}}},
				Ports: []networkingv1.NetworkPolicyPort{port},
			}},
		}}
	ingressBFromAll := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{port}}},
		}}
	ns := map[string]map[string]string{"ns": {"kubernetes.io/metadata.name": "ns"}}
	cases := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		src, dst endpoint
		port     int32
		want     bool
	}{
		{"no policy: open", nil, a, b, 80, true},
		{"deny all", []*networkingv1.NetworkPolicy{deny}, a, b, 80, false},
		{"egress alone is not enough", []*networkingv1.NetworkPolicy{deny, egressAtoB}, a, b, 80, false},
		{"egress and ingress", []*networkingv1.NetworkPolicy{deny, egressAtoB, ingressBFromAll}, a, b, 80, true},
		{"other port", []*networkingv1.NetworkPolicy{deny, egressAtoB, ingressBFromAll}, a, b, 81, false},
		{"reverse direction", []*networkingv1.NetworkPolicy{deny, egressAtoB, ingressBFromAll}, b, a, 80, false},
		{"outside in, ingress only", []*networkingv1.NetworkPolicy{ingressBFromAll}, ext, b, 80, true},
		{"egress to the outside denied", []*networkingv1.NetworkPolicy{deny, egressAtoB}, a, ext, 80, false},
	}
	for _, tc := range cases {
		c := cluster{policies: tc.policies, namespaceLabels: ns}
		if got := c.allowed(tc.src, tc.dst, corev1.ProtocolTCP, tc.port); got != tc.want {
			t.Errorf("%s: allowed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func intstrPort(n int) networkingv1.NetworkPolicyPort {
	p := networkingv1.NetworkPolicyPort{}
	v := intstr.FromInt32(int32(n)) // #nosec G115 -- test ports are small
	p.Port = &v
	return p
}

// TestPoliciesUseNumericPorts: the evaluator does not model named ports.
func TestPoliciesUseNumericPorts(t *testing.T) {
	c, _ := renderedCluster(t)
	if len(c.policies) != 7 {
		t.Errorf("%d NetworkPolicies, want 7 (default-deny, dns, webhook-api, worker, registry, nats, buildkit)", len(c.policies))
	}
	for _, p := range c.policies {
		var ports []networkingv1.NetworkPolicyPort
		for _, r := range p.Spec.Ingress {
			ports = append(ports, r.Ports...)
		}
		for _, r := range p.Spec.Egress {
			ports = append(ports, r.Ports...)
		}
		for _, port := range ports {
			if port.Port != nil && port.Port.IntVal == 0 {
				t.Errorf("policy %s uses the named port %q", p.Name, port.Port.StrVal)
			}
		}
	}
}
