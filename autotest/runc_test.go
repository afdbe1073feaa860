package autotest

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/slipway-build/slipway/builder"
)

func TestProcessArgs(t *testing.T) {
	img := builder.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}}
	tests := []struct {
		name string
		s    Service
		want []string
	}{
		{"image's own", Service{}, []string{"/entry", "serve"}},
		{"command replaces the image's", Service{Command: []string{"test"}}, []string{"/entry", "test"}},
		{"entrypoint drops the image's command", Service{Entrypoint: []string{"sh", "-c"}}, []string{"sh", "-c"}},
		{"both", Service{Entrypoint: []string{"sh", "-c"}, Command: []string{"exit 3"}}, []string{"sh", "-c", "exit 3"}},
	}
	for _, tt := range tests {
		if got := processArgs(tt.s, img); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: processArgs = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestParseUser(t *testing.T) {
	for in, want := range map[string]specs.User{"": {}, "1000": {UID: 1000}, "1000:50": {UID: 1000, GID: 50}} {
		got, err := parseUser(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseUser(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if _, err := parseUser("www-data"); err == nil || err.Error() != `user "www-data": only numeric uid[:gid] is supported` {
		t.Errorf("parseUser(www-data) err = %v", err)
	}
}

func TestHostsFile(t *testing.T) {
	got := string(hostsFile(Plan{Services: []Service{{Name: "db"}, {Name: "web"}, {Name: "sut"}}}))
	want := "127.0.0.1\tlocalhost db web sut\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if got != want {
		t.Errorf("hosts = %q, want %q", got, want)
	}
}

func TestImageEnvAddsPath(t *testing.T) {
	if got := imageEnv([]string{"A=1"}); !reflect.DeepEqual(got, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1"}) {
		t.Errorf("imageEnv = %q", got)
	}
	if got := imageEnv([]string{"PATH=/bin"}); !reflect.DeepEqual(got, []string{"PATH=/bin"}) {
		t.Errorf("imageEnv kept PATH as %q", got)
	}
}
