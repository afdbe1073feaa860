package rest

import (
	"context"
	"fmt"
	"net/http"

	"github.com/slipway-build/slipway/forge"
)

// Statuses is how one REST host takes commit statuses. The hosts check a
// status, open their client and post it alike; they differ only in their
// words for the states and in the request, which is all this holds.
type Statuses struct {
	// Host is the provider name every error starts with.
	Host string
	// States are the host's words for the build states.
	States map[forge.State]string
	// Open checks c and returns its client and the escaped path that names
	// the repository in the host's API.
	Open func(op string, c forge.Conn) (*Client, string, error)
	// Request is the path (below the API root) and JSON body that set s,
	// given the repository's path, the host's word for s.State and the
	// status key.
	Request func(repo string, s forge.Status, state, key string) (path string, body any)
}

// Set posts s; its key is forge.DefaultKey when s has none.
func (st Statuses) Set(ctx context.Context, c forge.Conn, s forge.Status) error {
	const op = "SetStatus"
	state, ok := st.States[s.State]
	if !ok {
		return fmt.Errorf("%s: %s: unknown state %q", st.Host, op, s.State)
	}
	if s.Commit == "" {
		return fmt.Errorf("%s: %s: Status.Commit is empty", st.Host, op)
	}
	a, repo, err := st.Open(op, c)
	if err != nil {
		return err
	}
	key := s.Key
	if key == "" {
		key = forge.DefaultKey
	}
	path, body := st.Request(repo, s, state, key)
	return a.Call(ctx, op, http.MethodPost, path, body, nil)
}
