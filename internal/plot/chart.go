package plot

import (
	"image"
	"image/color"
	"io"
	"math"
	"slices"
)

// Colours shared by the charts and examples/jaeger.
var (
	Background = color.RGBA{255, 255, 255, 255}
	Ink        = color.RGBA{33, 37, 41, 255}
	Muted      = color.RGBA{108, 117, 125, 255}
	Grid       = color.RGBA{222, 226, 230, 255}
	// Palette colours series in order (Tableau 10, readable when printed
	// in grey too): a series whose Color is zero takes Palette[i%len].
	Palette = []color.RGBA{
		{76, 120, 168, 255}, {245, 133, 24, 255}, {84, 162, 75, 255}, {228, 87, 86, 255},
		{183, 121, 177, 255}, {114, 183, 178, 255}, {238, 202, 59, 255}, {157, 117, 93, 255},
	}
)

// Default picture size.
const (
	DefaultWidth  = 900
	DefaultHeight = 480
)

// Series is one line of a LineChart: the points (X[i], Y[i]), joined in
// order. Points with a non-finite coordinate, or one <= 0 on a log axis,
// are skipped; extra values of the longer slice are ignored.
type Series struct {
	Name   string
	X, Y   []float64
	Color  color.RGBA // zero: from Palette
	Dashed bool
}

// LineChart draws series on shared axes, with a legend on the right.
type LineChart struct {
	Title, XLabel, YLabel string
	Series                []Series
	LogX, LogY            bool
	// YFromZero makes the Y axis start at zero (linear axes only).
	YFromZero bool
	// Markers draws a marker at each point, its shape changing with the
	// series (filled square, hollow square, plus, cross, dot), so that
	// series lying on top of each other stay apart.
	Markers bool
	// XMax, when positive, ends the X axis there (rounded up to a tick);
	// what lies beyond is clipped.
	XMax float64
	// Width and Height of the picture; zero means DefaultWidth/Height.
	Width, Height int
	// XFormat and YFormat write tick labels; nil means FormatNumber.
	XFormat, YFormat func(float64) string
}

// BarChart draws one bar per series in each category, side by side, with
// its value written above it and a legend on the right.
type BarChart struct {
	Title, YLabel string
	Categories    []string
	Series        []BarSeries
	Width, Height int
	// Format writes tick labels and the values above the bars; nil means
	// FormatNumber.
	Format func(float64) string
}

// BarSeries is one bar per category: Values[i] is the bar of
// Categories[i]; a missing or non-finite value draws no bar.
type BarSeries struct {
	Name   string
	Values []float64
	Color  color.RGBA // zero: from Palette
}

// CDF returns the empirical cumulative distribution of samples as a
// series: X the sorted samples, Y the fraction of samples <= X. Non-finite
// samples are dropped. samples is not modified.
func CDF(name string, samples []float64) Series {
	xs := make([]float64, 0, len(samples))
	for _, v := range samples {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs = append(xs, v)
		}
	}
	slices.Sort(xs)
	ys := make([]float64, len(xs))
	for i := range xs {
		ys[i] = float64(i+1) / float64(len(xs))
	}
	return Series{Name: name, X: xs, Y: ys}
}

// frame is the part of a chart outside its plot area: title, axis titles,
// legend, and the plot area's rectangle.
type frame struct {
	c              *Canvas
	plot           image.Rectangle
	legendX        int
	title, xl, yl  string
	legend         []legendItem
	yTickLabelSize int
}

type legendItem struct {
	name   string
	col    color.RGBA
	dashed bool
	box    bool // a filled box (bars) instead of a line
	marker int  // 1 + the marker's shape; 0 for none
}

func seriesColor(c color.RGBA, i int) color.RGBA {
	if c == (color.RGBA{}) {
		return Palette[i%len(Palette)]
	}
	return c
}

// newFrame lays out a width x height picture whose Y tick labels are at
// most yLabelWidth pixels wide.
func newFrame(width, height int, title, xl, yl string, legend []legendItem, yLabelWidth int) *frame {
	if width <= 0 {
		width = DefaultWidth
	}
	if height <= 0 {
		height = DefaultHeight
	}
	legendW := 0
	for _, it := range legend {
		legendW = max(legendW, 40+TextWidth(it.name))
	}
	left := 16 + yLabelWidth + 10
	if yl != "" {
		left += 20
	}
	top := 44
	bottom := 40
	if xl != "" {
		bottom += 20
	}
	right := width - 20 - legendW
	if legendW > 0 {
		right -= 10
	}
	// Keep a plot area even in a tiny picture.
	right = max(right, left+10)
	f := &frame{
		c:       NewCanvas(width, height, Background),
		plot:    image.Rect(left, top, right, max(height-bottom, top+10)),
		legendX: right + 20,
		title:   title, xl: xl, yl: yl, legend: legend,
	}
	return f
}

