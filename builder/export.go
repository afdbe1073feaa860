package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	bk "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
)

// ImageConfig is what a container run needs from an image's config.
type ImageConfig struct {
	Entrypoint []string `json:"Entrypoint"`
	Cmd        []string `json:"Cmd"`
	Env        []string `json:"Env"`
	WorkingDir string   `json:"WorkingDir"`
	User       string   `json:"User"`
}

// Export builds req for the daemon's own platform and writes the image's
// filesystem into dir (BuildKit's local exporter), returning the image's
// config: a root filesystem for a container that runs on this host.
// Nothing is pushed and no cache is written.
func (c Client) Export(ctx context.Context, req Request, dir string, log io.Writer) (ImageConfig, error) {
	req.Platforms = nil // a test container runs here, natively
	opt, err := solveOpt(req, auth(req.Credentials))
	if err != nil {
		return ImageConfig{}, err
	}
	opt.Exports = []bk.ExportEntry{{Type: bk.ExporterLocal, OutputDir: dir}}
	opt.CacheExports = nil
	attrs := opt.FrontendAttrs
	opt.Frontend, opt.FrontendAttrs = "", nil
	var raw []byte
	_, _, err = c.stream(ctx, log, func(ctx context.Context, cl *bk.Client, ch chan *bk.SolveStatus) (*bk.SolveResponse, error) {
		return cl.Build(ctx, opt, "slipway", func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
			res, err := gw.Solve(ctx, gateway.SolveRequest{Frontend: "dockerfile.v0", FrontendOpt: attrs})
			if err != nil {
				return nil, err
			}
			raw = res.Metadata[exptypes.ExporterImageConfigKey]
			return res, nil
		}, ch)
	})
	if err != nil {
		return ImageConfig{}, err
	}
	var img struct {
		Config ImageConfig `json:"config"`
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &img); err != nil {
			return ImageConfig{}, fmt.Errorf("image config: %w", err)
		}
	}
	return img.Config, nil
}
