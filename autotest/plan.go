package autotest

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// nameRE is a service name Slipway accepts: it names a container and a
// line of /etc/hosts.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,30}$`)

// plan orders sut's dependencies before it; services sut does not reach
// are not started.
func plan(p *types.Project, root string) (Plan, error) {
	if _, ok := p.Services[Sut]; !ok {
		return Plan{}, fmt.Errorf("%s: no %q service", File, Sut)
	}
	var out Plan
	seen := map[string]bool{}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		if slices.Contains(path, name) {
			return fmt.Errorf("%s: services.%s.depends_on: a cycle (%s)", File, name, strings.Join(append(path, name), " → "))
		}
		if seen[name] {
			return nil
		}
		svc, ok := p.Services[name]
		if !ok {
			return fmt.Errorf("%s: services.%s.depends_on: no service %q", File, path[len(path)-1], name)
		}
		for _, dep := range sortedNames(svc.DependsOn) {
			if err := visit(dep, append(path, name)); err != nil {
				return err
			}
		}
		s, err := service(svc, root)
		if err != nil {
			return err
		}
		seen[name] = true
		out.Services = append(out.Services, s)
		return nil
	}
	return out, visit(Sut, nil)
}

func service(svc types.ServiceConfig, root string) (Service, error) {
	at := "services." + svc.Name
	if !nameRE.MatchString(svc.Name) {
		return Service{}, fmt.Errorf("%s: %s: the name must be lower-case letters, digits, '_' or '-', at most 31", File, at)
	}
	s := Service{Name: svc.Name, Image: svc.Image, WorkingDir: svc.WorkingDir, User: svc.User}
	if svc.Entrypoint != nil {
		s.Entrypoint = []string(svc.Entrypoint)
	}
	if svc.Command != nil {
		s.Command = []string(svc.Command)
	}
	for _, k := range sortedNames(svc.Environment) {
		if v := svc.Environment[k]; v != nil {
			s.Environment = append(s.Environment, k+"="+*v)
		}
	}
	if svc.Build != nil {
		b, err := build(at, svc.Build, root)
		if err != nil {
			return Service{}, err
		}
		s.Build, s.Image = b, ""
	}
	if s.Build == nil && s.Image == "" {
		return Service{}, fmt.Errorf("%s: %s: needs build or image", File, at)
	}
	return s, nil
}

// build checks a build section whose paths the loader made absolute; they
// must stay inside the checkout, as a rule's context must.
func build(at string, b *types.BuildConfig, root string) (*Build, error) {
	out := &Build{Context: filepath.Clean(b.Context), Dockerfile: b.Dockerfile, Target: b.Target, Args: map[string]string{}}
	if out.Dockerfile == "" {
		out.Dockerfile = "Dockerfile"
	}
	if !filepath.IsAbs(out.Dockerfile) {
		out.Dockerfile = filepath.Join(out.Context, out.Dockerfile)
	}
	// In this order, so that one mistake always gets the same error.
	for _, f := range []struct {
		field string
		p     *string
	}{{"context", &out.Context}, {"dockerfile", &out.Dockerfile}} {
		field, p := f.field, f.p
		// A committed symlink must not lead a build outside the checkout.
		real, err := filepath.EvalSymlinks(*p)
		if err != nil {
			return nil, fmt.Errorf("%s: %s.build.%s: %s not found in the commit", File, at, field, relTo(root, *p))
		}
		if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("%s: %s.build.%s: must stay inside the repository", File, at, field)
		}
		*p = real
	}
	for _, k := range sortedNames(b.Args) {
		if v := b.Args[k]; v != nil {
			out.Args[k] = *v
		}
	}
	return out, nil
}

// relTo is p as the repository names it.
func relTo(root, p string) string {
	if rel, err := filepath.Rel(root, p); err == nil {
		return rel
	}
	return p
}
