package plot

import (
	"bytes"
	"cmp"
	"image"
	"image/png"
	"math"
	"testing"

	"gonum.org/v1/plot/vg/vgimg"
)

// rgba is the picture drawn on c.
func rgba(c *vgimg.Canvas) *image.RGBA { return c.Image().(*image.RGBA) }

// decode encodes c as PNG and decodes it back, as a reader of the file would.
func decode(t *testing.T, write func(*bytes.Buffer) error) image.Image {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// inked counts the pixels of r that are not the background colour.
func inked(img image.Image, r image.Rectangle) int {
	n := 0
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if cr>>8 != 255 || cg>>8 != 255 || cb>>8 != 255 {
				n++
			}
		}
	}
	return n
}

func TestChartsRenderAtTheirSize(t *testing.T) {
	line := &LineChart{Title: "hit ratio", XLabel: "zipf s", YLabel: "hits", Markers: true, YFromZero: true, Width: 480, Height: 300,
		Series: []Series{{Name: "a", X: []float64{1.01, 1.1, 1.2}, Y: []float64{0.4, 0.5, 0.6}},
			{Name: "b", X: []float64{1.01, 1.1, 1.2}, Y: []float64{0.3, 0.45, 0.55}, Dashed: true}}}
	cdf := &LineChart{Title: "latency", XLabel: "µs", LogX: true, Width: 400, Height: 260,
		Series: []Series{CDF("redis", []float64{50, 60, 70, 400, 2000}), CDF("nats", []float64{100, 120})}}
	bar := &BarChart{Title: "ops/s", YLabel: "ops/s", Categories: []string{"1 core", "2 cores"}, Width: 420, Height: 280,
		Series: []BarSeries{{Name: "strata", Values: []float64{30e6, 55e6}}, {Name: "other", Values: []float64{3e6, 2e6}}}}
	for _, tc := range []struct {
		name string
		w, h int
		png  func(*bytes.Buffer) error
	}{
		{"line", 480, 300, func(b *bytes.Buffer) error { return line.WritePNG(b) }},
		{"cdf", 400, 260, func(b *bytes.Buffer) error { return cdf.WritePNG(b) }},
		{"bar", 420, 280, func(b *bytes.Buffer) error { return bar.WritePNG(b) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := decode(t, tc.png)
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Fatalf("size %v, want %dx%d", b, tc.w, tc.h)
			}
			// The title is drawn, and the middle of the plot area holds
			// lines, bars or grid.
			if n := inked(img, image.Rect(0, 0, tc.w, 36)); n < 20 {
				t.Errorf("title band has %d inked pixels", n)
			}
			if n := inked(img, image.Rect(tc.w/4, tc.h/4, tc.w/2, 3*tc.h/4)); n < 50 {
				t.Errorf("plot area has %d inked pixels", n)
			}
		})
	}
}

// TestBarsAreProportional: a bar twice the value of another is about twice
// as tall (measured in the series' colour down the middle of each bar).
func TestBarsAreProportional(t *testing.T) {
	bc := &BarChart{Width: 300, Height: 300, Categories: []string{"x"}, Series: []BarSeries{{Name: "a", Values: []float64{100}}, {Name: "b", Values: []float64{50}}}}
	c := rgba(bc.Draw())
	height := func(col int) int {
		n := 0
		for x := c.Bounds().Min.X; x < c.Bounds().Max.X; x++ {
			h := 0
			for y := range c.Bounds().Dy() {
				if c.RGBAAt(x, y) == Palette[col] {
					h++
				}
			}
			n = max(n, h)
		}
		return n
	}
	a, b := height(0), height(1)
	if b == 0 || math.Abs(float64(a)/float64(b)-2) > 0.1 {
		t.Errorf("bar heights %d and %d, want a ratio of 2", a, b)
	}
}

func TestDegenerateInputDoesNotPanic(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	charts := map[string]interface{ Draw() *vgimg.Canvas }{
		"empty line":        &LineChart{},
		"empty bar":         &BarChart{},
		"one point":         &LineChart{Series: []Series{{Name: "p", X: []float64{1}, Y: []float64{1}}}},
		"ragged":            &LineChart{Series: []Series{{X: []float64{1, 2, 3}, Y: []float64{1}}}},
		"non-finite":        &LineChart{Series: []Series{{X: []float64{nan, 1, inf}, Y: []float64{1, nan, 2}}}},
		"log of zero":       &LineChart{LogX: true, LogY: true, Series: []Series{{X: []float64{0, -1}, Y: []float64{0, 5}}}},
		"empty cdf":         &LineChart{LogX: true, Series: []Series{CDF("none", nil)}},
		"bars missing":      &BarChart{Categories: []string{"a", "b"}, Series: []BarSeries{{Values: []float64{nan}}}},
		"negative bars":     &BarChart{Categories: []string{"a"}, Series: []BarSeries{{Values: []float64{-3}}}},
		"tiny picture":      &LineChart{Width: 3, Height: 3, Title: "a long title", Series: []Series{{Name: "long legend entry", X: []float64{1, 2}, Y: []float64{1, 2}}}},
		"huge values":       &LineChart{Series: []Series{{X: []float64{0, 1e300}, Y: []float64{-1e300, 1e300}}}},
		"all equal values":  &BarChart{Categories: []string{"a"}, Series: []BarSeries{{Values: []float64{0}}}},
		"unicode in labels": &BarChart{Title: "π ≈ 3 … µs", Categories: []string{"ü"}, Series: []BarSeries{{Name: "é", Values: []float64{1}}}},
	}
	for name, c := range charts {
		// Small pictures keep the test fast under -race.
		switch c := c.(type) {
		case *LineChart:
			c.Width, c.Height = cmp.Or(c.Width, 240), cmp.Or(c.Height, 160)
		case *BarChart:
			c.Width, c.Height = cmp.Or(c.Width, 240), cmp.Or(c.Height, 160)
		}
		t.Run(name, func(t *testing.T) {
			if c.Draw() == nil {
				t.Fatal("nil canvas")
			}
		})
	}
}

