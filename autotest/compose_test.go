package autotest

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// checkout is a repository with an app/ context holding a Dockerfile, a
// Dockerfile.test and the compose file's directory.
func checkout(t *testing.T) (root, dir string) {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(root, "app")
	for _, p := range []string{"app/Dockerfile", "app/Dockerfile.test", "web/Dockerfile"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte("FROM scratch\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, dir
}

func TestParsePlans(t *testing.T) {
	root, dir := checkout(t)
	tests := []struct {
		name, file string
		want       Plan
	}{
		{
			name: "sut built from the context",
			file: "services:\n  sut:\n    build: .\n    command: ./run-tests.sh\n",
			want: Plan{Services: []Service{{Name: "sut", Build: &Build{Context: dir, Dockerfile: dir + "/Dockerfile", Args: map[string]string{}},
				Command: []string{"./run-tests.sh"}}}},
		},
		{
			name: "dependencies first, each reachable by name",
			file: `version: "3"
x-common: &common
  FOO: bar
services:
  sut:
    build:
      context: .
      dockerfile: Dockerfile.test
      target: test
      args: {GREETING: hi}
    entrypoint: ["/bin/sh", "-c"]
    command: ["wget -qO- http://web:8080/file"]
    environment:
      <<: *common
      URL: http://web:8080
    working_dir: /src
    user: "1000"
    depends_on: [web, cache]
  web:
    build: ../web
    depends_on:
      cache:
        condition: service_started
  cache:
    image: 127.0.0.1:5000/library/busybox:latest
    command: sleep 3600
  unused:
    image: never/started
`,
			want: Plan{Services: []Service{
				{Name: "cache", Image: "127.0.0.1:5000/library/busybox:latest", Command: []string{"sleep", "3600"}},
				{Name: "web", Build: &Build{Context: root + "/web", Dockerfile: root + "/web/Dockerfile", Args: map[string]string{}}},
				{Name: "sut", Build: &Build{Context: dir, Dockerfile: dir + "/Dockerfile.test", Target: "test", Args: map[string]string{"GREETING": "hi"}},
					Entrypoint: []string{"/bin/sh", "-c"}, Command: []string{"wget -qO- http://web:8080/file"},
					Environment: []string{"FOO=bar", "URL=http://web:8080"}, WorkingDir: "/src", User: "1000"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(t.Context(), []byte(tt.file), dir, root)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	root, dir := checkout(t)
	const supported = "build, image, command, entrypoint, environment, depends_on, working_dir, user"
	tests := []struct{ name, file, want string }{
		{"volumes", "services:\n  sut:\n    image: a\n    volumes: [\"/:/host\"]\n",
			"docker-compose.test.yml: services.sut.volumes: not supported by Slipway's tests (supported here: " + supported + ")"},
		{"ports", "services:\n  sut:\n    image: a\n    ports: [\"80:80\"]\n",
			"docker-compose.test.yml: services.sut.ports: not supported by Slipway's tests (supported here: " + supported + ")"},
		{"privileged", "services:\n  sut:\n    image: a\n    privileged: true\n",
			"docker-compose.test.yml: services.sut.privileged: not supported by Slipway's tests (supported here: " + supported + ")"},
		{"cap_add", "services:\n  sut:\n    image: a\n    cap_add: [SYS_ADMIN]\n",
			"docker-compose.test.yml: services.sut.cap_add: not supported by Slipway's tests (supported here: " + supported + ")"},
		{"devices", "services:\n  sut:\n    image: a\n    devices: [\"/dev/kvm\"]\n",
			"docker-compose.test.yml: services.sut.devices: not supported by Slipway's tests (supported here: " + supported + ")"},
		{"service networks", "services:\n  sut:\n    image: a\n    networks: [front]\n",
			"docker-compose.test.yml: services.sut.networks: not supported by Slipway's tests (supported here: " + supported + ")"},
		{"healthcheck", "services:\n  sut:\n    image: a\n    healthcheck: {test: [\"CMD\", \"true\"]}\n",
			"docker-compose.test.yml: services.sut.healthcheck: not supported by Slipway's tests (supported here: " + supported + ")"},
		{"extends", "services:\n  sut:\n    image: a\n    extends: {service: b}\n",
			"docker-compose.test.yml: services.sut.extends: not supported by Slipway's tests (supported here: " + supported + ")"},
		{"service secrets", "services:\n  sut:\n    image: a\n    secrets: [s]\n",
			"docker-compose.test.yml: services.sut.secrets: not supported by Slipway's tests (supported here: " + supported + ")"},
		{"top-level secrets", "secrets:\n  s: {file: ./s}\nservices:\n  sut:\n    image: a\n",
			"docker-compose.test.yml: secrets: not supported by Slipway's tests (supported here: services, version, name)"},
		{"top-level configs", "configs:\n  c: {file: ./c}\nservices:\n  sut:\n    image: a\n",
			"docker-compose.test.yml: configs: not supported by Slipway's tests (supported here: services, version, name)"},
		{"top-level volumes", "volumes:\n  data: {}\nservices:\n  sut:\n    image: a\n",
			"docker-compose.test.yml: volumes: not supported by Slipway's tests (supported here: services, version, name)"},
		{"top-level networks", "networks:\n  front: {}\nservices:\n  sut:\n    image: a\n",
			"docker-compose.test.yml: networks: not supported by Slipway's tests (supported here: services, version, name)"},
		{"include", "include: [other.yml]\nservices:\n  sut:\n    image: a\n",
			"docker-compose.test.yml: include: not supported by Slipway's tests (supported here: services, version, name)"},
		{"build ssh", "services:\n  sut:\n    build: {context: ., ssh: [default]}\n",
			"docker-compose.test.yml: services.sut.build.ssh: not supported by Slipway's tests (supported here: context, dockerfile, args, target)"},
		{"build secrets", "services:\n  sut:\n    build: {context: ., secrets: [s]}\n",
			"docker-compose.test.yml: services.sut.build.secrets: not supported by Slipway's tests (supported here: context, dockerfile, args, target)"},
		{"healthy condition", "services:\n  sut:\n    image: a\n    depends_on: {web: {condition: service_healthy}}\n  web:\n    image: b\n",
			"docker-compose.test.yml: services.sut.depends_on.web.condition: service_healthy is not supported; only service_started"},
		{"no sut", "services:\n  web:\n    image: a\n", `docker-compose.test.yml: no "sut" service`},
		{"neither build nor image", "services:\n  sut:\n    command: \"true\"\n", "docker-compose.test.yml: service \"sut\" has neither an image nor a build context specified: invalid compose project"},
		{"context outside", "services:\n  sut:\n    build: ../..\n",
			"docker-compose.test.yml: services.sut.build.context: must stay inside the repository"},
		{"missing dockerfile", "services:\n  sut:\n    build: {context: ., dockerfile: nope}\n",
			"docker-compose.test.yml: services.sut.build.dockerfile: app/nope not found in the commit"},
		{"cycle", "services:\n  sut:\n    image: a\n    depends_on: [web]\n  web:\n    image: b\n    depends_on: [sut]\n",
			"docker-compose.test.yml: dependency cycle detected: sut -> web -> sut"},
		{"bad name", "services:\n  sut:\n    image: a\n    depends_on: [Web.1]\n  Web.1:\n    image: b\n",
			"docker-compose.test.yml: services.Web.1: the name must be lower-case letters, digits, '_' or '-', at most 31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(t.Context(), []byte(tt.file), dir, root)
			if err == nil {
				t.Fatalf("Parse = nil error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse error\n%q\nwant\n%q", err, tt.want)
			}
		})
	}
}
