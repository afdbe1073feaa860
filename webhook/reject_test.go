package webhook

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRejectionsAreRedactedInTheAnswerAndTheLog(t *testing.T) {
	var logs bytes.Buffer
	h := &Handler{}
	rec := httptest.NewRecorder()
	h.rejectLog(rec, slog.New(slog.NewTextHandler(&logs, nil)), "github", "lookup_failed", 503, `look up repository: nats: dial "nats://slipway:n4tspass@10.1.1.1:4222"`)
	want := `{"error":"look up repository: nats: dial \"nats://10.1.1.1:4222\""}` + "\n"
	if rec.Body.String() != want {
		t.Fatalf("answer\n got %s\nwant %s", rec.Body.String(), want)
	}
	if strings.Contains(logs.String(), "n4tspass") {
		t.Fatalf("log keeps the password: %s", logs.String())
	}
}