func TestCDF(t *testing.T) {
	in := []float64{3, 1, math.NaN(), 2}
	s := CDF("x", in)
	if len(s.X) != 3 || s.X[0] != 1 || s.X[2] != 3 || s.Y[0] != 1.0/3 || s.Y[2] != 1 {
		t.Errorf("CDF = %v %v", s.X, s.Y)
	}
	if in[0] != 3 {
		t.Error("CDF sorted its input")
	}
}

func TestNiceStepAndFormat(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{{0.7, 1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {120, 200}, {0, 1}, {math.NaN(), 1}} {
		if got := NiceStep(tc.in); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("NiceStep(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for in, want := range map[float64]string{0: "0", 0.25: "0.25", 1.5: "1.5", 12.5: "12.5", 850: "850", 12_000: "12k", 35e6: "35M", 2.5e9: "2.5G", 1234: "1234"} {
		if got := FormatNumber(in); got != want {
			t.Errorf("FormatNumber(%v) = %q, want %q", in, got, want)
		}
	}
	// A tick at zero reached from below is labelled "0", not "-0".
	if got := FormatNumber(math.Copysign(0, -1)); got != "0" {
		t.Errorf("FormatNumber(-0) = %q", got)
	}
	for _, tk := range (linearTicks{FormatNumber}).Ticks(-0.3, 0.6) {
		if tk.Label == "-0" {
			t.Errorf("tick %q", tk.Label)
		}
	}
}

func TestLogAxisTicks(t *testing.T) {
	var got []float64
	for _, tk := range (logTicks{FormatNumber}).Ticks(40, 3000) {
		got = append(got, tk.Value)
		if tk.Label != FormatNumber(tk.Value) {
			t.Errorf("tick %v labelled %q", tk.Value, tk.Label)
		}
	}
	want := []float64{50, 100, 200, 500, 1000, 2000}
	if len(got) != len(want) {
		t.Fatalf("ticks %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6 {
			t.Fatalf("ticks %v, want %v", got, want)
		}
	}
	if n := len((logTicks{FormatNumber}).Ticks(0, 10)); n != 0 {
		t.Errorf("%d ticks on a log axis from 0", n)
	}
}

// TestXMaxClipsToThePlotArea: a line running far past XMax is not drawn
// outside the plot area (over the legend column or the picture's edge).
func TestXMaxClipsToThePlotArea(t *testing.T) {
	lc := &LineChart{Width: 300, Height: 200, XMax: 100, Markers: true,
		Series: []Series{{X: []float64{1, 50, 150}, Y: []float64{0, 0.5, 1}}}}
	c := rgba(lc.Draw())
	n := 0
	for y := range 200 {
		for x := 293; x < 300; x++ { // right of the plot area (which ends at 300-8)
			if c.RGBAAt(x, y) == Palette[0] {
				n++
			}
		}
	}
	if n != 0 {
		t.Errorf("%d pixels of the series right of the plot area", n)
	}
	inside := 0
	for y := range 200 {
		for x := range 260 {
			if c.RGBAAt(x, y) == Palette[0] {
				inside++
			}
		}
	}
	if inside < 20 {
		t.Errorf("only %d pixels of the series inside the plot area", inside)
	}
}

// TestDashesRunAcrossSegments: a dashed series made of many one-pixel
// segments (a CDF of many samples) still shows gaps.
func TestDashesRunAcrossSegments(t *testing.T) {
	xs, ys := make([]float64, 400), make([]float64, 400)
	for i := range xs {
		xs[i], ys[i] = float64(i), 1
	}
	ys[0] = 0 // the axis spans [0, 1]: the line runs along the top
	c := rgba((&LineChart{Width: 600, Height: 200, Series: []Series{{X: xs, Y: ys, Dashed: true}}}).Draw())
	on, off := 0, 0
	for x := 150; x < 450; x++ {
		hit := false
		for y := range 200 {
			if c.RGBAAt(x, y) == Palette[0] {
				hit = true
			}
		}
		if hit {
			on++
		} else {
			off++
		}
	}
	if on < 100 || off < 100 { // solid: about 250 and 50
		t.Errorf("%d columns inked, %d blank along a dashed line; want both", on, off)
	}
}