func (f *frame) drawDecorations() {
	c, p := f.c, f.plot
	c.Text(16, 26, f.title, Ink, true)
	if f.xl != "" {
		c.Text((p.Min.X+p.Max.X-TextWidth(f.xl))/2, c.Bounds().Dy()-14, f.xl, Ink, false)
	}
	if f.yl != "" {
		c.TextUp(16+Ascent, (p.Min.Y+p.Max.Y+TextWidth(f.yl))/2, f.yl, Ink)
	}
	// Axis lines.
	c.FillRect(image.Rect(p.Min.X, p.Max.Y, p.Max.X, p.Max.Y+1), Ink)
	c.FillRect(image.Rect(p.Min.X-1, p.Min.Y, p.Min.X, p.Max.Y+1), Ink)
	y := p.Min.Y + 6
	for _, it := range f.legend {
		if it.box {
			c.FillRect(image.Rect(f.legendX, y-3, f.legendX+24, y+9), it.col)
		} else {
			c.Line(float64(f.legendX), float64(y+3), float64(f.legendX+24), float64(y+3), it.col, it.dashed, true)
			if it.marker > 0 {
				c.marker(f.legendX+12, y+3, it.marker-1, it.col)
			}
		}
		c.Text(f.legendX+32, y+8, it.name, Ink, false)
		y += 20
	}
}

// yTicks draws the horizontal grid and labels of a.
func (f *frame) yTicks(a axis, format func(float64) string) {
	for _, v := range a.ticks(6) {
		y := math.Round(a.pos(v))
		f.c.FillRect(image.Rect(f.plot.Min.X, int(y), f.plot.Max.X, int(y)+1), Grid)
		s := format(v)
		f.c.Text(f.plot.Min.X-8-TextWidth(s), int(y)+4, s, Muted, false)
	}
}

func maxLabelWidth(vs []float64, format func(float64) string) int {
	w := 0
	for _, v := range vs {
		w = max(w, TextWidth(format(v)))
	}
	return w
}

// Draw renders the chart.
func (lc *LineChart) Draw() *Canvas {
	xf, yf := orDefault(lc.XFormat), orDefault(lc.YFormat)
	var xs, ys []float64
	legend := make([]legendItem, len(lc.Series))
	for i, s := range lc.Series {
		n := min(len(s.X), len(s.Y))
		xs, ys = append(xs, s.X[:n]...), append(ys, s.Y[:n]...)
		legend[i] = legendItem{name: s.Name, col: seriesColor(s.Color, i), dashed: s.Dashed}
		if lc.Markers {
			legend[i].marker = i + 1
		}
	}
	if lc.XMax > 0 {
		keep := xs[:0:0]
		for _, x := range xs {
			if x <= lc.XMax {
				keep = append(keep, x)
			}
		}
		xs = append(keep, lc.XMax)
	}
	ya := newAxis(ys, lc.LogY, lc.YFromZero && !lc.LogY, 0, 0)
	f := newFrame(lc.Width, lc.Height, lc.Title, lc.XLabel, lc.YLabel, legend, maxLabelWidth(ya.ticks(6), yf))
	p := f.plot
	ya.from, ya.to = float64(p.Max.Y), float64(p.Min.Y)
	xa := newAxis(xs, lc.LogX, false, float64(p.Min.X), float64(p.Max.X))
	f.yTicks(ya, yf)
	for _, v := range xa.ticks(8) {
		x := int(math.Round(xa.pos(v)))
		f.c.FillRect(image.Rect(x, p.Min.Y, x+1, p.Max.Y), Grid)
		f.c.FillRect(image.Rect(x, p.Max.Y, x+1, p.Max.Y+5), Ink)
		s := xf(v)
		f.c.Text(x-TextWidth(s)/2, p.Max.Y+20, s, Muted, false)
	}
	f.drawDecorations()
	// Series are drawn on the plot area only: a sub-image clips them.
	area := &Canvas{f.c.SubImage(p.Inset(-1)).(*image.RGBA)}
	ok := func(x, y float64) bool {
		return finite(x, y) && (!lc.LogX || x > 0) && (!lc.LogY || y > 0)
	}
	for i, s := range lc.Series {
		col := seriesColor(s.Color, i)
		px, py, have, phase := 0.0, 0.0, false, 0
		for j := range min(len(s.X), len(s.Y)) {
			if !ok(s.X[j], s.Y[j]) {
				have = false
				continue
			}
			x, y := xa.pos(s.X[j]), ya.pos(s.Y[j])
			if have {
				phase = area.dashLine(px, py, x, y, col, s.Dashed, true, phase)
			}
			if lc.Markers {
				area.marker(int(math.Round(x)), int(math.Round(y)), i, col)
			}
			px, py, have = x, y, true
		}
	}
	return f.c
}

