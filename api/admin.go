package api

import (
	"context"
	"net/http"
)

// Secrets rotates the key that seals the repositories' secrets at rest
// (cmd/slipway's rotator, over package seal and store).
type Secrets interface {
	// Rotate seals every secret under a new primary key and answers how
	// many records it rewrote and the key's id.
	Rotate(ctx context.Context) (Rotated, error)
}

// Rotated is the answer of POST /api/v1/admin/secrets/rotate.
type Rotated struct {
	Resealed int    `json:"resealed"`
	KeyID    string `json:"key_id"`
}

// rotateSecrets serves POST /api/v1/admin/secrets/rotate. It is for the
// bootstrap admin only: today that is whoever holds the API token.
func (s *Server) rotateSecrets(w http.ResponseWriter, r *http.Request) {
	if !caller(r).Site {
		writeError(w, http.StatusForbidden, "forbidden: only the bootstrap admin rotates the secret key")
		return
	}
	if s.Secrets == nil {
		writeError(w, http.StatusNotImplemented, "this process does not hold the secret keys")
		return
	}
	// Rotation outlives an impatient client: stopping half-way would
	// leave records under a key about to be dropped.
	out, err := s.Secrets.Rotate(context.WithoutCancel(r.Context()))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.logger().Info("secrets rotated", "key_id", out.KeyID, "resealed", out.Resealed)
	writeJSON(w, http.StatusOK, out)
}

// RotateSecrets asks the server to rotate the key that seals secrets.
func (c Client) RotateSecrets(ctx context.Context) (Rotated, error) {
	var out Rotated
	err := c.do(ctx, http.MethodPost, "/api/v1/admin/secrets/rotate", nil, &out)
	return out, err
}
