package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/model"
)

// follow prints a build's log live until the build ends: nil when it
// succeeded, exit code 1 with its error when it did not. On a terminal a
// progress line ("building… 12s") shows while the log is quiet.
func (c *cli) follow(ctx context.Context, client api.Client, id string) error {
	prog := newProgress(c.stdout, c.terminal)
	defer prog.Stop()
	var last model.Build
	var final string
	err := client.FollowLog(ctx, id, 0, func(e api.Event) error {
		switch e.Kind {
		case api.EventLog:
			_, err := io.WriteString(prog, e.Text)
			return err
		case api.EventStatus:
			if e.Build != nil {
				last = *e.Build
				prog.Set(waiting(last))
			}
		case api.EventEnd:
			final = e.Status
		}
		return nil
	})
	prog.EndLine()
	prog.Stop()
	if err != nil {
		return notFound(explain(err, client.BaseURL), "build", "slipway builds")
	}
	if final == model.StatusSucceeded {
		return nil
	}
	return &exitError{code: exitFailed, err: errors.New(endLine(ctx, client, id, final, last))}
}

// waiting is what the progress line says a build is doing, and since.
func waiting(b model.Build) (string, time.Time) {
	if b.Status == model.StatusRunning && b.StartedAt != nil {
		return "building", *b.StartedAt
	}
	return b.Status, b.CreatedAt
}

// endLine says how a build that did not succeed ended, with its error as
// the server recorded it.
func endLine(ctx context.Context, client api.Client, id, status string, last model.Build) string {
	if b, err := client.Build(ctx, id); err == nil {
		last = b
	}
	why := last.Error
	if why == "" {
		why = last.Reason
	}
	if why == "" {
		return fmt.Sprintf("build %s %s", id, status)
	}
	return fmt.Sprintf("build %s %s: %s", id, status, why)
}
