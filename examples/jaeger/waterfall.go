package main

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/stratacache/strata/internal/plot"
)

// The waterfall: a cross-node trace drawn from Jaeger's JSON API, the write
// on one node, then the receipts it caused on the other node, on one time
// axis, with an arrow for each link. The layout is a list of shapes drawn
// twice: as SVG, and as PNG with gonum/plot's vg canvas (vgimg).

// row is one span of the picture.
type row struct {
	span    *apiSpan
	service string
	depth   int
	trace   int // 0: the write's trace; 1, 2, ...: receipts
}

// waterfallRows orders cn's spans: each trace depth first by start time,
// the write's trace first.
func waterfallRows(cn *crossNode) []row {
	var rows []row
	for i, t := range append([]*apiTrace{cn.write}, cn.receipts...) {
		children := map[string][]*apiSpan{}
		var roots []*apiSpan
		ids := map[string]bool{}
		for j := range t.Spans {
			ids[t.Spans[j].SpanID] = true
		}
		for j := range t.Spans {
			s := &t.Spans[j]
			if p, ok := s.parent(); ok && ids[p.SpanID] {
				children[p.SpanID] = append(children[p.SpanID], s)
			} else {
				roots = append(roots, s)
			}
		}
		byStart := func(ss []*apiSpan) {
			sort.SliceStable(ss, func(a, b int) bool { return ss[a].StartTime < ss[b].StartTime })
		}
		var walk func(s *apiSpan, depth int)
		walk = func(s *apiSpan, depth int) {
			rows = append(rows, row{span: s, service: t.service(s), depth: depth, trace: i})
			kids := children[s.SpanID]
			byStart(kids)
			for _, k := range kids {
				walk(k, depth+1)
			}
		}
		byStart(roots)
		for _, r := range roots {
			walk(r, 0)
		}
	}
	return rows
}

type shapeKind int

const (
	shapeRect shapeKind = iota
	shapeText
	shapeLine
)

// shape is one drawing instruction, in pixels.
type shape struct {
	kind          shapeKind
	x, y, w, h    float64 // rect; a line goes from (x, y) to (w, h)
	fill, stroke  color.RGBA
	text          string
	end           bool // text anchored at its end
	bold          bool
	dashed, arrow bool
	strokeWidth   float64
	titleTooltip  string
}

// Picture geometry.
const (
	wfWidth   = 1200
	wfLabel   = 470 // label column width
	wfChartX  = wfLabel + 10
	wfChartW  = wfWidth - wfChartX - 90
	wfRowH    = 22
	wfTop     = 78
	wfBarH    = 14
	wfIndent  = 14
	wfCharW   = 7 // the advance of the monospace font at wfFontPx (0.6 em), in the SVG and the PNG
	wfFontPx  = 11.5
	wfPadding = 16
)

var (
	colBackground = plot.Background
	colText       = plot.Ink
	colMuted      = plot.Muted
	colGrid       = plot.Grid
	colStripe     = color.RGBA{248, 249, 250, 255}
	colLink       = color.RGBA{214, 51, 132, 255}
	colError      = color.RGBA{220, 53, 69, 255}
	serviceColors = []color.RGBA{plot.Palette[0], plot.Palette[1], plot.Palette[2], plot.Palette[4]} // no red: it marks errors
)

