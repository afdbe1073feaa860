package queue_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/queue"
)

// Work-queue jobs are not sealed: they name a build (and a hook by its
// index), and the worker reads the secrets from the sealed repository.
// The build job is the model.Build itself, checked by the store's
// TestBuildRecordsCarryNoSecrets. A field that looks like a secret fails
// here.
func TestJobsCarryNoSecrets(t *testing.T) {
	for _, v := range []any{queue.HookJob{}, queue.StatusJob{}} {
		typ := reflect.TypeOf(v)
		var fields []string
		for i := range typ.NumField() {
			tag := typ.Field(i).Tag.Get("json")
			fields = append(fields, strings.Split(tag, ",")[0])
			for _, word := range []string{"secret", "token", "key", "password", "credential", "url"} {
				if strings.Contains(tag, word) {
					t.Errorf("%s.%s (json %q) may carry a secret; carry an id instead", typ.Name(), typ.Field(i).Name, tag)
				}
			}
		}
		t.Logf("%s: %v", typ.Name(), fields)
	}
}
