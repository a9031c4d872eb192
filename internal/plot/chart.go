package plot

import (
	"image/color"
	"io"
	"math"
	"slices"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
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

// Default picture size, in pixels.
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
	// series (filled square, ring, plus, cross, dot...), so that series
	// lying on top of each other stay apart.
	Markers bool
	// XMax, when positive, ends the X axis there; what lies beyond is
	// clipped.
	XMax float64
	// Width and Height of the picture in pixels; zero means
	// DefaultWidth/Height.
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
		if finite(v) {
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

func seriesColor(c color.RGBA, i int) color.RGBA {
	if c == (color.RGBA{}) {
		return Palette[i%len(Palette)]
	}
	return c
}

func orDefault(f func(float64) string) func(float64) string {
	if f == nil {
		return FormatNumber
	}
	return f
}

// markers are the glyphs of LineChart.Markers, one per series in turn.
var markers = []draw.GlyphDrawer{draw.BoxGlyph{}, draw.RingGlyph{}, draw.PlusGlyph{}, draw.CrossGlyph{}, draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}}

// newPlot returns a plot with the charts' common style.
func newPlot(title, xl, yl string) *gplot.Plot {
	p := gplot.New()
	p.BackgroundColor = Background
	p.Title.Text = title
	p.Title.TextStyle.Color = Ink
	p.Title.TextStyle.Font.Size = vg.Points(15)
	p.Title.Padding = vg.Points(8)
	for _, a := range []*gplot.Axis{&p.X, &p.Y} {
		a.Color = Muted
		a.Label.TextStyle.Color = Ink
		a.Label.TextStyle.Font.Size = vg.Points(12)
		a.Tick.Label.Color = Ink
		a.Tick.Label.Font.Size = vg.Points(11)
		a.Tick.Color = Muted
	}
	p.X.Label.Text, p.Y.Label.Text = xl, yl
	grid := plotter.NewGrid()
	grid.Vertical.Color, grid.Horizontal.Color = Grid, Grid
	grid.Vertical.Dashes, grid.Horizontal.Dashes = nil, nil
	p.Add(grid)
	return p
}

// Draw renders the chart on a new canvas of its size.
func (lc *LineChart) Draw() *vgimg.Canvas {
	xf, yf := orDefault(lc.XFormat), orDefault(lc.YFormat)
	p := newPlot(lc.Title, lc.XLabel, lc.YLabel)
	legend := newLegend()
	ok := func(x, y float64) bool {
		return finite(x) && finite(y) && (!lc.LogX || x > 0) && (!lc.LogY || y > 0)
	}
	var xs, ys []float64
	for i, s := range lc.Series {
		var pts plotter.XYs
		for j := range min(len(s.X), len(s.Y)) {
			if ok(s.X[j], s.Y[j]) {
				pts = append(pts, plotter.XY{X: s.X[j], Y: s.Y[j]})
				xs, ys = append(xs, s.X[j]), append(ys, s.Y[j])
			}
		}
		col := seriesColor(s.Color, i)
		style := draw.LineStyle{Color: col, Width: vg.Points(2)}
		if s.Dashed {
			style.Dashes = []vg.Length{vg.Points(7), vg.Points(4)}
		}
		var thumbs []gplot.Thumbnailer
		if len(pts) > 0 {
			line, err := plotter.NewLine(pts)
			if err != nil { // cannot happen: the points are finite
				continue
			}
			line.LineStyle = style
			p.Add(line)
			thumbs = append(thumbs, line)
			if lc.Markers {
				sc, err := plotter.NewScatter(pts)
				if err == nil {
					sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(3.5), Shape: markers[i%len(markers)]}
					p.Add(sc)
					thumbs = append(thumbs, sc)
				}
			}
		} else {
			// Still in the legend, with its style.
			line := &plotter.Line{LineStyle: style}
			thumbs = append(thumbs, line)
		}
		if s.Name != "" {
			legend.Add(s.Name, thumbs...)
		}
	}
	setRange(&p.X, xs, lc.LogX, false, lc.XMax, xf)
	setRange(&p.Y, ys, lc.LogY, lc.YFromZero, 0, yf)
	return render(p, legend, lc.Width, lc.Height)
}

// setRange sets axis a to span vs (a default range when there is none),
// from zero if fromZero, up to xmax if positive, on a log scale if log,
// with ticks labelled by format.
func setRange(a *gplot.Axis, vs []float64, log, fromZero bool, xmax float64, format func(float64) string) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		lo, hi = min(lo, v), max(hi, v)
	}
	if len(vs) == 0 {
		lo, hi = 0, 1
		if log {
			lo, hi = 1, 10
		}
	}
	if fromZero && !log {
		lo = min(lo, 0)
	}
	if xmax > 0 && (!log || xmax > lo) {
		hi = xmax
		lo = min(lo, hi)
	}
	if lo == hi {
		if log {
			lo, hi = lo/2, hi*2
		} else {
			lo, hi = lo-1, hi+1
		}
	}
	a.Min, a.Max = lo, hi
	if log {
		a.Scale = gplot.LogScale{}
		a.Tick.Marker = logTicks{format}
	} else {
		a.Tick.Marker = linearTicks{format}
	}
}

// linearTicks labels about six round values.
type linearTicks struct{ format func(float64) string }

func (t linearTicks) Ticks(lo, hi float64) []gplot.Tick {
	step := NiceStep((hi - lo) / 6)
	var ticks []gplot.Tick
	for v := math.Ceil(lo/step-1e-9) * step; v <= hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ticks = append(ticks, gplot.Tick{Value: v, Label: t.format(v)})
	}
	return ticks
}