// marker draws marker shape i%5 centred on (x, y).
func (c *Canvas) marker(x, y, i int, col color.RGBA) {
	switch i % 5 {
	case 0:
		c.FillRect(image.Rect(x-4, y-4, x+5, y+5), col)
	case 1:
		c.StrokeRect(image.Rect(x-4, y-4, x+5, y+5), col, 2)
	case 2:
		c.FillRect(image.Rect(x-5, y-1, x+6, y+2), col)
		c.FillRect(image.Rect(x-1, y-5, x+2, y+6), col)
	case 3:
		fx, fy := float64(x), float64(y)
		c.Line(fx-4, fy-4, fx+4, fy+4, col, false, true)
		c.Line(fx-4, fy+4, fx+4, fy-4, col, false, true)
	default:
		c.FillRect(image.Rect(x-2, y-2, x+3, y+3), col)
	}
}

// WritePNG renders the chart and encodes it as PNG.
func (lc *LineChart) WritePNG(w io.Writer) error { return lc.Draw().WritePNG(w) }

// Draw renders the chart.
func (bc *BarChart) Draw() *Canvas {
	format := orDefault(bc.Format)
	var vs []float64
	legend := make([]legendItem, len(bc.Series))
	for i, s := range bc.Series {
		vs = append(vs, s.Values...)
		legend[i] = legendItem{name: s.Name, col: seriesColor(s.Color, i), box: true}
	}
	// Headroom for the values written above the bars.
	top := 0.0
	for _, v := range vs {
		if finite(v) {
			top = math.Max(top, v)
		}
	}
	ya := newAxis(append(vs, top*1.15), false, true, 0, 0)
	f := newFrame(bc.Width, bc.Height, bc.Title, "", bc.YLabel, legend, maxLabelWidth(ya.ticks(6), format))
	p := f.plot
	ya.from, ya.to = float64(p.Max.Y), float64(p.Min.Y)
	f.yTicks(ya, format)
	groups := max(len(bc.Categories), 1)
	groupW := float64(p.Dx()) / float64(groups)
	barW := groupW * 0.8 / float64(max(len(bc.Series), 1))
	for g, name := range bc.Categories {
		x0 := float64(p.Min.X) + float64(g)*groupW
		f.c.Text(int(x0+groupW/2)-TextWidth(name)/2, p.Max.Y+20, name, Ink, false)
		for i, s := range bc.Series {
			if g >= len(s.Values) || !finite(s.Values[g]) {
				continue
			}
			v := s.Values[g]
			bx := x0 + groupW*0.1 + float64(i)*barW
			y0, y1 := ya.pos(0), ya.pos(v)
			r := image.Rect(int(bx), int(math.Min(y0, y1)), int(bx+barW)-1, int(math.Max(y0, y1)))
			f.c.FillRect(r, seriesColor(s.Color, i))
			label := format(v)
			if lw := TextWidth(label); lw <= int(barW) {
				f.c.Text(int(bx+barW/2)-lw/2, r.Min.Y-4, label, Ink, false)
			} else {
				f.c.TextUp(int(bx+barW/2)+Ascent/2, r.Min.Y-4, label, Ink)
			}
		}
	}
	f.drawDecorations()
	return f.c
}

// WritePNG renders the chart and encodes it as PNG.
func (bc *BarChart) WritePNG(w io.Writer) error { return bc.Draw().WritePNG(w) }

func orDefault(f func(float64) string) func(float64) string {
	if f == nil {
		return FormatNumber
	}
	return f
}
