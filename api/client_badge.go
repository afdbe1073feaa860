package api

import (
	"context"
	"net/url"
)

// NewBadgeKey makes repository repoID a new badge key and answers it; the
// old key stops working.
func (c Client) NewBadgeKey(ctx context.Context, repoID string) (string, error) {
	var out BadgeKey
	err := c.do(ctx, "POST", "/api/v1/repos/"+url.PathEscape(repoID)+"/badge-key", nil, &out)
	return out.BadgeKey, err
}

// RevokeBadgeKey removes repository repoID's badge key.
func (c Client) RevokeBadgeKey(ctx context.Context, repoID string) error {
	return c.do(ctx, "DELETE", "/api/v1/repos/"+url.PathEscape(repoID)+"/badge-key", nil, nil)
}
