package builder

import (
	"os"
	"path/filepath"
	"testing"
)

// NoNetwork becomes the dockerfile frontend's default network for every
// RUN; without it the frontend's own default (BuildKit's network) stays.
func TestSolveOptNetwork(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, none := range []bool{false, true} {
		opt, err := solveOpt(Request{ContextDir: dir, Dockerfile: df, Image: "reg/acme/demo", NoNetwork: none}, nil)
		if err != nil {
			t.Fatal(err)
		}
		mode, set := opt.FrontendAttrs["force-network-mode"]
		if set != none || (none && mode != "none") {
			t.Errorf("NoNetwork=%v: force-network-mode = %q (set %v)", none, mode, set)
		}
	}
}

// With CacheLater the build reads the registry cache and writes none;
// the cache export that follows writes it (mode=max) and exports no image.
func TestSolveOptCacheLater(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	req := Request{ContextDir: dir, Dockerfile: df, Image: "reg/acme/demo", Push: true, CacheRef: "reg/acme/demo:buildcache"}
	now, err := solveOpt(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(now.CacheImports) != 1 || len(now.CacheExports) != 1 || now.CacheExports[0].Attrs["mode"] != "max" {
		t.Errorf("without CacheLater: imports %v, exports %v; want one each, mode=max", now.CacheImports, now.CacheExports)
	}
	req.CacheLater = true
	build, err := solveOpt(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(build.CacheImports) != 1 || build.CacheImports[0].Attrs["ref"] != "reg/acme/demo:buildcache" || len(build.CacheExports) != 0 {
		t.Errorf("with CacheLater the build imports %v and exports %v; want the import only", build.CacheImports, build.CacheExports)
	}
	later, err := exportCacheOpt(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(later.Exports) != 0 || len(later.CacheImports) != 0 || len(later.CacheExports) != 1 ||
		later.CacheExports[0].Attrs["ref"] != "reg/acme/demo:buildcache" || later.CacheExports[0].Attrs["mode"] != "max" {
		t.Errorf("cache export: image exports %v, imports %v, cache exports %v; want only the mode=max cache export", later.Exports, later.CacheImports, later.CacheExports)
	}
	if _, err := exportCacheOpt(Request{ContextDir: dir, Dockerfile: df}); err == nil {
		t.Error("a cache export without a cache reference must be an error")
	}
}

// A kept context directory's key becomes the session's shared key, under
// which BuildKit keeps the last context it received; the cache export
// after the build sends the same.
func TestSolveOptContextKey(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	req := Request{ContextDir: dir, Dockerfile: df, Image: "reg/acme/demo", CacheRef: "reg/acme/demo:buildcache", ContextKey: "slipway-tree/r1/0"}
	build, err := solveOpt(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	export, err := exportCacheOpt(req)
	if err != nil {
		t.Fatal(err)
	}
	if build.SharedKey != "slipway-tree/r1/0" || export.SharedKey != "slipway-tree/r1/0" {
		t.Fatalf("shared keys = %q (build), %q (export), want slipway-tree/r1/0", build.SharedKey, export.SharedKey)
	}
}
