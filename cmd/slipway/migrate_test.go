package main

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/slipway-build/slipway/access"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/natsd/natsdtest"
	"github.com/slipway-build/slipway/seal"
)

// TestAdopt: the owners of existing repositories become organizations,
// once, whatever runs adopt again.
func TestAdopt(t *testing.T) {
	e, nc := natsdtest.Start(t)
	st := storeOn(t, e, seal.Ephemeral())
	dir, err := access.Open(testContext(t), nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []model.Repo{
		{ID: "r1", Provider: "github", FullName: "Acme/app", Image: "127.0.0.1:5000/acme/app", CreatedAt: time.Now()},
		{ID: "r2", Provider: "gitlab", FullName: "globex/sub/lib", Image: "127.0.0.1:5000/globex/lib", CreatedAt: time.Now()},
	} {
		if err := st.CreateRepo(testContext(t), r); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := adopt(testContext(t), st, dir, slog.Default()); err != nil {
			t.Fatal(err)
		}
	}
	orgs, err := dir.ListOrgs(testContext(t))
	if err != nil || len(orgs) != 2 || orgs[0].Name != "acme" || orgs[1].Name != "globex" {
		t.Fatalf("organizations = %+v, %v; want acme and globex", orgs, err)
	}
	if _, err := dir.CreateOrg(testContext(t), "acme", nil); !errors.Is(err, access.ErrExists) {
		t.Errorf("acme again: %v, want ErrExists", err)
	}
}
