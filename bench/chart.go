package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"strconv"
)

// The chart's size and its two panels' plot areas: "overhead" on top,
// "ingest" below. Labels go left of and under each plot area.
const (
	chartW = 960
	chartH = 720
)

var (
	overheadPlot = image.Rect(260, 50, 900, 320)
	ingestPlot   = image.Rect(120, 410, 700, 660)
)

var (
	background = color.RGBA{255, 255, 255, 255}
	ink        = color.RGBA{30, 30, 30, 255}
	grid       = color.RGBA{220, 220, 220, 255}
	// palette colours bars and lines in the order series come.
	palette = []color.RGBA{
		{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255},
		{214, 39, 40, 255}, {148, 103, 189, 255}, {140, 86, 75, 255},
	}
)

// Chart draws the PNG BENCHMARKS.md shows. Panel "overhead per stage" has
// a horizontal bar, in ms, for each Y value of each series whose Chart is
// "overhead" (the series' Name labels its first bar); panel "ingest" has a
// line of requests/s by concurrency (X, on a log2 scale) for each series
// whose Chart is "ingest". A panel without series says so.
func Chart(series []Series) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	draw.Draw(img, img.Bounds(), &image.Uniform{background}, image.Point{}, draw.Src)
	var overhead, ingest []Series
	for _, s := range series {
		switch s.Chart {
		case "overhead":
			overhead = append(overhead, s)
		case "ingest":
			ingest = append(ingest, s)
		}
	}
	drawText(img, overheadPlot.Min.X-240, overheadPlot.Min.Y-36, "overhead per stage (ms)", ink)
	drawBars(img, overheadPlot, overhead)
	drawText(img, ingestPlot.Min.X-100, ingestPlot.Min.Y-36, "ingest (requests/s by concurrency)", ink)
	drawLines(img, ingestPlot, ingest)
	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		return nil, fmt.Errorf("encode chart: %w", err)
	}
	return out.Bytes(), nil
}

type bar struct {
	label string
	value float64
	color color.RGBA
}

func bars(series []Series) []bar {
	var out []bar
	for i, s := range series {
		for j, y := range s.Y {
			switch {
			case j < len(s.Labels):
				// One colour per series, each bar named.
				out = append(out, bar{s.Name + " " + s.Labels[j], y, palette[i%len(palette)]})
			case j == 0:
				out = append(out, bar{s.Name, y, palette[(i+j)%len(palette)]})
			default:
				out = append(out, bar{"", y, palette[(i+j)%len(palette)]})
			}
		}
	}
	return out
}

// barRect is where the i-th of n bars of value v goes, max being the axis's
// end.
func barRect(area image.Rectangle, i, n int, v, max float64) image.Rectangle {
	step := area.Dy() / n
	top := area.Min.Y + i*step + step/6
	length := 0
	if max > 0 {
		length = int(math.Round(v / max * float64(area.Dx())))
	}
	return image.Rect(area.Min.X, top, area.Min.X+length, top+step*2/3)
}

func drawBars(img *image.RGBA, area image.Rectangle, series []Series) {
	bs := bars(series)
	if len(bs) == 0 {
		drawText(img, area.Min.X, area.Min.Y+area.Dy()/2, "no data", ink)
		return
	}
	max := 0.0
	for _, b := range bs {
		max = math.Max(max, b.value)
	}
	max = niceCeil(max)
	for _, t := range ticks(max) {
		x := area.Min.X + int(t/max*float64(area.Dx()))
		fill(img, image.Rect(x, area.Min.Y, x+1, area.Max.Y), grid)
		label := number(t)
		drawText(img, x-textWidth(label)/2, area.Max.Y+padding, label, ink)
	}
	for i, b := range bs {
		r := barRect(area, i, len(bs), b.value, max)
		fill(img, r, b.color)
		label := truncate(b.label, (area.Min.X-8)/charW)
		drawText(img, area.Min.X-8-textWidth(label), r.Min.Y+(r.Dy()-glyphH)/2, label, ink)
		value := number(b.value)
		drawText(img, r.Max.X+padding, r.Min.Y+(r.Dy()-glyphH)/2, value, ink)
	}
	fill(img, image.Rect(area.Min.X, area.Min.Y, area.Min.X+1, area.Max.Y), ink)
}

