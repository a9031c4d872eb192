// Package plot draws the PNG charts of strata's documentation with the
// standard library only: line charts (linear or log axes, dashed series,
// an empirical CDF helper) and grouped bar charts, with a title, axis
// titles, tick labels and a legend, in a 6x13 bitmap font. Its Canvas is
// also what examples/jaeger draws its trace waterfall on.
//
// Charts never panic on degenerate input: empty series, a single point,
// non-finite values and non-positive values on a log axis are skipped or
// drawn on a default range.
package plot
