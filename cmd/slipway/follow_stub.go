package main

import (
	"context"
	"errors"

	"github.com/slipway-build/slipway/api"
)

// follow is filled in when api.Client.FollowLog (the live log stream)
// is merged; until then `logs -f` says so.
func (c *cli) follow(context.Context, api.Client, string) error {
	return errors.New("logs -f: the live log client is not merged yet")
}
