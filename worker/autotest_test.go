package worker

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipway-build/slipway/autotest"
	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/model"
)

// fakeTester answers Run with run(ctx) and keeps the runs it got.
type fakeTester struct {
	run  func(ctx context.Context) error
	runs []autotest.Run
}

func (f *fakeTester) Run(ctx context.Context, run autotest.Run) error {
	f.runs = append(f.runs, run)
	return f.run(ctx)
}

func TestAutotest(t *testing.T) {
	const compose = "services:\n  sut:\n    image: reg/library/busybox\n    command: [\"true\"]\n"
	tests := []struct {
		name     string
		file     string // docker-compose.test.yml, "" for none
		timeout  string
		run      func(ctx context.Context) error
		wantErr  string
		wantRuns int
	}{
		{name: "no compose file", run: func(context.Context) error { return nil }},
		{name: "passes", file: compose, run: func(context.Context) error { return nil }, wantRuns: 1},
		{name: "sut fails", file: compose, run: func(context.Context) error { return autotest.Failed{Code: 3} },
			wantErr: `test "sut" failed: exit code 3`, wantRuns: 1},
		{name: "times out", file: compose, timeout: "50ms", run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			wantErr: "test docker-compose.test.yml: timed out after 50ms", wantRuns: 1},
		{name: "refused key", file: "services:\n  sut:\n    image: a\n    privileged: true\n", run: func(context.Context) error { return nil },
			wantErr: "docker-compose.test.yml: services.sut.privileged: not supported by Slipway's tests (supported here: build, image, command, entrypoint, environment, depends_on, working_dir, user)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(dir, autotest.File), []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			f := &fakeTester{run: tt.run}
			w := &Worker{Autotest: f}
			var log bytes.Buffer
			err := w.autotest(t.Context(), model.Repo{TestTimeout: tt.timeout}, model.Build{ID: "0123456789abcdef0123"}, dir,
				builder.Request{ContextDir: dir}, &log, slog.Default())
			if got := errString(err); got != tt.wantErr {
				t.Errorf("err = %q, want %q\nlog:\n%s", got, tt.wantErr, log.String())
			}
			if len(f.runs) != tt.wantRuns {
				t.Fatalf("Run called %d times, want %d", len(f.runs), tt.wantRuns)
			}
			if tt.wantRuns > 0 && (f.runs[0].ID != "0123456789abcdef0123" || len(f.runs[0].Plan.Services) != 1) {
				t.Errorf("run %+v, want the build's id and one service", f.runs[0])
			}
		})
	}
}
