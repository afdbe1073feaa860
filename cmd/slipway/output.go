package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/slipway-build/slipway/api"
)

// format is -o, else the command's own default: "table" for the new
// commands, "json" for the old spellings whose output scripts parse.
func (c *cli) format(def string) string {
	if c.output != "" {
		return c.output
	}
	return def
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows under a header, in columns two spaces apart.
func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fields writes "name: value" lines with the values lined up, leaving out
// empty values.
func fields(w io.Writer, kv ...string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[i], kv[i+1])
		}
	}
	return tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// explain adds to an API error what to do about it.
func explain(err error, server string) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w: the token is not valid on %s; run `slipway login --server %s` with a live token", err, server, server)
		case http.StatusForbidden:
			return fmt.Errorf("%w: the token's role does not allow this; ask an admin of the organization for a token with more (`slipway token create --role write`)", err)
		}
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%w: is Slipway running at %s? Pass --server, or run `slipway login --server URL`", err, server)
	}
	return err
}

// notFound adds how to find the right id to a 404.
func notFound(err error, what, list string) error {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == http.StatusNotFound {
		return fmt.Errorf("%w: no %s with that id you may see (list them with `%s`)", err, what, list)
	}
	return err
}

// progress draws one status line ("building… 12s") on a terminal while
// nothing else is written; output written through it clears that line
// first. Off a terminal it only passes the output on.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	label string
	since time.Time
	// shown: the line is drawn now; midLine: the output's last byte was
	// not a newline, so there is no line of our own to draw on.
	shown, midLine bool
	last           time.Time // last output
	done           chan struct{}
	stopOnce       sync.Once
}

// quietFor is how long the output must be silent before the line shows.
const quietFor = time.Second

func newProgress(w io.Writer, on bool) *progress {
	p := &progress{w: w, on: on, done: make(chan struct{})}
	if on {
		go p.tick()
	}
	return p
}

// Set says what is being waited for, and since when.
func (p *progress) Set(label string, since time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label, p.since = label, since
}

func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	if len(b) > 0 {
		p.midLine = b[len(b)-1] != '\n'
	}
	p.last = time.Now()
	return p.w.Write(b)
}

// EndLine ends output that stopped mid-line, so what follows starts on a
// line of its own.
func (p *progress) EndLine() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.midLine {
		p.clear()
		fmt.Fprintln(p.w)
		p.midLine = false
	}
}

// Stop clears the line for good.
func (p *progress) Stop() {
	p.stopOnce.Do(func() { close(p.done) })
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.on = false
}

func (p *progress) tick() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case now := <-t.C:
			p.mu.Lock()
			p.draw(now)
			p.mu.Unlock()
		}
	}
}

// draw shows the line as of now, unless output is flowing.
func (p *progress) draw(now time.Time) {
	if !p.on || p.label == "" || p.midLine || now.Sub(p.last) < quietFor {
		return
	}
	secs := max(now.Sub(p.since), 0).Truncate(time.Second)
	fmt.Fprintf(p.w, "\r\x1b[K%s… %s", p.label, secs)
	p.shown = true
}

func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}