// layout turns rows into shapes; height is the picture's height.
func layout(rows []row, title string) (shapes []shape, height int) {
	t0, t1 := int64(math.MaxInt64), int64(0)
	for _, r := range rows {
		t0 = min(t0, r.span.StartTime)
		t1 = max(t1, r.span.StartTime+r.span.Duration)
	}
	span := max(t1-t0, 1)
	// A round time axis.
	step := plot.NiceStep(float64(span) / 8)
	axisEnd := math.Ceil(float64(span)/step) * step
	xOf := func(us int64) float64 { return wfChartX + float64(us-t0)/axisEnd*wfChartW }

	services := map[string]color.RGBA{}
	serviceOrder := []string{}
	colorOf := func(svc string) color.RGBA {
		c, ok := services[svc]
		if !ok {
			c = serviceColors[len(services)%len(serviceColors)]
			services[svc] = c
			serviceOrder = append(serviceOrder, svc)
		}
		return c
	}
	for _, r := range rows {
		colorOf(r.service)
	}

	// Each trace starts with a header line.
	slots := len(rows) + rows[len(rows)-1].trace + 1
	height = wfTop + slots*wfRowH + 70
	add := func(s shape) { shapes = append(shapes, s) }
	add(shape{kind: shapeRect, w: wfWidth, h: float64(height), fill: colBackground})
	add(shape{kind: shapeText, x: wfPadding, y: 24, text: title, bold: true, fill: colText})

	// Axis: ticks and grid lines.
	for v := 0.0; v <= axisEnd+step/2; v += step {
		x := wfChartX + v/axisEnd*wfChartW
		add(shape{kind: shapeLine, x: x, y: wfTop - 8, w: x, h: float64(wfTop + slots*wfRowH), stroke: colGrid, strokeWidth: 1})
		add(shape{kind: shapeText, x: x, y: wfTop - 14, text: formatDuration(time.Duration(v) * time.Microsecond), fill: colMuted, end: v > 0})
	}

	rowY := func(i int) float64 { return float64(wfTop + (i+rows[i].trace+1)*wfRowH) }
	index := map[string]int{}
	for i, r := range rows {
		index[r.span.TraceID+"/"+r.span.SpanID] = i
		y := rowY(i)
		if i == 0 || r.trace != rows[i-1].trace {
			hy := y - wfRowH
			if i > 0 {
				add(shape{kind: shapeLine, x: wfPadding, y: hy, w: wfWidth - wfPadding, h: hy, stroke: colMuted, strokeWidth: 1, dashed: true})
			}
			head := "trace " + r.span.TraceID + ": a request on " + r.service
			if r.trace > 0 {
				head = "trace " + r.span.TraceID + ": its receipt on " + r.service + ", a new trace linked to the write"
			}
			add(shape{kind: shapeText, x: wfPadding, y: hy + 16, text: head, fill: colMuted})
		}
		if i%2 == 1 {
			add(shape{kind: shapeRect, x: 0, y: y, w: wfWidth, h: wfRowH, fill: colStripe})
		}
		label := strings.Repeat(" ", 2*r.depth) + r.span.OperationName
		if k := r.span.tag("span.kind"); k == "producer" || k == "consumer" {
			label += " (" + k + ")"
		}
		svcLabel := shortService(r.service)
		add(shape{kind: shapeText, x: wfPadding, y: y + 15, text: svcLabel, fill: colorOf(r.service), bold: true})
		add(shape{kind: shapeText, x: wfPadding + float64(len(svcLabel)+1)*wfCharW, y: y + 15, text: label, fill: colText,
			titleTooltip: spanTooltip(r)})
		x0, x1 := xOf(r.span.StartTime), xOf(r.span.StartTime+r.span.Duration)
		w := max(x1-x0, 2)
		bar := shape{kind: shapeRect, x: x0, y: y + (wfRowH-wfBarH)/2, w: w, h: wfBarH, fill: colorOf(r.service), titleTooltip: spanTooltip(r)}
		if r.span.tag("error") == "true" || r.span.tag("otel.status_code") == "ERROR" {
			bar.stroke, bar.strokeWidth = colError, 2
		}
		add(bar)
		add(shape{kind: shapeText, x: x0 + w + 5, y: y + 15, text: formatDuration(time.Duration(r.span.Duration) * time.Microsecond), fill: colMuted})
	}

	// Links: an arrow from the span linked to, at the time the link was
	// made (the receiver's start), to the receiving span.
	for i, r := range rows {
		for _, ref := range r.span.References {
			if ref.RefType != "FOLLOWS_FROM" && ref.TraceID == r.span.TraceID {
				continue
			}
			j, ok := index[ref.TraceID+"/"+ref.SpanID]
			if !ok {
				for k, rr := range rows {
					if sameID(rr.span.TraceID, ref.TraceID) && sameID(rr.span.SpanID, ref.SpanID) {
						j, ok = k, true
					}
				}
			}
			if !ok || j == i {
				continue
			}
			from := rows[j].span
			x := xOf(min(max(r.span.StartTime, from.StartTime), from.StartTime+from.Duration))
			add(shape{kind: shapeLine, x: x, y: rowY(j) + wfRowH/2 + wfBarH/2, w: xOf(r.span.StartTime), h: rowY(i) + (wfRowH-wfBarH)/2,
				stroke: colLink, strokeWidth: 1.5, dashed: true, arrow: true})
		}
	}

	// Legend.
	ly := float64(wfTop+slots*wfRowH) + 28
	x := float64(wfPadding)
	for _, svc := range serviceOrder {
		add(shape{kind: shapeRect, x: x, y: ly - 10, w: 12, h: 12, fill: services[svc]})
		add(shape{kind: shapeText, x: x + 18, y: ly, text: svc, fill: colText})
		x += 18 + float64(len(svc))*wfCharW + 24
	}
	add(shape{kind: shapeLine, x: x, y: ly - 4, w: x + 30, h: ly - 4, stroke: colLink, strokeWidth: 1.5, dashed: true, arrow: true})
	add(shape{kind: shapeText, x: x + 38, y: ly, text: "span link (the trace context carried by the backplane message)", fill: colText})
	add(shape{kind: shapeRect, x: wfPadding, y: ly + 14, w: 12, h: 12, stroke: colError, strokeWidth: 2, fill: colBackground})
	add(shape{kind: shapeText, x: wfPadding + 18, y: ly + 24, text: "error status", fill: colText})
	return shapes, height
}

