package main

import (
	"fmt"
	"runtime/debug"
)

// version and commit are set by a build that knows them (-ldflags "-X
// main.version=... -X main.commit=..."), as the Makefile does; otherwise
// commit comes from the VCS stamp Go puts in every build of a checkout.
var (
	version = "dev"
	commit  = ""
)

// versionLine is what `slipway version` prints: the version and the
// commit the binary was built from ("+dirty" when the checkout had
// uncommitted changes), or "unknown" when neither the build nor Go knows.
func versionLine(info *debug.BuildInfo, ok bool) string {
	c := commit
	if c == "" && ok {
		c = vcsCommit(info)
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("slipway %s commit %s", version, c)
}

func vcsCommit(info *debug.BuildInfo) string {
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}
