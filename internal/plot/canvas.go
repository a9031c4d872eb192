package plot

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
)

// Font metrics of the bitmap font, in pixels.
const (
	// CharWidth is the advance of every character.
	CharWidth = 7
	// Ascent is the distance from the top of a character cell to its
	// baseline; a cell is 13 pixels high.
	Ascent = 11
)

// Canvas is an RGBA picture with the drawing operations the charts and
// examples/jaeger's waterfall need: rectangles, lines, arrow heads and text
// in a 6x13 bitmap font. Coordinates are pixels from the top left; anything
// outside the picture is clipped. A Canvas is not safe for concurrent use.
type Canvas struct {
	*image.RGBA
}

// NewCanvas returns a width x height canvas filled with bg.
func NewCanvas(width, height int, bg color.RGBA) *Canvas {
	c := &Canvas{image.NewRGBA(image.Rect(0, 0, max(width, 0), max(height, 0)))}
	c.FillRect(c.Bounds(), bg)
	return c
}

// FillRect paints r with col.
func (c *Canvas) FillRect(r image.Rectangle, col color.RGBA) {
	r = r.Intersect(c.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c.SetRGBA(x, y, col)
		}
	}
}

// StrokeRect draws the outline of r, width pixels thick, inside r.
func (c *Canvas) StrokeRect(r image.Rectangle, col color.RGBA, width int) {
	c.FillRect(image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+width), col)
	c.FillRect(image.Rect(r.Min.X, r.Max.Y-width, r.Max.X, r.Max.Y), col)
	c.FillRect(image.Rect(r.Min.X, r.Min.Y, r.Min.X+width, r.Max.Y), col)
	c.FillRect(image.Rect(r.Max.X-width, r.Min.Y, r.Max.X, r.Max.Y), col)
}

// Line draws a line from (x0, y0) to (x1, y1): dashed (4 pixels on, 4 off)
// or solid, one pixel wide or, when thick, two.
func (c *Canvas) Line(x0, y0, x1, y1 float64, col color.RGBA, dashed, thick bool) {
	c.dashLine(x0, y0, x1, y1, col, dashed, thick, 0)
}

// dashLine is Line starting phase pixels into the dash pattern; it returns
// the phase at the end, for the next segment of a polyline to go on with.
func (c *Canvas) dashLine(x0, y0, x1, y1 float64, col color.RGBA, dashed, thick bool, phase int) int {
	if !finite(x0, y0, x1, y1) {
		return phase
	}
	n := int(math.Max(math.Abs(x1-x0), math.Abs(y1-y0)))
	n = min(n, 1<<16) // a line far outside the picture is clipped anyway
	steep := math.Abs(y1-y0) > math.Abs(x1-x0)
	for i := 0; i <= n; i++ {
		if dashed && ((phase+i)/4)%2 == 1 {
			continue
		}
		t := float64(i) / math.Max(float64(n), 1)
		x, y := int(math.Round(x0+(x1-x0)*t)), int(math.Round(y0+(y1-y0)*t))
		c.SetRGBA(x, y, col)
		if thick {
			if steep {
				c.SetRGBA(x+1, y, col)
			} else {
				c.SetRGBA(x, y+1, col)
			}
		}
	}
	return phase + n
}

// ArrowHead draws the head of an arrow going from (x0, y0) to (x1, y1), at
// (x1, y1).
func (c *Canvas) ArrowHead(x0, y0, x1, y1 float64, col color.RGBA) {
	a := math.Atan2(y1-y0, x1-x0)
	for _, d := range []float64{-0.45, 0.45} {
		c.Line(x1, y1, x1-8*math.Cos(a+d), y1-8*math.Sin(a+d), col, false, true)
	}
}

// Text draws s with the left end of its baseline at (x, y). Characters the
// font lacks are drawn as '?', except 'µ' (drawn) and '…' (drawn as '~').
// Bold text is drawn twice, one pixel apart.
func (c *Canvas) Text(x, y int, s string, col color.RGBA, bold bool) {
	eachPixel(s, func(gx, gy int) {
		c.SetRGBA(x+gx, y-Ascent+gy, col)
		if bold {
			c.SetRGBA(x+gx+1, y-Ascent+gy, col)
		}
	})
}

// TextUp draws s rotated a quarter turn anticlockwise (read from bottom to
// top), with the left end of its baseline at (x, y): for a vertical axis's
// title.
func (c *Canvas) TextUp(x, y int, s string, col color.RGBA) {
	eachPixel(s, func(gx, gy int) { c.SetRGBA(x-Ascent+gy, y-gx, col) })
}

// eachPixel calls f for each inked pixel of s written from the origin:
// gx from the left of the first character, gy from the top of the line.
func eachPixel(s string, f func(gx, gy int)) {
	left := 0
	for _, r := range s {
		for gy, bits := range glyph(r) {
			for gx := range 6 {
				if bits&(0x80>>gx) != 0 {
					f(left+gx, gy)
				}
			}
		}
		left += CharWidth
	}
}

// TextWidth is the width of s in pixels.
func TextWidth(s string) int {
	n := 0
	for range s {
		n++
	}
	return n * CharWidth
}

// WritePNG encodes the canvas as PNG.
func (c *Canvas) WritePNG(w io.Writer) error { return png.Encode(w, c.RGBA) }

func glyph(r rune) [13]byte {
	switch {
	case r == 'µ':
		return micro
	case r == '…':
		r = '~'
	case r < 32 || r > 126:
		r = '?'
	}
	return glyphs[r-32]
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
