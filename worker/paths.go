package worker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/slipway-build/slipway/model"
)

// errOutside is a path whose symlinks lead out of the checkout.
var errOutside = errors.New("resolves outside the repository")

// maxLinks bounds the symlinks one path may follow, as the kernel's
// ELOOP does.
const maxLinks = 40

// rulePaths are the real paths of the rule's context and Dockerfile inside
// the checkout dir, or an error naming the path that is missing or leads
// out of it.
func rulePaths(dir string, b model.Build) (ctxDir, dockerfile string, err error) {
	base, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", "", fmt.Errorf("checkout: %w", err)
	}
	if ctxDir, err = resolveIn(base, b.Rule.Context); err != nil {
		return "", "", pathError("build context", b.Rule.Context, b.Commit, err)
	}
	if st, err := os.Stat(ctxDir); err != nil || !st.IsDir() {
		return "", "", fmt.Errorf("build context %q is not a directory in commit %s", b.Rule.Context, short(b.Commit))
	}
	if dockerfile, err = resolveIn(base, b.Rule.Dockerfile); err != nil {
		return "", "", pathError("dockerfile", b.Rule.Dockerfile, b.Commit, err)
	}
	return ctxDir, dockerfile, checkIgnoreFiles(base, ctxDir, dockerfile)
}

// resolveIn returns the real path of rel inside the checkout base (a real
// path itself), every symlink followed. It reads only inside base: a link
// that leaves it (an absolute target, or ".." above the checkout) is
// errOutside without the target ever being looked at, so a build cannot
// probe Slipway's disk.
func resolveIn(base, rel string) (string, error) {
	todo := strings.Split(filepath.ToSlash(rel), "/")
	cur, links := "", 0 // cur is clean, relative to base, and has no symlinks
	for len(todo) > 0 {
		part := todo[0]
		todo = todo[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if cur == "" {
				return "", errOutside
			}
			cur = strings.TrimPrefix(path.Dir(cur), ".")
			continue
		}
		next := path.Join(cur, part)
		fi, err := os.Lstat(filepath.Join(base, filepath.FromSlash(next)))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("more than %d symlinks", maxLinks)
		}
		target, err := os.Readlink(filepath.Join(base, filepath.FromSlash(next)))
		if err != nil {
			return "", err
		}
		if path.IsAbs(filepath.ToSlash(target)) {
			return "", errOutside
		}
		todo = append(strings.Split(filepath.ToSlash(target), "/"), todo...)
	}
	return filepath.Join(base, filepath.FromSlash(cur)), nil
}

// pathError names a rule path that cannot be built from.
func pathError(what, rel, commit string, err error) error {
	if errors.Is(err, errOutside) {
		return fmt.Errorf("%s %q %w", what, rel, errOutside)
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%s %q not found in commit %s", what, rel, short(commit))
	}
	return fmt.Errorf("%s %q in commit %s: %w", what, rel, short(commit), err)
}

// checkIgnoreFiles refuses a .dockerignore (the context's, or the one next
// to the Dockerfile) that is a symlink out of the checkout: BuildKit reads
// them following links.
func checkIgnoreFiles(base, ctxDir, dockerfile string) error {
	for _, abs := range []string{filepath.Join(ctxDir, ".dockerignore"), dockerfile + ".dockerignore"} {
		rel, err := filepath.Rel(base, abs)
		if err != nil {
			return err
		}
		if _, err := resolveIn(base, rel); errors.Is(err, errOutside) {
			return fmt.Errorf("%q %w", filepath.ToSlash(rel), errOutside)
		}
	}
	return nil
}

// PrivateDir makes dir, or tightens it, to be Slipway's user's alone.
func PrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700) // #nosec G302 -- a directory needs its x bit; 0700 is its owner's alone
}
