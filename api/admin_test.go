package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/natsd/natsdtest"
)

// bootstrapOnly is an access directory on a fresh embedded NATS whose
// only token is the bootstrap admin's.
func bootstrapOnly(t *testing.T, token string) *access.Directory {
	t.Helper()
	_, nc := natsdtest.Start(t)
	d, err := access.Open(context.Background(), nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	d.Bootstrap = token
	return d
}

type rotateFunc func(ctx context.Context) (api.Rotated, error)

func (f rotateFunc) Rotate(ctx context.Context) (api.Rotated, error) { return f(ctx) }

// Rotation is for the holder of the API token; a server without keys says
// so.
func TestRotateSecretsRoute(t *testing.T) {
	calls := 0
	ok := rotateFunc(func(context.Context) (api.Rotated, error) {
		calls++
		return api.Rotated{Resealed: 3, KeyID: "9f72ea0c"}, nil
	})
	for _, tc := range []struct {
		name    string
		secrets api.Secrets
		token   string
		want    string // error text, or "" for success
		code    int
	}{
		{"no token", ok, "wrong", "HTTP 401: unknown, revoked or expired API token", 401},
		{"no keys here", nil, "slp_admin", "HTTP 501: this process does not hold the secret keys", 501},
		{"failed", rotateFunc(func(context.Context) (api.Rotated, error) { return api.Rotated{}, errors.New("reseal: nats down") }), "slp_admin", "HTTP 503: reseal: nats down", 503},
		{"rotated", ok, "slp_admin", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			(&api.Server{Tokens: bootstrapOnly(t, "slp_admin"), Secrets: tc.secrets}).Register(mux)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			got, err := api.Client{BaseURL: srv.URL, Token: tc.token}.RotateSecrets(context.Background())
			if tc.want != "" {
				if err == nil || err.Error() != tc.want {
					t.Fatalf("RotateSecrets = %+v, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err != nil || got != (api.Rotated{Resealed: 3, KeyID: "9f72ea0c"}) {
				t.Fatalf("RotateSecrets = %+v, %v", got, err)
			}
		})
	}
	if calls != 1 {
		t.Errorf("rotations = %d, want 1 (only the authorised call)", calls)
	}
}