func spanTooltip(r row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s: %s", r.span.OperationName, r.service, formatDuration(time.Duration(r.span.Duration)*time.Microsecond))
	for _, t := range r.span.Tags {
		if strings.HasPrefix(t.Key, "strata.") || t.Key == "error.type" || t.Key == "span.kind" {
			fmt.Fprintf(&b, "\n%s=%v", t.Key, t.Value)
		}
	}
	return b.String()
}

// shortService drops the common prefix of the example's service names:
// strata-example-a is shown as [a].
func shortService(svc string) string {
	if i := strings.LastIndexByte(svc, '-'); i >= 0 && i < len(svc)-1 {
		return "[" + strings.ToUpper(svc[i+1:]) + "]"
	}
	return "[" + svc + "]"
}

func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// writeSVG draws shapes as an SVG document.
func writeSVG(w io.Writer, shapes []shape, width, height int) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="%.1f">`+"\n",
		width, height, width, height, wfFontPx)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="` + colorHex(colLink) + `"/></marker></defs>` + "\n")
	for _, s := range shapes {
		title := ""
		if s.titleTooltip != "" {
			title = "<title>" + html.EscapeString(s.titleTooltip) + "</title>"
		}
		switch s.kind {
		case shapeRect:
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="%d" fill="%s"`, s.x, s.y, s.w, s.h, map[bool]int{true: 2, false: 0}[s.h < 20], colorHex(s.fill))
			if s.strokeWidth > 0 {
				fmt.Fprintf(&b, ` stroke="%s" stroke-width="%.1f"`, colorHex(s.stroke), s.strokeWidth)
			}
			if title != "" {
				b.WriteString(">" + title + "</rect>\n")
			} else {
				b.WriteString("/>\n")
			}
		case shapeText:
			anchor := ""
			if s.end {
				anchor = ` text-anchor="end"`
			}
			weight := ""
			if s.bold {
				weight = ` font-weight="bold"`
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s"%s%s xml:space="preserve">%s%s</text>`+"\n", s.x, s.y, colorHex(s.fill), anchor, weight, title, html.EscapeString(s.text))
		case shapeLine:
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"`, s.x, s.y, s.w, s.h, colorHex(s.stroke), s.strokeWidth)
			if s.dashed {
				b.WriteString(` stroke-dasharray="4 3"`)
			}
			if s.arrow {
				b.WriteString(` marker-end="url(#arrow)"`)
			}
			b.WriteString("/>\n")
		}
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func colorHex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// drawPNG rasterizes shapes with gonum's vg, one pixel per point (SVG's
// coordinates, with y flipped: vg's origin is at the bottom left), text in
// Liberation Mono (the font gonum/plot embeds).
func drawPNG(shapes []shape, width, height int) *vgimg.Canvas {
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(width), vg.Length(height)), vgimg.UseDPI(72), vgimg.UseBackgroundColor(colBackground))
	pt := func(x, y float64) vg.Point { return vg.Point{X: vg.Length(x), Y: vg.Length(float64(height) - y)} }
	regular := font.DefaultCache.Lookup(font.Font{Typeface: "Liberation", Variant: "Mono"}, wfFontPx)
	bold := font.DefaultCache.Lookup(font.Font{Typeface: "Liberation", Variant: "Mono", Weight: xfont.WeightBold}, wfFontPx)
	for _, s := range shapes {
		switch s.kind {
		case shapeRect:
			var r vg.Path
			r.Move(pt(s.x, s.y))
			r.Line(pt(s.x+s.w, s.y))
			r.Line(pt(s.x+s.w, s.y+s.h))
			r.Line(pt(s.x, s.y+s.h))
			r.Close()
			c.SetColor(s.fill)
			c.Fill(r)
			if s.strokeWidth > 0 {
				c.SetColor(s.stroke)
				c.SetLineWidth(vg.Length(s.strokeWidth))
				c.SetLineDash(nil, 0)
				c.Stroke(r)
			}
		case shapeText:
			face := regular
			if s.bold {
				face = bold
			}
			x := s.x
			if s.end {
				x -= float64(face.Width(s.text))
			}
			c.SetColor(s.fill)
			c.FillString(face, pt(x, s.y), s.text)
		case shapeLine:
			// A line's end point is in (w, h).
			var l vg.Path
			l.Move(pt(s.x, s.y))
			l.Line(pt(s.w, s.h))
			c.SetColor(s.stroke)
			c.SetLineWidth(vg.Length(max(s.strokeWidth, 1)))
			if s.dashed {
				c.SetLineDash([]vg.Length{4, 3}, 0)
			} else {
				c.SetLineDash(nil, 0)
			}
			c.Stroke(l)
			if s.arrow {
				c.Fill(arrowHead(pt(s.x, s.y), pt(s.w, s.h)))
			}
		}
	}
	return c
}

