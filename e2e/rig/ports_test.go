package rig

import "testing"

func TestPickPortIsBelowTheEphemeralRange(t *testing.T) {
	low, err := ephemeralLow()
	if err != nil {
		t.Fatal(err)
	}
	if low <= portHigh {
		t.Fatalf("the ephemeral range starts at %d, at or below the test ports' %d-%d: change them", low, portLow, portHigh)
	}
	for range 50 {
		if p := pickPort(t); p < portLow || p >= portHigh {
			t.Fatalf("pickPort = %d, want %d-%d", p, portLow, portHigh-1)
		}
	}
}
