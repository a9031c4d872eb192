// Package plot draws the PNG charts of strata's documentation (the
// benchmark report of examples/bench) with gonum.org/v1/plot: line charts
// (linear or log axes, dashed series, markers, an empirical CDF helper) and
// grouped bar charts with their values written above the bars, each with a
// title, axis titles, tick labels and a legend beside the plot. It also
// holds the colours and number formats that examples/jaeger's trace
// waterfall shares with the charts.
//
// Charts never panic on degenerate input: empty series, a single point,
// non-finite values and non-positive values on a log axis are skipped, and
// an empty chart is drawn on a default range.
package plot
