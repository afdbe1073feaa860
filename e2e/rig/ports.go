package rig

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// Ports for processes the tests start come from below the kernel's
// ephemeral range (ip_local_port_range, 32768-60999 by default). A port
// from that range, found free and closed again, can be taken as the local
// port of any outgoing connection before the process binds it; one below
// it never is.
const (
	portLow  = 20000
	portHigh = 32000
)

// pickPort returns a loopback port nobody listens on now, outside the
// ephemeral range.
func pickPort(t testing.TB) int {
	t.Helper()
	for range 200 {
		p := portLow + rand.IntN(portHigh-portLow) // #nosec G404 -- spreading test ports, not a secret
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		_ = ln.Close()
		return p
	}
	t.Fatalf("no free loopback port in %d-%d", portLow, portHigh)
	return 0
}

// ephemeralLow is the start of the kernel's ephemeral port range, for a
// test that checks pickPort stays below it.
func ephemeralLow() (int, error) {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, err
	}
	var low, high int
	if _, err := fmt.Sscan(string(raw), &low, &high); err != nil {
		return 0, err
	}
	return low, nil
}
