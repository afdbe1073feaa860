package builder

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestPick(t *testing.T) {
	a, b, c := "unix:///a.sock", "unix:///b.sock", "unix:///c.sock"
	for _, tc := range []struct {
		name      string
		healthy   []candidate
		preferred string
		margin    int
		want      string
	}{
		{"none healthy", nil, a, 2, ""},
		{"no affinity: least busy", []candidate{{a, 3}, {b, 1}, {c, 2}}, "", 2, b},
		{"no affinity: tie goes to address order", []candidate{{a, 1}, {b, 0}, {c, 0}}, "", 2, b},
		{"affinity within margin", []candidate{{a, 2}, {b, 0}}, a, 2, a},
		{"affinity over margin", []candidate{{a, 3}, {b, 0}}, a, 2, b},
		{"affinity to a daemon that is down", []candidate{{b, 1}, {c, 0}}, a, 2, c},
		{"margin 0: affinity only when as idle", []candidate{{a, 1}, {b, 1}, {c, 0}}, b, 0, c},
		{"margin 0, equal load", []candidate{{a, 0}, {b, 0}}, b, 0, b},
		{"negative margin: no affinity", []candidate{{a, 0}, {b, 0}}, b, -1, a},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := pick(tc.healthy, tc.preferred, tc.margin)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("pick = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func TestAddrSourceList(t *testing.T) {
	src, err := addrSource(" unix:///a.sock, tcp://10.0.0.2:1234 ,", nil, time.Second, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := src(context.Background())
	want := []string{"unix:///a.sock", "tcp://10.0.0.2:1234"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("addrs = %q, %v; want %q", got, err, want)
	}
}

func TestAddrSourceRejects(t *testing.T) {
	for _, spec := range []string{"", " , ", "dns+tcp://bk:1234,unix:///a.sock", "dns+tcp://bk"} {
		if _, err := addrSource(spec, nil, time.Second, time.Now); err == nil {
			t.Errorf("addrSource(%q) = nil error", spec)
		}
	}
}

// TestAddrSourceDNS resolves through a fake resolver: the name is asked
// again only once the cache is out of date, and a failed lookup keeps the
// last answer.
func TestAddrSourceDNS(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	answers := [][]string{{"10.0.0.9", "10.0.0.3"}, nil, {"10.0.0.3", "fd00::4"}}
	var asked []string
	resolve := func(_ context.Context, host string) ([]string, error) {
		asked = append(asked, host)
		ans := answers[len(asked)-1]
		if ans == nil {
			return nil, errors.New("server misbehaving")
		}
		return ans, nil
	}
	src, err := addrSource("dns+tcp://buildkitd.slipway.svc:1234", resolve, 5*time.Second, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		after time.Duration
		want  []string
	}{
		{0, []string{"tcp://10.0.0.3:1234", "tcp://10.0.0.9:1234"}},
		{time.Second, []string{"tcp://10.0.0.3:1234", "tcp://10.0.0.9:1234"}},     // cached
		{5 * time.Second, []string{"tcp://10.0.0.3:1234", "tcp://10.0.0.9:1234"}}, // lookup fails: last answer
		{time.Second, []string{"tcp://10.0.0.3:1234", "tcp://[fd00::4]:1234"}},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		got, err := src(context.Background())
		if err != nil || !slices.Equal(got, s.want) {
			t.Fatalf("step %d: addrs = %q, %v; want %q", i, got, err, s.want)
		}
	}
	if want := []string{"buildkitd.slipway.svc", "buildkitd.slipway.svc", "buildkitd.slipway.svc"}; !slices.Equal(asked, want) {
		t.Errorf("asked %q, want %q", asked, want)
	}
}

func TestAddrSourceDNSFirstLookupFails(t *testing.T) {
	resolve := func(context.Context, string) ([]string, error) { return nil, nil }
	src, err := addrSource("dns+tcp://bk:1234", resolve, time.Second, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := src(context.Background()); err == nil {
		t.Fatalf("addrs = %q, want an error", got)
	}
}

func TestPoolNoHealthyDaemon(t *testing.T) {
	p, err := NewPool(PoolOptions{Addrs: "unix:///nonexistent/a.sock"})
	if err != nil {
		t.Fatal(err)
	}
	p.timeout = time.Second
	if err := p.Ping(context.Background()); err == nil {
		t.Fatal("Ping = nil with no daemon listening")
	}
	_, err = p.Build(context.Background(), Request{Repo: "r1"}, nil)
	if !errors.Is(err, ErrDaemonGone) {
		t.Fatalf("Build = %v, want ErrDaemonGone", err)
	}
	got := p.States()
	if len(got) != 1 || got[0].Addr != "unix:///nonexistent/a.sock" || got[0].Healthy || got[0].LastError == "" {
		t.Fatalf("States = %+v", got)
	}
}

// TestPoolStatesFollowDNS: a daemon whose record went is no longer
// listed, and a new one is, healthy until shown otherwise.
func TestPoolStatesFollowDNS(t *testing.T) {
	answer := []string{"10.0.0.3", "10.0.0.9"}
	resolve := func(context.Context, string) ([]string, error) { return answer, nil }
	p, err := NewPool(PoolOptions{Addrs: "dns+tcp://buildkitd:1234", Resolve: resolve})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := addrsOf(p.States()), []string{"tcp://10.0.0.3:1234", "tcp://10.0.0.9:1234"}; !slices.Equal(got, want) {
		t.Fatalf("States = %q, want %q", got, want)
	}
	answer = []string{"10.0.0.9", "10.0.0.12"}
	p.addrs, _ = addrSource("dns+tcp://buildkitd:1234", resolve, time.Second, time.Now) // a fresh cache
	if _, err := p.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := p.States()
	want := []DaemonState{{Addr: "tcp://10.0.0.12:1234", Healthy: true}, {Addr: "tcp://10.0.0.9:1234", Healthy: true}}
	if !slices.Equal(got, want) {
		t.Fatalf("States = %+v, want %+v", got, want)
	}
}

func addrsOf(states []DaemonState) []string {
	var out []string
	for _, s := range states {
		out = append(out, s.Addr)
	}
	return out
}
