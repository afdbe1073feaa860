// Package autotest runs Docker Hub style tests before a push: the `sut`
// service of a docker-compose.test.yml and the services it depends on, each
// in a runc container, all sharing one network namespace that has only
// loopback. The exit code of `sut` is the result.
package autotest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// File is the name of the compose file a build's context may hold.
const File = "docker-compose.test.yml"

// Sut is the service whose exit code is the test's result.
const Sut = "sut"

// Plan is what a test run starts: services in start order, sut last.
type Plan struct {
	Services []Service
}

// Service is one container of a test run.
type Service struct {
	Name string
	// Build is set when the service's image is built from the checkout;
	// otherwise Image is pulled.
	Build *Build
	Image string
	// Entrypoint and Command override the image's when not nil.
	Entrypoint []string
	Command    []string
	// Environment is added to the image's, sorted by name.
	Environment []string
	WorkingDir  string
	User        string
}

// Build is a service's build section with its paths made absolute.
type Build struct {
	Context    string
	Dockerfile string
	Args       map[string]string
	Target     string
}

// allowed are the compose keys Slipway runs, by where they stand; anything
// else is refused by name, never ignored, so a test cannot pass because a
// key it relies on was dropped.
var allowed = map[string][]string{
	"":          {"services", "version", "name"},
	"service":   {"build", "image", "command", "entrypoint", "environment", "depends_on", "working_dir", "user"},
	"build":     {"context", "dockerfile", "args", "target"},
	"dependson": {"condition"},
}

// Load reads the compose file at path and plans its test run. Paths in
// build sections must stay inside root (the checkout).
func Load(ctx context.Context, path, root string) (Plan, error) {
	content, err := os.ReadFile(path) // #nosec G304 -- the compose file of the build's own checkout, which the caller resolved
	if err != nil {
		return Plan{}, fmt.Errorf("read %s: %w", File, err)
	}
	return Parse(ctx, content, filepath.Dir(path), root)
}

// Parse plans the test run of a compose file's content; dir is the compose
// file's directory, root the checkout its build paths must stay inside.
func Parse(ctx context.Context, content []byte, dir, root string) (Plan, error) {
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	if err := checkKeys(content); err != nil {
		return Plan{}, fmt.Errorf("%s: %w", File, err)
	}
	project, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, File), Content: content}},
		// Slipway's own environment must never reach a test's file.
		Environment: types.Mapping{},
	}, func(o *loader.Options) {
		o.SetProjectName("slipway-test", true)
		o.SkipInclude, o.SkipExtends = true, true
		o.ResolvePaths = true
	})
	if err != nil {
		return Plan{}, fmt.Errorf("%s: %w", File, err)
	}
	return plan(project, root)
}

// checkKeys refuses every key outside the supported subset, naming it as
// services.web.volumes.
func checkKeys(content []byte) error {
	var doc map[string]any
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return fmt.Errorf("not YAML: %w", err)
	}
	if err := only("", doc, allowed[""], true); err != nil {
		return err
	}
	services, ok := doc["services"].(map[string]any)
	if !ok {
		return fmt.Errorf("services: want a mapping of services")
	}
	for _, name := range sortedNames(services) {
		if err := checkService("services."+name, services[name]); err != nil {
			return err
		}
	}
	return nil
}

func checkService(at string, v any) error {
	svc, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: want a mapping", at)
	}
	if err := only(at, svc, allowed["service"], false); err != nil {
		return err
	}
	if b, ok := svc["build"].(map[string]any); ok {
		if err := only(at+".build", b, allowed["build"], false); err != nil {
			return err
		}
	}
	deps, ok := svc["depends_on"].(map[string]any)
	if !ok {
		return nil
	}
	for _, name := range sortedNames(deps) {
		d, ok := deps[name].(map[string]any)
		if !ok {
			continue
		}
		if err := only(at+".depends_on."+name, d, allowed["dependson"], false); err != nil {
			return err
		}
		if c, ok := d["condition"]; ok && c != types.ServiceConditionStarted {
			return fmt.Errorf("%s.depends_on.%s.condition: %v is not supported; only service_started", at, name, c)
		}
	}
	return nil
}

// only refuses keys of m outside keys; x- extensions are allowed at the
// top level only, where they carry YAML anchors.
func only(at string, m map[string]any, keys []string, extensions bool) error {
	for _, k := range sortedNames(m) {
		if slices.Contains(keys, k) || (extensions && strings.HasPrefix(k, "x-")) {
			continue
		}
		return fmt.Errorf("%s: not supported by Slipway's tests (supported here: %s)", join(at, k), strings.Join(keys, ", "))
	}
	return nil
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
