package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/cobra"

	"github.com/slipway-build/slipway/api"
	"github.com/slipway-build/slipway/model"
	"github.com/slipway-build/slipway/registry"
)

// imageOptions are the flags every image command takes.
type imageOptions struct {
	platform string
	insecure bool
}

func imageCmd(c *cli) *cobra.Command {
	var o imageOptions
	cmd := group("image", "inspect an image, or save it as a tarball that `docker load` reads",
		imageInspectCmd(c, &o), imageSaveCmd(c, &o))
	cmd.PersistentFlags().StringVar(&o.platform, "platform", "linux/amd64", "the image of a multi-platform index to use")
	cmd.PersistentFlags().BoolVar(&o.insecure, "insecure", false, "reach the registry over plain HTTP (loopback and private addresses always are)")
	return cmd
}

func imageInspectCmd(c *cli, o *imageOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect REF",
		Short: "an image's config (entrypoint, cmd, env, labels) and layers",
		Long: `Read an image's config and layers from its registry. On Slipway's own
registry the login's token is the password (sent only to the token service
of the Slipway you logged in to); other registries use your docker login
(~/.docker/config.json).`,
		Args: exactArgs("REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := c.openImage(cmd.Context(), args[0], *o)
			if err != nil {
				return err
			}
			info, err := describeImage(img)
			if err != nil {
				return fmt.Errorf("read %s: %w", args[0], err)
			}
			if c.format("table") == "json" {
				return writeJSON(c.stdout, info)
			}
			return printImage(c.stdout, info)
		},
	}
}

func imageSaveCmd(c *cli, o *imageOptions) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "save REF -o FILE.tar",
		Short: "write an image as a tarball that `docker load` accepts",
		Example: `  slipway image save 127.0.0.1:5000/acme/demo:latest -o demo.tar
  docker load -i demo.tar`,
		Args: exactArgs("REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErr("image save: -o FILE.tar is required")
			}
			img, err := c.openImage(cmd.Context(), args[0], *o)
			if err != nil {
				return err
			}
			return c.saveImage(img, out)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the tarball to write")
	return cmd
}

// openImage resolves ref on its registry to the image of the platform.
func (c *cli) openImage(ctx context.Context, ref string, o imageOptions) (*pulled, error) {
	var opts []name.Option
	if o.insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, usageErr("%q: %v (want REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:…)", ref, err)
	}
	p, err := v1.ParsePlatform(o.platform)
	if err != nil {
		return nil, usageErr("--platform %s: %v", o.platform, err)
	}
	keys, err := c.keychain(ctx, r.Context().Registry)
	if err != nil {
		return nil, err
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keys), remote.WithPlatform(*p)}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, registryHint(err, r)
	}
	img, err := desc.Image() // the platform's image of an index
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	out := &pulled{ref: r, img: img, platform: p.String()}
	if desc.MediaType.IsIndex() {
		out.index = desc.Digest.String()
		out.platforms = indexPlatforms(desc)
	}
	return out, nil
}

// pulled is an image as the registry served it.
type pulled struct {
	ref       name.Reference
	img       v1.Image
	platform  string
	index     string   // the index's digest, when ref names one
	platforms []string // the index's platforms
}

func indexPlatforms(desc *remote.Descriptor) []string {
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS != "unknown" {
			out = append(out, d.Platform.String())
		}
	}
	return out
}

func registryHint(err error, r name.Reference) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%s: %w (on Slipway's registry, run `slipway login` with a token that may read the image; elsewhere `docker login %s`)",
			r, err, r.Context().RegistryStr())
	}
	return fmt.Errorf("%s: %w", r, err)
}

// imageInfo is what inspect shows; its JSON has the names of the API's
// image view.
type imageInfo struct {
	Image     string            `json:"image"`
	Digest    string            `json:"digest"`
	Index     string            `json:"index,omitempty"`
	Platforms []string          `json:"platforms,omitempty"`
	Platform  string            `json:"platform"`
	Created   time.Time         `json:"created"`
	Config    model.ImageConfig `json:"config"`
	Layers    []model.Layer     `json:"layers"`
	// TotalSize is the compressed layers and the config, in bytes.
	TotalSize int64 `json:"total_size"`
}

func describeImage(p *pulled) (imageInfo, error) {
	digest, err := p.img.Digest()
	if err != nil {
		return imageInfo{}, err
	}
	cf, err := p.img.ConfigFile()
	if err != nil {
		return imageInfo{}, err
	}
	d, err := registry.Describe(p.img, nil)
	if err != nil {
		return imageInfo{}, err
	}
	info := imageInfo{
		Image: p.ref.Name(), Digest: digest.String(), Index: p.index, Platforms: p.platforms,
		Platform: platformOf(cf, p.platform), Created: cf.Created.Time,
		Config: d.Config, Layers: d.Layers, TotalSize: d.TotalSize(),
	}
	return info, nil
}

