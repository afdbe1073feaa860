package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionLine(t *testing.T) {
	stamped := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "6d9dab6f0c1e2d3b4a5968778695a4b3c2d1e0f9"}, {Key: "vcs.modified", Value: "false"},
	}}
	dirty := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "6d9dab6f0c1e2d3b4a5968778695a4b3c2d1e0f9"}, {Key: "vcs.modified", Value: "true"},
	}}
	tests := []struct {
		name, ldCommit string
		info           *debug.BuildInfo
		ok             bool
		want           string
	}{
		{"from Go's VCS stamp", "", stamped, true, "slipway dev commit 6d9dab6f0c1e2d3b4a5968778695a4b3c2d1e0f9"},
		{"uncommitted changes", "", dirty, true, "slipway dev commit 6d9dab6f0c1e2d3b4a5968778695a4b3c2d1e0f9+dirty"},
		{"stamped by the build", "0123456789abcdef0123456789abcdef01234567", dirty, true, "slipway dev commit 0123456789abcdef0123456789abcdef01234567"},
		{"nothing known", "", nil, false, "slipway dev commit unknown"},
	}
	for _, tt := range tests {
		commit = tt.ldCommit
		if got := versionLine(tt.info, tt.ok); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	commit = ""
}
