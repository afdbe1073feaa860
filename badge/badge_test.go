package badge_test

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/slipway-build/slipway/badge"
)

func TestSince(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "just now"},
		{0, "just now"},
		{59 * time.Second, "just now"},
		{time.Minute, "1m ago"},
		{59*time.Minute + 59*time.Second, "59m ago"},
		{time.Hour, "1h ago"},
		{3*time.Hour + 40*time.Minute, "3h ago"},
		{23*time.Hour + 59*time.Minute, "23h ago"},
		{day, "1d ago"},
		{29 * day, "29d ago"},
		{30 * day, "1mo ago"},
		{364 * day, "12mo ago"},
		{365 * day, "1y ago"},
		{3*365*day + 100*day, "3y ago"},
	}
	for _, tt := range tests {
		if got := badge.Since(tt.d); got != tt.want {
			t.Errorf("Since(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestTextWidth(t *testing.T) {
	tests := []struct {
		text string
		want int
	}{
		{"", 0},
		{"build", 27},               // 6.9+7.0+3.0+3.0+6.9 = 26.8
		{"not found", 54},           // 53.4
		{"succeeded · 3h ago", 108}, // 107.6
		{"iiii", 12},                // narrow letters make a narrow badge
		{"mmmm", 43},                // 42.8
		{"√", 9},                    // not in the table: 9
		{"<script>", 49},            // 48.3, measured as written, before escaping
	}
	for _, tt := range tests {
		if got := badge.TextWidth(tt.text); got != tt.want {
			t.Errorf("TextWidth(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

func TestSVG(t *testing.T) {
	tests := []struct {
		name, label, message, colour string
		want                         []string
	}{
		{"succeeded", "build", "succeeded · 3h ago", badge.Green, []string{
			`width="159" height="20"`, // 27+12 and 108+12
			`aria-label="build: succeeded · 3h ago"`,
			`<title>build: succeeded · 3h ago</title>`,
			`<rect width="39" height="20" fill="#555"/>`,
			`<rect x="39" width="120" height="20" fill="#4c1"/>`,
			`<text x="19.5" y="14">build</text>`,
			`<text x="99.0" y="14">succeeded · 3h ago</text>`,
		}},
		{"failed is red", "build", "failed · 2d ago", badge.Red, []string{`fill="#e05d44"`, `>failed · 2d ago</text>`}},
		{"running is yellow", "build", "running · just now", badge.Yellow, []string{`fill="#dfb317"`}},
		{"not found is grey", "build", "not found", badge.Grey, []string{
			`fill="#9f9f9f"`, `width="105"`, // 39 + 54+12
		}},
		{"text is escaped", `a<b>&"c'`, `</text><script>alert(1)</script>`, badge.Grey, []string{
			`>a&lt;b&gt;&amp;&#34;c&#39;</text>`,
			`>&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;</text>`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := string(badge.SVG(tt.label, tt.message, tt.colour))
			for _, want := range tt.want {
				if !strings.Contains(svg, want) {
					t.Errorf("SVG lacks %s:\n%s", want, svg)
				}
			}
			for _, never := range []string{"<script", "http://", "https://", "@import", "url(http"} {
				if strings.Contains(strings.ReplaceAll(svg, `xmlns="http://www.w3.org/2000/svg"`, ""), never) {
					t.Errorf("SVG contains %q:\n%s", never, svg)
				}
			}
			wellFormed(t, svg)
		})
	}
}

// wellFormed parses svg as XML and checks it is one <svg> element with
// exactly four <text> elements.
func wellFormed(t *testing.T, svg string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	texts, root := 0, ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "text" {
				texts++
			}
		}
	}
	if root != "svg" || texts != 4 {
		t.Errorf("root element %q with %d <text>, want svg with 4", root, texts)
	}
}