func platformOf(cf *v1.ConfigFile, asked string) string {
	if cf.OS == "" {
		return asked
	}
	p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	return p.String()
}

func printImage(w io.Writer, info imageInfo) error {
	index := ""
	if info.Index != "" {
		index = fmt.Sprintf("%s (%s)", info.Index, strings.Join(info.Platforms, ", "))
	}
	labels := make([]string, 0, len(info.Config.Labels))
	for k, v := range info.Config.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	var layers [][]string
	n := 0
	for _, l := range info.Layers {
		if l.EmptyLayer {
			continue
		}
		n++
		layers = append(layers, []string{l.Digest, bytesOf(l.Size), oneLine(l.CreatedBy)})
	}
	if err := fields(w,
		"image", info.Image,
		"digest", info.Digest,
		"index", index,
		"platform", info.Platform,
		"created", stamp(info.Created),
		"entrypoint", quoteList(info.Config.Entrypoint),
		"cmd", quoteList(info.Config.Cmd),
		"working dir", info.Config.WorkingDir,
		"user", info.Config.User,
		"ports", strings.Join(info.Config.ExposedPorts, ", "),
		"env", strings.Join(info.Config.Env, "\n\t"),
		"labels", strings.Join(labels, "\n\t"),
		"size", fmt.Sprintf("%s in %d layers", bytesOf(info.TotalSize), n),
	); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return table(w, "LAYER\tSIZE\tCREATED BY", layers)
}

// quoteList writes a command as JSON-ish ["cat", "/built.txt"].
func quoteList(args []string) string {
	if args == nil {
		return ""
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		return s[:59] + "…"
	}
	return s
}

// bytesOf writes a size in B, kB, MB or GB (powers of 1000, as docker
// does).
func bytesOf(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1000)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%.1f MB", float64(n)/1000/1000)
	}
	return fmt.Sprintf("%.2f GB", float64(n)/1000/1000/1000)
}

// saveImage writes the tarball next to path and renames it there when
// it is whole, so a failed save leaves no half a tarball behind.
func (c *cli) saveImage(p *pulled, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	prog := newProgress(c.stdout, c.terminal)
	defer prog.Stop()
	start := time.Now()
	updates := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates {
			if u.Total > 0 {
				prog.Set(fmt.Sprintf("saving %s: %s of %s", p.ref, bytesOf(u.Complete), bytesOf(u.Total)), start)
			}
		}
	}()
	err = tarball.Write(p.ref, p.img, tmp, tarball.WithProgress(updates))
	close(updates)
	<-done
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", p.ref, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	prog.Stop()
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "saved %s (%s) to %s, %s: load it with `docker load -i %s`\n", p.ref, p.platform, path, bytesOf(info.Size()), path)
	return err
}

// keychain logs in to Slipway's own registry with the login's token, and
// to any other registry as docker would. The token goes only where the
// registry's challenge sends it: to the token service of the Slipway
// server the CLI talks to, never to another host.
func (c *cli) keychain(ctx context.Context, reg name.Registry) (authn.Keychain, error) {
	client, err := c.client()
	if err != nil {
		return authn.DefaultKeychain, nil // no login: as docker would
	}
	realm, err := challengeRealm(ctx, reg)
	if err != nil || !sameHost(realm, client.BaseURL) {
		return authn.DefaultKeychain, nil
	}
	who, err := client.Whoami(ctx)
	if err != nil {
		return nil, explain(err, client.BaseURL)
	}
	return slipwayKeys{registry: reg.RegistryStr(), user: who.Account, client: client}, nil
}

// slipwayKeys answers the embedded registry's login: the token's account
// as the user (the README's "docker login against the embedded
// registry"), the token as the password.
type slipwayKeys struct {
	registry, user string
	client         api.Client
}

func (k slipwayKeys) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() != k.registry {
		return authn.DefaultKeychain.Resolve(r)
	}
	return &authn.Basic{Username: k.user, Password: k.client.Token}, nil
}

// challengeRealm is where the registry's Bearer challenge sends clients for
// a token; "" when it asks for none.
func challengeRealm(ctx context.Context, reg name.Registry) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ch, err := transport.Ping(ctx, reg, http.DefaultTransport)
	if err != nil {
		return "", err
	}
	if !strings.EqualFold(ch.Scheme, "bearer") {
		return "", nil
	}
	return ch.Parameters["realm"], nil
}

// sameHost says realm is on the server's host and port; loopback names
// (localhost, 127.0.0.1, ::1) are one host, since Slipway writes a
// loopback public URL as localhost.
func sameHost(realm, server string) bool {
	a, errA := url.Parse(realm)
	b, errB := url.Parse(server)
	if errA != nil || errB != nil || a.Host == "" {
		return false
	}
	if a.Port() != b.Port() {
		return false
	}
	return a.Hostname() == b.Hostname() || (loopbackName(a.Hostname()) && loopbackName(b.Hostname()))
}

func loopbackName(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
