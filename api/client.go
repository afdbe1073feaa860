package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/slipway-build/slipway/model"
)

// Client is a typed client of the REST API, used by the CLI.
type Client struct {
	// BaseURL is the server, e.g. http://localhost:8080.
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// Error is an API error answer.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Message) }

func (c Client) do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.send(ctx, method, path, body, out)
	return err
}

// send is do that also answers the response's header.
func (c Client) send(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return nil, &Error{Code: resp.StatusCode, Message: e.Error}
	}
	switch v := out.(type) {
	case nil:
		return resp.Header, nil
	case *[]byte:
		*v = raw
		return resp.Header, nil
	default:
		return resp.Header, json.Unmarshal(raw, out)
	}
}

// Repos lists the repositories.
func (c Client) Repos(ctx context.Context) ([]model.Repo, error) {
	var out []model.Repo
	return out, c.do(ctx, "GET", "/api/v1/repos", nil, &out)
}

// Builds lists builds, of one repository when repoID is not empty, newest
// first: every page.
func (c Client) Builds(ctx context.Context, repoID string) ([]model.Build, error) {
	var all []model.Build
	path := "/api/v1/builds?limit=500&repo=" + url.QueryEscape(repoID)
	for path != "" {
		var page []model.Build
		h, err := c.send(ctx, "GET", path, nil, &page)
		if err != nil {
			return all, err
		}
		all = append(all, page...)
		path = nextLink(h.Get("Link"))
	}
	return all, nil
}

// nextLink is the path of a Link header's rel="next", "" when there is none.
func nextLink(link string) string {
	for part := range strings.SplitSeq(link, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if ok && strings.Contains(params, `rel="next"`) && strings.HasPrefix(target, "</") && strings.HasSuffix(target, ">") {
			return strings.Trim(target, "<>")
		}
	}
	return ""
}

// Build reads one build.
func (c Client) Build(ctx context.Context, id string) (model.Build, error) {
	var out model.Build
	return out, c.do(ctx, "GET", "/api/v1/builds/"+url.PathEscape(id), nil, &out)
}

// Trigger builds a ref's tip or a commit.
func (c Client) Trigger(ctx context.Context, repoID, ref, commit string) (model.Build, error) {
	var out model.Build
	body := map[string]string{"ref": ref, "commit": commit}
	return out, c.do(ctx, "POST", "/api/v1/repos/"+url.PathEscape(repoID)+"/builds", body, &out)
}

// Cancel stops a queued or running build.
func (c Client) Cancel(ctx context.Context, id string) (model.Build, error) {
	var out model.Build
	return out, c.do(ctx, "POST", "/api/v1/builds/"+url.PathEscape(id)+"/cancel", nil, &out)
}

// Rebuild runs a finished build again.
func (c Client) Rebuild(ctx context.Context, id string) (model.Build, error) {
	var out model.Build
	return out, c.do(ctx, "POST", "/api/v1/builds/"+url.PathEscape(id)+"/rebuild", nil, &out)
}

// Log returns a build's log so far.
func (c Client) Log(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	return out, c.do(ctx, "GET", "/api/v1/builds/"+url.PathEscape(id)+"/log", nil, &out)
}

// ConnectRequest asks Slipway to connect a repository on its host.
type ConnectRequest = connectRequest

// Connect reads the repository on its host, creates the webhook there and
// registers it.
func (c Client) Connect(ctx context.Context, req ConnectRequest) (Registered, error) {
	var out Registered
	return out, c.do(ctx, "POST", "/api/v1/repos/connect", req, &out)
}

// DeleteRepo removes a repository and the webhook Slipway created for it.
func (c Client) DeleteRepo(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/api/v1/repos/"+url.PathEscape(id), nil, nil)
}

// Image reads the image a build pushed: its config, its layers with the
// instructions that made them, and the difference to the previous build
// of the same rule. platform picks one of a multi-platform image's
// ("linux/arm64"); "" is linux/amd64, else the first.
func (c Client) Image(ctx context.Context, buildID, platform string) (ImageInfo, error) {
	var out ImageInfo
	path := "/api/v1/builds/" + url.PathEscape(buildID) + "/image"
	if platform != "" {
		path += "?platform=" + url.QueryEscape(platform)
	}
	return out, c.do(ctx, "GET", path, nil, &out)
}
