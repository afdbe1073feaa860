package main

import "testing"

func TestParseRole(t *testing.T) {
	cases := []struct {
		name string
		want role
		ok   bool
	}{
		{"serve", role{name: "serve", hooks: true, api: true, workers: true, embedded: true}, true},
		{"worker", role{name: "worker", workers: true}, true},
		{"registry", role{name: "registry", registry: true}, true},
		{"webhook,api", role{name: "webhook,api", hooks: true, api: true}, true},
		{"api,worker,registry", role{name: "api,worker,registry", api: true, workers: true, registry: true}, true},
		{"webhook,serve", role{}, false}, // serve already runs everything
		{"webhook,", role{}, false},
		{"web", role{}, false},
	}
	for _, c := range cases {
		got, ok := parseRole(c.name)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRole(%q) = %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