// point is where (x, y) lands in a line panel whose axes end at maxX
// (log2) and maxY.
func point(area image.Rectangle, x, maxX, y, maxY float64) image.Point {
	px := area.Min.X
	if maxX > 0 {
		px += int(math.Round(math.Log2(math.Max(x, 1)) / maxX * float64(area.Dx())))
	}
	py := area.Max.Y
	if maxY > 0 {
		py -= int(math.Round(y / maxY * float64(area.Dy())))
	}
	return image.Pt(px, py)
}

// lineAxes are the log2 of the largest X and the rounded-up largest Y.
func lineAxes(series []Series) (maxX, maxY float64) {
	for _, s := range series {
		for _, x := range s.X {
			maxX = math.Max(maxX, math.Log2(math.Max(x, 1)))
		}
		for _, y := range s.Y {
			maxY = math.Max(maxY, y)
		}
	}
	return maxX, niceCeil(maxY)
}

func drawLines(img *image.RGBA, area image.Rectangle, series []Series) {
	if len(series) == 0 {
		drawText(img, area.Min.X, area.Min.Y+area.Dy()/2, "no data", ink)
		return
	}
	maxX, maxY := lineAxes(series)
	for _, t := range ticks(maxY) {
		p := point(area, 1, maxX, t, maxY)
		fill(img, image.Rect(area.Min.X, p.Y, area.Max.X, p.Y+1), grid)
		label := number(t)
		drawText(img, area.Min.X-8-textWidth(label), p.Y-glyphH/2, label, ink)
	}
	seen := map[float64]bool{}
	for _, s := range series {
		for _, x := range s.X {
			if seen[x] {
				continue
			}
			seen[x] = true
			p := point(area, x, maxX, 0, maxY)
			label := number(x)
			drawText(img, p.X-textWidth(label)/2, area.Max.Y+padding, label, ink)
		}
	}
	fill(img, image.Rect(area.Min.X, area.Max.Y, area.Max.X, area.Max.Y+1), ink)
	fill(img, image.Rect(area.Min.X, area.Min.Y, area.Min.X+1, area.Max.Y), ink)
	for i, s := range series {
		c := palette[i%len(palette)]
		var prev image.Point
		for j := range min(len(s.X), len(s.Y)) {
			p := point(area, s.X[j], maxX, s.Y[j], maxY)
			if j > 0 {
				line(img, prev, p, c)
			}
			fill(img, image.Rect(p.X-4, p.Y-4, p.X+5, p.Y+5), c)
			prev = p
		}
		// The legend, right of the plot.
		y := area.Min.Y + i*(glyphH+10)
		fill(img, image.Rect(area.Max.X+20, y, area.Max.X+36, y+glyphH), c)
		drawText(img, area.Max.X+44, y, truncate(s.Name, (chartW-area.Max.X-50)/charW), ink)
	}
}

// line draws a 3-pixel-wide segment from a to b.
func line(img *image.RGBA, a, b image.Point, c color.RGBA) {
	steps := max(abs(b.X-a.X), abs(b.Y-a.Y), 1)
	for k := 0; k <= steps; k++ {
		x := a.X + (b.X-a.X)*k/steps
		y := a.Y + (b.Y-a.Y)*k/steps
		fill(img, image.Rect(x-1, y-1, x+2, y+2), c)
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r.Intersect(img.Bounds()), &image.Uniform{c}, image.Point{}, draw.Src)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// ticks are five evenly spaced values from 0 to max.
func ticks(max float64) []float64 {
	out := make([]float64, 0, 6)
	for i := 0; i <= 5; i++ {
		out = append(out, max*float64(i)/5)
	}
	return out
}

// number prints v briefly: 12000 as 12K, 0.5 as 0.5.
func number(v float64) string {
	switch {
	case v >= 10000:
		return strconv.FormatFloat(math.Round(v/1000), 'f', 0, 64) + "K"
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if n < 0 || len(r) <= n {
		return s
	}
	return string(r[:n])
}
