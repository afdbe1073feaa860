package rig

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// GolangImage is a stand-in for Docker Hub's golang:1.26, assembled without
// a container engine from what this machine has: Debian's static busybox
// as the shell and tools, this machine's Go installation at /usr/local/go,
// its CA bundle, and proxyDir (a Go module proxy directory, see
// ModuleProxy) at /goproxy, which GOPROXY names because builds have no
// internet. Like the real image it runs as root with HOME /root (from
// /etc/passwd), GOPATH /go and GOTOOLCHAIN=local.
//
// The layers are uncompressed tars: most of the bytes are Go module zips,
// which gzip would only slow down.
func GolangImage(t testing.TB, proxyDir string) v1.Image {
	t.Helper()
	goroot := strings.TrimSpace(goEnv(t, "GOROOT"))
	base, err := baseLayer()
	if err != nil {
		t.Fatalf("golang image: base layer: %v", err)
	}
	toolchain, err := treeLayer(goroot, "usr/local/go", skipInGoroot)
	if err != nil {
		t.Fatalf("golang image: Go from %s: %v", goroot, err)
	}
	proxy, err := treeLayer(proxyDir, "goproxy", func(rel string, d fs.DirEntry) bool {
		// Lock files and the checksum database's cache are the go
		// command's own bookkeeping, not proxy content.
		return rel == "sumdb" || strings.HasSuffix(rel, ".lock") || strings.HasSuffix(rel, ".partial")
	})
	if err != nil {
		t.Fatalf("golang image: module proxy from %s: %v", proxyDir, err)
	}
	cfg := &v1.ConfigFile{
		Architecture: "amd64", OS: "linux",
		Config: v1.Config{
			Env: []string{
				"PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"GOLANG_VERSION=" + strings.TrimPrefix(strings.TrimSpace(goEnv(t, "GOVERSION")), "go"),
				"GOTOOLCHAIN=local", "GOPATH=/go",
				"GOPROXY=file:///goproxy", "GOSUMDB=off",
			},
			WorkingDir: "/go",
			Cmd:        []string{"sh"},
		},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	var layers []v1.Layer
	for _, b := range [][]byte{base, toolchain, proxy} {
		layers = append(layers, static.NewLayer(b, types.OCIUncompressedLayer))
	}
	if img, err = mutate.AppendLayers(img, layers...); err != nil {
		t.Fatal(err)
	}
	return img
}

// skipInGoroot leaves out of the Go installation what `go build` never
// reads: the toolchain's own sources (src/cmd), tests and their data,
// docs, API lists, and the tools that only go test, go vet, go fix, -cover
// and -pgo run. What stays is about 120 of its 270 MB.
func skipInGoroot(rel string, d fs.DirEntry) bool {
	switch rel {
	case "api", "doc", "misc", "test", "src/cmd", "lib/wasm", "bin/gofmt",
		"pkg/tool/linux_amd64/cover", "pkg/tool/linux_amd64/fix",
		"pkg/tool/linux_amd64/vet", "pkg/tool/linux_amd64/preprofile":
		return true
	}
	if strings.HasPrefix(rel, "pkg/tool/") && rel != "pkg/tool/linux_amd64" && !strings.HasPrefix(rel, "pkg/tool/linux_amd64/") {
		return true // another platform's cross compilers
	}
	if d.IsDir() {
		return d.Name() == "testdata"
	}
	return strings.HasSuffix(rel, "_test.go")
}

// ModuleProxy makes dir/cache/download a Go module proxy directory holding
// exactly the modules `go build ./cmd/slipway` of the source in src needs:
// the go command fills an empty module cache from this machine's (which
// `make test` filled by building the project), and that cache's download
// directory is a complete proxy. No network is used.
func ModuleProxy(src, dir string) (string, error) {
	hostCache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	cmd := exec.Command("go", "list", "-deps", "./cmd/slipway")
	cmd.Dir = src
	cmd.Env = append(os.Environ(),
		"GOMODCACHE="+dir,
		"GOPROXY=file://"+filepath.Join(strings.TrimSpace(string(hostCache)), "cache", "download"),
		// -modcacherw: the new cache can be deleted like any directory.
		"GOFLAGS=-mod=readonly -modcacherw",
		"GOSUMDB=off", "GOTOOLCHAIN=local", "GOWORK=off",
		// The Dockerfile's build: what it imports decides what it needs.
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go list -deps ./cmd/slipway with only this machine's module cache: %w\n%s", err, out)
	}
	return filepath.Join(dir, "cache", "download"), nil
}

func goEnv(t testing.TB, key string) string {
	t.Helper()
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", key, err)
	}
	return string(out)
}

// baseLayer is the root filesystem under Go: directories, root's
// /etc/passwd entry (whose home runc makes HOME), the CA bundle, and
// busybox with a symlink for each of its commands.
func baseLayer() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []struct {
		name string
		mode int64
	}{
		{"bin", 0o755}, {"sbin", 0o755}, {"etc", 0o755}, {"etc/ssl", 0o755}, {"etc/ssl/certs", 0o755},
		{"root", 0o700}, {"tmp", 0o1777}, {"usr", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755},
		{"usr/local", 0o755}, {"usr/local/bin", 0o755}, {"usr/local/sbin", 0o755},
		{"go", 0o1777}, {"go/bin", 0o1777}, {"go/src", 0o1777},
	} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name + "/", Mode: d.mode}); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	}
	for _, name := range []string{"etc/passwd", "etc/group"} {
		if err := writeFile(tw, name, 0o644, []byte(files[name])); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name, src string
		mode      int64
	}{
		{"etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt", 0o644},
		{"bin/busybox", "/bin/busybox", 0o755},
	} {
		raw, err := os.ReadFile(f.src)
		if err != nil {
			return nil, fmt.Errorf("%s (Debian packages busybox-static, which make deps installs, and ca-certificates): %w", f.src, err)
		}
		if err := writeFile(tw, f.name, f.mode, raw); err != nil {
			return nil, err
		}
	}
	list, err := exec.Command("/bin/busybox", "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, name := range strings.Fields(string(list)) {
		if name == "bin/busybox" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: "/bin/busybox", Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// treeLayer is a tar of the tree at root, placed under prefix, owned by
// root, leaving out what skip names (paths relative to root, with /).
func treeLayer(root, prefix string, skip func(rel string, d fs.DirEntry) bool) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// The parents of prefix, so that the layer stands on its own.
	var parents []string
	for p := path.Dir(prefix); p != "."; p = path.Dir(p) {
		parents = append([]string{p}, parents...)
	}
	for _, p := range parents {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		name := prefix
		if rel != "." {
			name = prefix + "/" + rel
		}
		return addEntry(tw, p, name, d)
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func addEntry(tw *tar.Writer, p, name string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	link := ""
	if info.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	hdr.Name = name
	if info.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
