package api

import (
	"context"
	"net/url"
	"strings"
)

// Images lists the embedded registry's images the caller may read, of one
// organization unless org is "", whose names hold q unless q is "".
func (c Client) Images(ctx context.Context, org, q string) ([]Image, error) {
	v := url.Values{}
	if org != "" {
		v.Set("org", org)
	}
	if q != "" {
		v.Set("q", q)
	}
	path := "/api/v1/images"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []Image
	return out, c.do(ctx, "GET", path, nil, &out)
}

// ImageTags lists an image's tags; name is as Images answers it
// (acme/demo).
func (c Client) ImageTags(ctx context.Context, name string) ([]ImageTag, error) {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	var out []ImageTag
	return out, c.do(ctx, "GET", "/api/v1/images/"+strings.Join(parts, "/")+"/tags", nil, &out)
}
