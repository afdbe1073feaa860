package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/slipway-build/slipway/builder"
	"github.com/slipway-build/slipway/model"
)

// stageBuilder answers Test with testErr and Ping with pingErr, and keeps
// the test request it got.
type stageBuilder struct {
	testErr, pingErr error
	tested           []builder.Request
}

func (s *stageBuilder) Ping(context.Context) error { return s.pingErr }
func (s *stageBuilder) Build(context.Context, builder.Request, io.Writer) (builder.Result, error) {
	return builder.Result{}, errors.New("stageBuilder does not build images")
}
func (s *stageBuilder) Test(_ context.Context, req builder.Request, _ io.Writer) error {
	s.tested = append(s.tested, req)
	return s.testErr
}

func TestTestStage(t *testing.T) {
	image := builder.Request{Image: "reg/acme/demo", Push: true, Target: "release", BuildArgs: map[string]string{"A": "1"}}
	withTest := model.Build{Image: "reg/acme/demo", Rule: model.Rule{Dockerfile: "Dockerfile", Test: &model.Test{Target: "test"}}}
	failed := errors.New(`rpc error: code = Unknown desc = process "/bin/sh -c exit 4" did not complete successfully: exit code: 4`)
	tests := []struct {
		name             string
		build            model.Build
		testErr, pingErr error
		wantErr          string
		wantInfra        bool
		wantLog          string
		wantTested       int
	}{
		{name: "no test", build: model.Build{Image: "reg/acme/demo"}},
		{name: "passes", build: withTest, wantTested: 1, wantLog: "==> test stage \"test\" of Dockerfile\n==> test stage \"test\" passed\n"},
		{name: "fails", build: withTest, testErr: failed, wantTested: 1,
			wantErr: `test stage "test" failed: process "/bin/sh -c exit 4" did not complete successfully: exit code: 4`,
			wantLog: "==> test stage \"test\" of Dockerfile\n"},
		{name: "buildkit gone", build: withTest, testErr: failed, pingErr: errors.New("connection refused"), wantTested: 1,
			wantErr:   `buildkit went away during the build: process "/bin/sh -c exit 4" did not complete successfully: exit code: 4`,
			wantInfra: true, wantLog: "==> test stage \"test\" of Dockerfile\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &stageBuilder{testErr: tt.testErr, pingErr: tt.pingErr}
			w := &Worker{Builder: b}
			var log bytes.Buffer
			err := w.test(t.Context(), tt.build, image, &log)
			if got := errString(err); got != tt.wantErr {
				t.Errorf("err = %q, want %q", got, tt.wantErr)
			}
			if infra := errors.As(err, new(infraError)); infra != tt.wantInfra {
				t.Errorf("infraError = %v, want %v", infra, tt.wantInfra)
			}
			if log.String() != tt.wantLog {
				t.Errorf("log = %q, want %q", log.String(), tt.wantLog)
			}
			if len(b.tested) != tt.wantTested {
				t.Fatalf("Test called %d times, want %d", len(b.tested), tt.wantTested)
			}
			if tt.wantTested == 0 {
				return
			}
			got := b.tested[0]
			if got.Target != "test" || got.Image != "" || got.Push || got.BuildArgs["A"] != "1" {
				t.Errorf("test request: target %q image %q push %v args %v; want target \"test\", no image, no push, args map[A:1]",
					got.Target, got.Image, got.Push, got.BuildArgs)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestBuildErrorDaemonGone: a pool answers Ping while another daemon is up,
// so the death of the build's own daemon must still make the job retried.
func TestBuildErrorDaemonGone(t *testing.T) {
	w := &Worker{Builder: &stageBuilder{}}
	gone := fmt.Errorf("%w: unix:///bk-1.sock: %w", builder.ErrDaemonGone, errors.New("rpc error: code = Unavailable desc = error reading from server: EOF"))
	err := w.buildError(t.Context(), model.Build{Image: "reg/acme/demo"}, gone)
	if !errors.As(err, new(infraError)) {
		t.Fatalf("buildError = %v (%T), want an infraError", err, err)
	}
	want := "buildkit went away during the build: buildkit daemon gone: unix:///bk-1.sock: rpc error: code = Unavailable desc = error reading from server: EOF"
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	// The same failure without ErrDaemonGone, with Ping answering, is the build's own.
	if err := w.buildError(t.Context(), model.Build{Image: "reg/acme/demo"}, errors.New("exit code: 4")); errors.As(err, new(infraError)) {
		t.Errorf("buildError of a failed step = infraError %v", err)
	}
}
