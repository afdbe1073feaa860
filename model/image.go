package model

// Image is one platform's image as its registry holds it: what the image
// page shows and what a build's size is counted from.
type Image struct {
	// Manifest is the digest of the platform's manifest: the pushed
	// digest itself unless that is an index of several platforms.
	Manifest string `json:"manifest"`
	// Platform is os/architecture[/variant], e.g. linux/amd64.
	Platform string `json:"platform"`
	// Platforms are the platforms of the index the image was picked
	// from, in its order; empty for a single-platform image.
	Platforms  []string    `json:"platforms,omitempty"`
	Config     ImageConfig `json:"config"`
	ConfigSize int64       `json:"config_size"`
	// Layers are the image's history, oldest first: each entry that made
	// a layer with that layer's digest and compressed size, each that
	// made none (ENV, CMD, ...) with EmptyLayer set and size 0.
	Layers []Layer `json:"layers"`
}

// ImageConfig is what an image runs with.
type ImageConfig struct {
	Entrypoint   []string          `json:"entrypoint"`
	Cmd          []string          `json:"cmd"`
	Env          []string          `json:"env"`
	Labels       map[string]string `json:"labels"`
	WorkingDir   string            `json:"working_dir"`
	User         string            `json:"user"`
	ExposedPorts []string          `json:"exposed_ports"`
}

// Layer is one entry of an image's history and the layer it made.
type Layer struct {
	// Digest and Size are the layer blob's (compressed, as pushed); ""
	// and 0 for an entry that made no layer.
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// CreatedBy is the instruction that made it ("RUN /bin/sh -c ..."),
	// "" when the image records no history for it.
	CreatedBy  string `json:"created_by"`
	EmptyLayer bool   `json:"empty_layer"`
}

// TotalSize is what pulling the image moves: its layers and its config.
func (i Image) TotalSize() int64 {
	n := i.ConfigSize
	for _, l := range i.Layers {
		n += l.Size
	}
	return n
}