// logTicks labels 1, 2 and 5 times each power of ten.
type logTicks struct{ format func(float64) string }

func (t logTicks) Ticks(lo, hi float64) []gplot.Tick {
	var ticks []gplot.Tick
	if !(lo > 0) || !(hi > lo) {
		return ticks
	}
	for p := math.Pow(10, math.Floor(math.Log10(lo))); p <= hi; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := m * p; v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
				ticks = append(ticks, gplot.Tick{Value: v, Label: t.format(v)})
			}
		}
	}
	return ticks
}

// Draw renders the chart on a new canvas of its size.
func (bc *BarChart) Draw() *vgimg.Canvas {
	format := orDefault(bc.Format)
	width := cmpOr(bc.Width, DefaultWidth)
	p := newPlot(bc.Title, "", bc.YLabel)
	if len(bc.Categories) > 0 {
		p.NominalX(bc.Categories...)
	}
	p.X.Tick.Label.Font.Size = vg.Points(12)
	legend := newLegend()
	// Bars take 80% of each category's width, side by side.
	n := max(len(bc.Series), 1)
	plotW := float64(width) - legendWidth(bc.barNames()) - 90
	barW := vg.Length(max(plotW/float64(max(len(bc.Categories), 1))*0.8/float64(n), 2))
	var vs []float64
	for i, s := range bc.Series {
		col := seriesColor(s.Color, i)
		var vals plotter.Values
		var labels plotter.XYLabels
		for g := range bc.Categories {
			v := math.NaN()
			if g < len(s.Values) {
				v = s.Values[g]
			}
			if !finite(v) {
				v = 0 // no bar: zero height
			} else {
				vs = append(vs, v)
				labels.XYs = append(labels.XYs, plotter.XY{X: float64(g), Y: v})
				labels.Labels = append(labels.Labels, format(v))
			}
			vals = append(vals, v)
		}
		offset := (vg.Length(i) - vg.Length(n-1)/2) * barW
		if len(vals) > 0 {
			bars, err := plotter.NewBarChart(vals, barW)
			if err == nil {
				bars.Color, bars.LineStyle.Width, bars.Offset = col, 0, offset
				p.Add(bars)
				legend.Add(s.Name, bars)
			}
		}
		if len(labels.Labels) > 0 {
			lb, err := plotter.NewLabels(labels)
			if err == nil {
				for j := range lb.TextStyle {
					lb.TextStyle[j].Color = Ink
					lb.TextStyle[j].Font.Size = vg.Points(10)
					lb.TextStyle[j].XAlign = draw.XCenter
				}
				lb.Offset = vg.Point{X: offset, Y: vg.Points(3)}
				p.Add(lb)
			}
		}
	}
	// Headroom for the values written above the bars.
	top := 0.0
	for _, v := range vs {
		top = max(top, v)
	}
	setRange(&p.Y, append(vs, 0, top*1.12), false, true, 0, format)
	p.X.Min, p.X.Max = -0.5, float64(max(len(bc.Categories), 1))-0.5
	return render(p, legend, width, bc.Height)
}

func (bc *BarChart) barNames() []string {
	var names []string
	for _, s := range bc.Series {
		names = append(names, s.Name)
	}
	return names
}

// legend is gonum's legend and the names in it, to size its column.
type legend struct {
	gplot.Legend
	names []string
}

func newLegend() *legend {
	l := gplot.NewLegend()
	l.TextStyle.Color = Ink
	l.TextStyle.Font.Size = vg.Points(11)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(28)
	return &legend{Legend: l}
}

func (l *legend) Add(name string, thumbs ...gplot.Thumbnailer) {
	l.Legend.Add(name, thumbs...)
	l.names = append(l.names, name)
}

// legendWidth is the width in pixels of a legend column listing names.
func legendWidth(names []string) float64 {
	l := newLegend()
	w := 0.0
	for _, n := range names {
		w = max(w, float64(l.TextStyle.Width(n)))
	}
	if w == 0 {
		return 0
	}
	return w + float64(l.ThumbnailWidth) + 24
}

// render draws p on a canvas of width x height pixels, the legend in a
// column on the right.
func render(p *gplot.Plot, legend *legend, width, height int) *vgimg.Canvas {
	width, height = cmpOr(width, DefaultWidth), cmpOr(height, DefaultHeight)
	// At 72 dpi one point is one pixel.
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(width), vg.Length(height)), vgimg.UseDPI(72), vgimg.UseBackgroundColor(Background))
	dc := draw.New(c)
	dc = draw.Crop(dc, 8, -8, 8, -4) // margins
	lw := legendWidth(legend.names)
	lw = min(lw, float64(width)/2)
	p.Draw(draw.Crop(dc, 0, -vg.Length(lw), 0, 0))
	if lw > 0 {
		col := draw.Crop(dc, dc.Max.X-dc.Min.X-vg.Length(lw)+12, 0, 0, -vg.Length(float64(p.Title.TextStyle.Font.Size)+20))
		legend.Draw(col)
	}
	return c
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// WritePNG renders the chart and encodes it as PNG.
func (lc *LineChart) WritePNG(w io.Writer) error { return writePNG(w, lc.Draw()) }

// WritePNG renders the chart and encodes it as PNG.
func (bc *BarChart) WritePNG(w io.Writer) error { return writePNG(w, bc.Draw()) }

func writePNG(w io.Writer, c *vgimg.Canvas) error {
	_, err := vgimg.PngCanvas{Canvas: c}.WriteTo(w)
	return err
}
