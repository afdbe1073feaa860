// Package badge draws shields-style status badges ("build | succeeded ·
// 3h ago") as SVG. The picture is a fixed template filled with escaped
// text: no script, no external font or stylesheet, so it shows the same
// in a README on any Git host and offline.
package badge

import (
	"bytes"
	"fmt"
	"text/template"
	"time"
)

// Colours of the message half, shields.io's.
const (
	Green  = "#4c1"
	Red    = "#e05d44"
	Yellow = "#dfb317"
	Grey   = "#9f9f9f"
	// labelColour is the label half's.
	labelColour = "#555"
)

// padding is the space left and right of each half's text, in pixels.
const padding = 6

// tmpl is shields' "flat" style. The text is drawn twice, the first a pixel
// lower in translucent black, as its shadow. Widths and positions are
// pixels; font-family names only fonts the viewer has.
var tmpl = template.Must(template.New("badge").Funcs(template.FuncMap{"esc": template.HTMLEscapeString}).Parse(
	`<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="20" role="img" aria-label="{{esc .Label}}: {{esc .Message}}">` +
		`<title>{{esc .Label}}: {{esc .Message}}</title>` +
		`<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>` +
		`<clipPath id="r"><rect width="{{.Width}}" height="20" rx="3" fill="#fff"/></clipPath>` +
		`<g clip-path="url(#r)"><rect width="{{.LabelWidth}}" height="20" fill="` + labelColour + `"/>` +
		`<rect x="{{.LabelWidth}}" width="{{.MessageWidth}}" height="20" fill="{{.Colour}}"/>` +
		`<rect width="{{.Width}}" height="20" fill="url(#s)"/></g>` +
		`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">` +
		`<text x="{{.LabelX}}" y="15" fill="#010101" fill-opacity=".3" aria-hidden="true">{{esc .Label}}</text>` +
		`<text x="{{.LabelX}}" y="14">{{esc .Label}}</text>` +
		`<text x="{{.MessageX}}" y="15" fill="#010101" fill-opacity=".3" aria-hidden="true">{{esc .Message}}</text>` +
		`<text x="{{.MessageX}}" y="14">{{esc .Message}}</text></g></svg>` + "\n"))

type fields struct {
	Label, Message, Colour          string
	Width, LabelWidth, MessageWidth int
	LabelX, MessageX                string
}

// SVG is a badge with label on the left on grey and message on the right
// on colour (one of the colour constants).
func SVG(label, message, colour string) []byte {
	lw, mw := TextWidth(label)+2*padding, TextWidth(message)+2*padding
	f := fields{
		Label: label, Message: message, Colour: colour,
		Width: lw + mw, LabelWidth: lw, MessageWidth: mw,
		LabelX: half(0, lw), MessageX: half(lw, mw),
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, f); err != nil {
		panic(err) // the template and its fields are fixed: a bug
	}
	return b.Bytes()
}

// half is the middle of the span of width w starting at x, to a tenth.
func half(x, w int) string { return fmt.Sprintf("%.1f", float64(x)+float64(w)/2) }

// TextWidth is how many pixels text takes in 11px Verdana, rounded up:
// the badge is as wide as its words, as shields' are. Characters outside
// the table count as wide as an "m" minus a little, so that an unexpected
// character makes the badge a little wide rather than clip its text.
func TextWidth(text string) int {
	tenths := 0
	for _, r := range text {
		w, ok := widths[r]
		if !ok {
			w = 90
		}
		tenths += w
	}
	return (tenths + 9) / 10
}

// widths are Verdana's advance widths at 11px, in tenths of a pixel.
var widths = map[rune]int{
	' ': 39, '!': 43, '"': 50, '#': 90, '$': 70, '%': 118, '&': 80, '\'': 30, '(': 50, ')': 50,
	'*': 70, '+': 90, ',': 40, '-': 50, '.': 40, '/': 50, ':': 50, ';': 50, '<': 90, '=': 90,
	'>': 90, '?': 60, '@': 110, '[': 50, '\\': 50, ']': 50, '^': 90, '_': 70, '`': 70, '{': 70,
	'|': 50, '}': 70, '~': 90, '·': 40,
	'0': 70, '1': 70, '2': 70, '3': 70, '4': 70, '5': 70, '6': 70, '7': 70, '8': 70, '9': 70,
	'A': 75, 'B': 75, 'C': 77, 'D': 85, 'E': 70, 'F': 63, 'G': 85, 'H': 83, 'I': 46, 'J': 50,
	'K': 76, 'L': 61, 'M': 93, 'N': 82, 'O': 87, 'P': 66, 'Q': 87, 'R': 77, 'S': 75, 'T': 68,
	'U': 81, 'V': 75, 'W': 109, 'X': 75, 'Y': 68, 'Z': 75,
	'a': 66, 'b': 69, 'c': 57, 'd': 69, 'e': 66, 'f': 39, 'g': 69, 'h': 70, 'i': 30, 'j': 38,
	'k': 65, 'l': 30, 'm': 107, 'n': 70, 'o': 67, 'p': 69, 'q': 69, 'r': 47, 's': 57, 't': 43,
	'u': 70, 'v': 65, 'w': 90, 'x': 65, 'y': 65, 'z': 58,
}

// Since says how long ago d was in the fewest characters a badge needs:
// "just now", "5m ago", "3h ago", "2d ago", "4mo ago", "1y ago". A
// negative d (a clock a little ahead) is "just now".
func Since(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", d/time.Minute)
	case d < day:
		return fmt.Sprintf("%dh ago", d/time.Hour)
	case d < 30*day:
		return fmt.Sprintf("%dd ago", d/day)
	case d < 365*day:
		return fmt.Sprintf("%dmo ago", d/(30*day))
	}
	return fmt.Sprintf("%dy ago", d/(365*day))
}