// arrowHead is a filled triangle at to, pointing away from from.
func arrowHead(from, to vg.Point) vg.Path {
	dx, dy := float64(to.X-from.X), float64(to.Y-from.Y)
	n := math.Hypot(dx, dy)
	if n == 0 {
		return vg.Path{}
	}
	dx, dy = dx/n, dy/n
	const length, half = 8, 4
	bx, by := float64(to.X)-dx*length, float64(to.Y)-dy*length
	var p vg.Path
	p.Move(to)
	p.Line(vg.Point{X: vg.Length(bx - dy*half), Y: vg.Length(by + dx*half)})
	p.Line(vg.Point{X: vg.Length(bx + dy*half), Y: vg.Length(by - dx*half)})
	p.Close()
	return p
}

// renderWaterfall returns the SVG and PNG pictures of cn.
func renderWaterfall(cn *crossNode, title string) (svg, pngData []byte, err error) {
	rows := waterfallRows(cn)
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("nothing to draw")
	}
	shapes, height := layout(rows, title)
	var s, p bytes.Buffer
	if err := writeSVG(&s, shapes, wfWidth, height); err != nil {
		return nil, nil, err
	}
	if _, err := (vgimg.PngCanvas{Canvas: drawPNG(shapes, wfWidth, height)}).WriteTo(&p); err != nil {
		return nil, nil, err
	}
	return s.Bytes(), p.Bytes(), nil
}

// writeWaterfall reads the update step's cross-node trace back from Jaeger's
// API at api and writes it to dir as trace.svg and trace.png.
func writeWaterfall(ctx context.Context, api string, res *Result, dir string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cn, err := newJaegerClient(api).findCrossNode(ctx, res, "update")
	if err != nil {
		return err
	}
	title := "strata: an update on node A (core.Set) and its receipt on node B, from Jaeger's API"
	svg, pngData, err := renderWaterfall(cn, title)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"trace.svg": svg, "trace.png": pngData} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "Wrote %s and %s: trace %s (node A) and the linked receipt on node B.\n",
		filepath.Join(dir, "trace.svg"), filepath.Join(dir, "trace.png"), cn.write.TraceID)
	return nil
}
