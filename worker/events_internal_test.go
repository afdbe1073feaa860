package worker

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/slipway-build/slipway/model"
)

func TestEndEvents(t *testing.T) {
	pr := &model.PullRequest{Number: 7, Head: "abc", Base: "main"}
	fork := &model.PullRequest{Number: 8, Head: "def", Base: "main", Fork: true}
	tests := []struct {
		name string
		b    model.Build
		want []string
	}{
		{"pushed", model.Build{Status: model.StatusSucceeded, Digest: "sha256:1"}, []string{"image.pushed"}},
		// A pull request's image is no release: no image.pushed.
		{"pull request that pushed", model.Build{Status: model.StatusSucceeded, Digest: "sha256:1", PullRequest: pr},
			[]string{"pull_request.built"}},
		{"fork's pull request, never pushed", model.Build{Status: model.StatusSucceeded, PullRequest: fork},
			[]string{"pull_request.built"}},
		{"fork's pull request with a digest", model.Build{Status: model.StatusSucceeded, Digest: "sha256:1", PullRequest: fork},
			[]string{"pull_request.built"}},
		{"failed", model.Build{Status: model.StatusFailed}, []string{"build.failed"}},
		{"tests failed", model.Build{Status: model.StatusFailed, TestFailed: true}, []string{"test.failed", "build.failed"}},
		{"cancelled", model.Build{Status: model.StatusCancelled}, nil},
		{"skipped", model.Build{Status: model.StatusSkipped}, nil},
	}
	for _, tt := range tests {
		if got := endEvents(tt.b); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: endEvents = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTestFailureMarksTheBuild(t *testing.T) {
	b := model.Build{Status: model.StatusRunning}
	err := fmt.Errorf("run tests: %w", TestFailure(errors.New("test: exit code: 1")))
	outcome{err: err}.apply(&b)
	if b.Status != model.StatusFailed || !b.TestFailed || b.Error != "run tests: test: exit code: 1" {
		t.Errorf("build = %s test_failed=%v %q, want failed test_failed=true %q", b.Status, b.TestFailed, b.Error, "run tests: test: exit code: 1")
	}
	other := model.Build{Status: model.StatusRunning}
	outcome{err: errors.New("build: exit code: 3")}.apply(&other)
	if other.TestFailed {
		t.Error("a build error is no test failure")
	}
}

func TestAddDeliveriesOncePerHookAndEvent(t *testing.T) {
	hooks := []model.Hook{
		{URL: "http://a.test", Events: []string{"build.failed", "test.failed"}},
		{URL: "http://b.test"},
		{URL: "http://c.test", Events: []string{"test.failed"}},
	}
	b := model.Build{ID: "b1"}
	added := addDeliveries(&b, hooks, []string{"test.failed", "build.failed"})
	want := []model.Delivery{
		{Hook: 0, Event: "test.failed", URL: "http://a.test", MessageID: "msg_b1_0_test_failed", Status: "pending"},
		{Hook: 2, Event: "test.failed", URL: "http://c.test", MessageID: "msg_b1_2_test_failed", Status: "pending"},
		{Hook: 0, Event: "build.failed", URL: "http://a.test", MessageID: "msg_b1_0_build_failed", Status: "pending"},
	}
	if !reflect.DeepEqual(added, want) || !reflect.DeepEqual(b.Deliveries, want) {
		t.Errorf("added %+v\nrecorded %+v\nwant %+v", added, b.Deliveries, want)
	}
	if again := addDeliveries(&b, hooks, []string{"build.failed"}); len(again) != 0 || len(b.Deliveries) != 3 {
		t.Errorf("a second end added %+v; the deliveries are %+v", again, b.Deliveries)
	}
}
