package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Chart colours; the browser test looks for them in the screenshot.
const (
	colorLatency    = "#1f77b4" // blue
	colorOpen       = "#2ca02c" // green
	colorEvents     = "#ff7f0e" // orange
	colorGoroutines = "#9467bd" // purple
	colorMemory     = "#d62728" // red
)

// HTML renders r as one self-contained page: inline CSS and SVG drawn here, no script,
// no external resource of any kind (a Content-Security-Policy forbids the browser to
// fetch anything). Per scenario it draws the delivery-latency distribution, streams open
// and events per second over time, and the server's goroutines and memory over time,
// followed by the same tables as the terminal report.
func HTML(w io.Writer, r *Result) error {
	ew := &errWriter{w: w}
	esc := html.EscapeString
	ew.printf(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sseharness: %s</title>
<style>%s</style>
</head>
<body>
<h1>sseharness result <span class="v %s">%s</span></h1>
`, esc(verdictText(r.Verdict)), pageCSS, verdictClass(r.Verdict), esc(verdictText(r.Verdict)))
	ew.printf("<p class=\"meta\">")
	for i, l := range headerLines(r) {
		if i > 0 {
			ew.printf("<br>")
		}
		ew.printf("%s", esc(l))
	}
	ew.printf("</p>\n")
	htmlTable(ew, verdictTable(r), "h2")
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		sec := scenarioSection(s)
		ew.printf("<section>\n<h2>%s <span class=\"v %s\">%s</span></h2>\n", esc(s.Name), verdictClass(s.Verdict), esc(verdictText(s.Verdict)))
		if s.Description != "" {
			ew.printf("<p>%s</p>\n", esc(s.Description))
		}
		if s.Error != "" {
			ew.printf("<p class=\"err\">could not run: %s</p>\n", esc(s.Error))
		}
		for _, n := range []string{s.RunnerNote(), s.OverlapNote()} {
			if n != "" {
				ew.printf("<p>%s</p>\n", esc(n))
			}
		}
		charts := scenarioCharts(s)
		if len(charts) > 0 {
			ew.printf("<div class=\"charts\">\n")
			for _, c := range charts {
				ew.printf("%s\n", c)
			}
			ew.printf("</div>\n")
		}
		for _, t := range sec.tables {
			htmlTable(ew, t, "h3")
		}
		ew.printf("</section>\n")
	}
	ew.printf("</body>\n</html>\n")
	return ew.err
}

const pageCSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#1d2330;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #d8dce3;padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
.meta{color:#556}
table{border-collapse:collapse;margin:4px 0 12px;font-size:13px}
th,td{border:1px solid #d8dce3;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f7}
.v{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:#778}
.v.pass{background:#2f8f46}.v.fail{background:#c62828}.v.error{background:#8a4b08}.v.warn{background:#b7791f}
.err{color:#c62828}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid #e3e6eb;border-radius:6px;padding:6px}
figcaption{font-size:13px;font-weight:600;margin:0 0 2px 4px}
svg text{font:11px system-ui,sans-serif;fill:#445}
`

func verdictClass(v Verdict) string {
	switch v {
	case VerdictPass, VerdictFail, VerdictError, VerdictWarn:
		return string(v)
	}
	return "na"
}

func htmlTable(ew *errWriter, t textTable, heading string) {
	esc := html.EscapeString
	ew.printf("<%s>%s</%s>\n<table>\n<tr>", heading, esc(t.title), heading)
	for _, h := range t.header {
		ew.printf("<th>%s</th>", esc(h))
	}
	ew.printf("</tr>\n")
	for _, row := range t.rows {
		ew.printf("<tr>")
		for _, c := range row {
			switch c {
			case "FAIL", "ERROR":
				ew.printf("<td><span class=\"v fail\">%s</span></td>", esc(c))
			case "pass":
				ew.printf("<td><span class=\"v pass\">pass</span></td>")
			default:
				ew.printf("<td>%s</td>", esc(c))
			}
		}
		ew.printf("</tr>\n")
	}
	ew.printf("</table>\n")
}

// scenarioCharts draws what the scenario has data for.
func scenarioCharts(s *ScenarioResult) []string {
	var out []string
	if h := s.Metrics.Latency.Histogram; h != nil && h.Count() > 0 {
		out = append(out, latencyChart(h, s.Metrics.Latency))
	}
	if tl := s.Timeline; len(tl.Points) > 0 {
		// Each timeline point is a whole step: draw it as a flat segment across the step.
		step := tl.Step().Seconds()
		var xs, open, rate []float64
		for i, p := range tl.Points {
			for _, x := range []float64{float64(i) * step, float64(i+1) * step} {
				xs = append(xs, x)
				open = append(open, float64(p.Open))
				rate = append(rate, float64(p.Events)/step)
			}
		}
		out = append(out,
			lineChart("Streams open", xs, open, colorOpen, fmtNumber),
			lineChart("Events per second", xs, rate, colorEvents, fmtNumber))
	}
	if len(s.Server.Samples) > 0 {
		origin := s.Server.Samples[0].Time
		for _, m := range []struct {
			name, title, color string
			format             func(float64) string
		}{
			{ServerGoroutines, "Server goroutines", colorGoroutines, fmtNumber},
			{ServerRSS, "Server memory (RSS)", colorMemory, fmtBytes},
		} {
			var xs, ys []float64
			for _, p := range s.Server.Samples {
				if v, ok := p.Values[m.name]; ok {
					xs = append(xs, p.Time.Sub(origin).Seconds())
					ys = append(ys, v)
				}
			}
			if len(ys) > 0 {
				out = append(out, lineChart(m.title, xs, ys, m.color, m.format))
			}
		}
	}
	return out
}

// Chart geometry: a plot area inside a fixed viewBox, with room for axis labels.
const (
	chartW, chartH          = 560, 220
	plotL, plotR            = 64, 548
	plotT, plotB            = 12, 188
	plotWidth, plotHeight   = plotR - plotL, plotB - plotT
	histogramBins           = 40
	svgOpen                 = `<svg viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`
	latencyTitle            = "Delivery latency distribution"
	latencyMarkerDashLength = 4
)

// niceMax rounds v up to 1, 2 or 5 times a power of ten so axis labels stay readable.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
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

// niceAxisMax is niceMax in the unit the labels use: binary for bytes, so the axis reads
// 16 MiB rather than 19.1 MiB.
func niceAxisMax(v float64, yFmt func(float64) string) float64 {
	if strings.HasSuffix(yFmt(1024), "KiB") {
		scale := 1.0
		for v/scale >= 1024 {
			scale *= 1024
		}
		return niceMax(v/scale) * scale
	}
	return niceMax(v)
}

// axes draws the frame, three horizontal grid lines with labels, and x labels.
func axes(b *strings.Builder, yMax float64, yFmt func(float64) string, xLabels [3]string) {
	esc := html.EscapeString
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#fbfcfd" stroke="#c9ced6"/>`, plotL, plotT, plotWidth, plotHeight)
	for i := 0; i <= 2; i++ {
		y := float64(plotB) - float64(i)*plotHeight/2
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e3e6eb"/>`, plotL, y, plotR, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, plotL-6, y+4, esc(yFmt(yMax*float64(i)/2)))
	}
	anchors := [3]string{"start", "middle", "end"}
	for i, l := range xLabels {
		x := plotL + i*plotWidth/2
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="%s">%s</text>`, x, plotB+16, anchors[i], esc(l))
	}
}

// lineChart draws ys over xs (seconds) as a filled line.
func lineChart(title string, xs, ys []float64, color string, yFmt func(float64) string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<figure><figcaption>%s</figcaption>", html.EscapeString(title))
	fmt.Fprintf(&b, svgOpen, chartW, chartH, chartW, chartH, html.EscapeString(title))
	yMax, xMax := 0.0, 0.0
	for i := range ys {
		yMax = math.Max(yMax, ys[i])
		xMax = math.Max(xMax, xs[i])
	}
	yMax = niceAxisMax(yMax, yFmt)
	if xMax <= 0 {
		xMax = 1
	}
	sec := func(v float64) string { return fmtDuration(time.Duration(v * float64(time.Second))) }
	axes(&b, yMax, yFmt, [3]string{"0s", sec(xMax / 2), sec(xMax)})
	pts := make([]string, len(ys))
	for i := range ys {
		x := plotL + xs[i]/xMax*plotWidth
		y := plotB - ys[i]/yMax*plotHeight
		pts[i] = fmt.Sprintf("%.1f,%.1f", x, y)
	}
	if len(pts) == 1 {
		// One reading: a short flat segment, so it is visible.
		pts = append(pts, fmt.Sprintf("%.1f,%s", plotL+float64(plotWidth)/60, strings.Split(pts[0], ",")[1]))
	}
	first, last := strings.Split(pts[0], ","), strings.Split(pts[len(pts)-1], ",")
	fmt.Fprintf(&b, `<polygon points="%s,%d %s %s,%d" fill="%s" fill-opacity="0.18"/>`, first[0], plotB, strings.Join(pts, " "), last[0], plotB, color)
	fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5" stroke-linejoin="round"/>`, strings.Join(pts, " "), color)
	b.WriteString("</svg></figure>")
	return b.String()
}

// latencyChart draws the latency histogram re-binned into histogramBins bars on a
// logarithmic axis (linear when the range is narrow), with p50 and p99 marked.
func latencyChart(h *Histogram, s DurationStats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<figure><figcaption>%s</figcaption>", latencyTitle)
	fmt.Fprintf(&b, svgOpen, chartW, chartH, chartW, chartH, latencyTitle)
	lo, hi := h.Min(), h.Max()
	if lo <= 0 {
		lo = math.Max(1, hi/1e6) // nanoseconds: zero latencies go to the first bar
	}
	logScale := hi/lo > 4
	if hi <= lo {
		hi = lo * 1.01
	}
	pos := func(v float64) float64 { // 0..1 along the x axis
		v = math.Min(math.Max(v, lo), hi)
		if logScale {
			return math.Log(v/lo) / math.Log(hi/lo)
		}
		return (v - lo) / (hi - lo)
	}
	var bins [histogramBins]uint64
	for _, bk := range h.Buckets() {
		v := bk.Upper
		if bk.Lower > 0 {
			v = math.Sqrt(bk.Lower * bk.Upper)
		}
		i := int(pos(v) * histogramBins)
		bins[min(max(i, 0), histogramBins-1)] += bk.Count
	}
	var most uint64
	for _, c := range bins {
		most = max(most, c)
	}
	yMax := niceMax(float64(most))
	ns := func(v float64) string { return fmtDuration(time.Duration(v)) }
	mid := lo + (hi-lo)/2
	if logScale {
		mid = math.Sqrt(lo * hi)
	}
	axes(&b, yMax, fmtNumber, [3]string{ns(lo), ns(mid), ns(hi)})
	barW := float64(plotWidth) / histogramBins
	for i, c := range bins {
		if c == 0 {
			continue
		}
		bh := float64(c) / yMax * plotHeight
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`,
			plotL+float64(i)*barW+1, plotB-bh, barW-2, bh, colorLatency)
	}
	for i, m := range []struct {
		label string
		ms    float64
	}{{"p50", s.P50MS}, {"p99", s.P99MS}} {
		x := plotL + pos(m.ms*1e6)*plotWidth
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" stroke-dasharray="%d"/>`, x, plotT, x, plotB, latencyMarkerDashLength)
		// Labels on separate lines, on the side of the marker with room for them.
		tx, anchor := x+3, "start"
		if x > plotR-90 {
			tx, anchor = x-3, "end"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="%s">%s %s</text>`, tx, plotT+12+14*i, anchor, m.label, html.EscapeString(fmtMS(m.ms)))
	}
	b.WriteString("</svg></figure>")
	return b.String()
}
