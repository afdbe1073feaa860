package registry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/slipway-build/slipway/outbound"
)

// TestRefusedRegistryIsNotUnreachable: a registry the outbound guard
// refuses fails at once with the reason, instead of being retried as an
// outage; the address opened for the registry client is reached.
func TestRefusedRegistryIsNotUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	err := Client{Transport: (&outbound.Guard{}).Transport()}.Ping(context.Background(), host)
	if !errors.Is(err, outbound.ErrRefused) || errors.Is(err, ErrUnreachable) {
		t.Errorf("Ping(%s) through a closed guard = %v, want refused and not unreachable", host, err)
	}
	open := (&outbound.Guard{}).With(netip.MustParseAddrPort(host))
	if err := (Client{Transport: open.Transport()}).Ping(context.Background(), host); err != nil {
		t.Errorf("Ping(%s) with its address open: %v", host, err)
	}
}
