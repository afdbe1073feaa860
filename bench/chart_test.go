package bench

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"
)

func decode(t *testing.T, raw []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the chart is not a PNG: %v", err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, 960, 720) {
		t.Fatalf("chart size %v, want 960x720", got)
	}
	return img
}

func rgba(c color.Color) color.RGBA {
	r, g, b, a := c.RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}

func TestChartDrawsBarsWhereTheValuesSay(t *testing.T) {
	raw, err := Chart([]Series{
		{Chart: "overhead", Name: "clone", Unit: "ms", Y: []float64{100}},
		{Chart: "overhead", Name: "queue", Unit: "ms", Y: []float64{50}},
	})
	if err != nil {
		t.Fatal(err)
	}
	img := decode(t, raw)
	// Two bars on an axis ending at 100 ms: the first spans the whole
	// plot width, the second half of it.
	first := barRect(overheadPlot, 0, 2, 100, 100)
	second := barRect(overheadPlot, 1, 2, 50, 100)
	if first.Dx() != overheadPlot.Dx() || second.Dx() != overheadPlot.Dx()/2 {
		t.Fatalf("bars %v and %v in plot %v", first, second, overheadPlot)
	}
	mid := func(r image.Rectangle) (int, int) { return (r.Min.X + r.Max.X) / 2, (r.Min.Y + r.Max.Y) / 2 }
	if x, y := mid(first); rgba(img.At(x, y)) != palette[0] {
		t.Errorf("first bar's middle (%d,%d) is %v, want %v", x, y, rgba(img.At(x, y)), palette[0])
	}
	if x, y := mid(second); rgba(img.At(x, y)) != palette[1] {
		t.Errorf("second bar's middle (%d,%d) is %v, want %v", x, y, rgba(img.At(x, y)), palette[1])
	}
	// Past the second bar's end, on its row, there is no bar colour.
	x, y := second.Max.X+overheadPlot.Dx()/4, (second.Min.Y+second.Max.Y)/2
	if c := rgba(img.At(x, y)); c == palette[1] {
		t.Errorf("pixel (%d,%d) past the second bar has the bar's colour", x, y)
	}
}

func TestChartDrawsOneLinePerHandler(t *testing.T) {
	raw, err := Chart([]Series{
		{Chart: "ingest", Name: "slipway", Unit: "requests/s", X: []float64{1, 16, 64}, Y: []float64{1000, 3000, 4000}},
		{Chart: "ingest", Name: "signature only", Unit: "requests/s", X: []float64{1, 16, 64}, Y: []float64{5000, 18000, 20000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	img := decode(t, raw)
	// The axes end at log2(64) = 6 and 20,000.
	for _, c := range []struct {
		x, y float64
		want color.RGBA
	}{{1, 1000, palette[0]}, {64, 4000, palette[0]}, {16, 18000, palette[1]}, {64, 20000, palette[1]}} {
		p := point(ingestPlot, c.x, 6, c.y, 20000)
		if got := rgba(img.At(p.X, p.Y)); got != c.want {
			t.Errorf("point (%v, %v) at %v is %v, want %v", c.x, c.y, p, got, c.want)
		}
	}
	if p := point(ingestPlot, 64, 6, 20000, 20000); p != image.Pt(ingestPlot.Max.X, ingestPlot.Min.Y) {
		t.Errorf("the largest point lands at %v, want the plot's top right %v", p, image.Pt(ingestPlot.Max.X, ingestPlot.Min.Y))
	}
}

func TestChartWithoutSeriesSaysNoData(t *testing.T) {
	raw, err := Chart(nil)
	if err != nil {
		t.Fatal(err)
	}
	img := decode(t, raw)
	// "NO DATA" is written at the left of each empty plot, halfway down.
	for _, area := range []image.Rectangle{overheadPlot, ingestPlot} {
		inked := 0
		for y := area.Min.Y + area.Dy()/2; y < area.Min.Y+area.Dy()/2+glyphH; y++ {
			for x := area.Min.X; x < area.Min.X+textWidth("no data"); x++ {
				if rgba(img.At(x, y)) == ink {
					inked++
				}
			}
		}
		if inked == 0 {
			t.Errorf("plot %v has no text where NO DATA goes", area)
		}
	}
}

func TestNumbersOnAxes(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 12: "12", 2.5: "2.5", 4000: "4000", 20000: "20K", 12345: "12K"} {
		if got := number(v); got != want {
			t.Errorf("number(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]float64{0: 1, 3: 5, 18600: 20000, 120: 200, 1000: 1000} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}

// Labelled bars are named "<series> <label>" and share their series'
// colour, so warm and cold stages read apart.
func TestBarsNamedByLabels(t *testing.T) {
	got := bars([]Series{
		{Chart: "overhead", Name: "warm", Y: []float64{90, 12}, Labels: []string{"clone", "tag"}},
		{Chart: "overhead", Name: "cold", Y: []float64{110}, Labels: []string{"clone"}},
	})
	want := []string{"warm clone", "warm tag", "cold clone"}
	if len(got) != len(want) {
		t.Fatalf("%d bars, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].label != w {
			t.Errorf("bar %d is %q, want %q", i, got[i].label, w)
		}
	}
	if got[0].color != got[1].color || got[0].color == got[2].color {
		t.Errorf("colours %v %v %v: want warm's two alike and cold's different", got[0].color, got[1].color, got[2].color)
	}
}
