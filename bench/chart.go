package bench

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// ErrNoRuns reports a chart of no runs.
var ErrNoRuns = errors.New("bench: no runs to chart")

// Chart geometry, in pixels (the basic font is 7×13).
const (
	chartWidth  = 900
	chartLabelW = 260 // left column for run labels
	chartBarL   = chartLabelW + 10
	chartBarR   = chartWidth - 110 // room for the value on the right
	chartRowH   = 20
	chartTitleH = 28
	chartGap    = 16 // between panels
)

var (
	chartBG     = color.RGBA{255, 255, 255, 255}
	chartText   = color.RGBA{20, 20, 20, 255}
	chartRawBar = color.RGBA{150, 150, 150, 255} // direct runs
	chartSrvBar = color.RGBA{66, 133, 244, 255}  // server runs
	chartLatBar = color.RGBA{219, 68, 55, 255}   // latency panel
	// chartStageBars colour the stages of a server request, in the order
	// of stageParts.
	chartStageBars = []color.RGBA{
		{244, 180, 0, 255},   // decode
		{255, 112, 67, 255},  // preprocess
		{171, 71, 188, 255},  // queue
		{66, 133, 244, 255},  // model
		{120, 144, 156, 255}, // other
	}
)

// stageParts are the stacked parts of the stage panel, in drawing order.
func stageParts(s Stages) []float64 {
	return []float64{s.DecodeMS, s.PreprocessMS, s.QueueMS, s.ModelMS, max(s.ServerOtherMS, 0)}
}

// chartPanel is one bar chart of a value per run.
type chartPanel struct {
	title string
	unit  string
	value func(Report) float64
}

// Chart draws two horizontal bar charts of reports, one bar per run in
// order: throughput (items/s) and p50 latency (ms, with the p95 marked).
// Direct runs are grey, server runs coloured. When runs carry the server's
// stage timing (Stages), a third panel stacks each server run's mean
// request time inside the server by stage.
func Chart(reports []Report) (*image.RGBA, error) {
	if len(reports) == 0 {
		return nil, ErrNoRuns
	}
	panels := []chartPanel{
		{"throughput (items/s)", "/s", func(r Report) float64 { return r.Throughput }},
		{"p50 latency (ms; | marks p95)", " ms", func(r Report) float64 { return r.P50MS }},
	}
	panelH := chartTitleH + len(reports)*chartRowH
	n := len(panels)
	staged := false
	for _, r := range reports {
		staged = staged || r.Stages.Responses > 0
	}
	if staged {
		n++
	}
	h := n*(panelH+chartGap) + chartGap
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{C: chartBG}, image.Point{}, draw.Src)
	for k, p := range panels {
		top := chartGap + k*(panelH+chartGap)
		drawChartText(img, 8, top+16, p.title)
		scale := 0.0
		for _, r := range reports {
			scale = max(scale, p.value(r))
			if k == 1 {
				scale = max(scale, r.P95MS)
			}
		}
		for i, r := range reports {
			y := top + chartTitleH + i*chartRowH
			drawChartText(img, 8, y+14, chartLabel(r))
			c := chartSrvBar
			if r.Mode == "direct" {
				c = chartRawBar
			}
			if k == 1 {
				c = chartLatBar
			}
			v := p.value(r)
			fillChart(img, image.Rect(chartBarL, y+3, max(barX(v, scale), chartBarL+1), y+chartRowH-3), c)
			if k == 1 {
				x := barX(r.P95MS, scale)
				fillChart(img, image.Rect(x, y+1, x+2, y+chartRowH-1), chartText)
			}
			drawChartText(img, chartBarR+8, y+14, fmt.Sprintf("%.1f%s", v, p.unit))
		}
	}
	if staged {
		drawStagePanel(img, chartGap+len(panels)*(panelH+chartGap), reports)
	}
	return img, nil
}

// drawStagePanel draws, from top, one stacked bar per server run: the mean
// decode, preprocess, queue, model and other time of its requests.
func drawStagePanel(img *image.RGBA, top int, reports []Report) {
	drawChartText(img, 8, top+16, "server time per request (ms)")
	x := chartBarL
	for k, name := range []string{"decode", "preprocess", "queue", "model", "other"} {
		fillChart(img, image.Rect(x, top+7, x+10, top+17), chartStageBars[k])
		drawChartText(img, x+14, top+16, name)
		x += 14 + 7*len(name) + 16
	}
	scale := 0.0
	for _, r := range reports {
		sum := 0.0
		for _, v := range stageParts(r.Stages) {
			sum += v
		}
		scale = max(scale, sum)
	}
	for i, r := range reports {
		y := top + chartTitleH + i*chartRowH
		drawChartText(img, 8, y+14, chartLabel(r))
		if r.Stages.Responses == 0 {
			continue
		}
		sum := 0.0
		for k, v := range stageParts(r.Stages) {
			x0 := barX(sum, scale)
			sum += v
			if x1 := barX(sum, scale); x1 > x0 {
				fillChart(img, image.Rect(x0, y+3, x1, y+chartRowH-3), chartStageBars[k])
			}
		}
		drawChartText(img, chartBarR+8, y+14, fmt.Sprintf("%.1f ms", sum))
	}
}

// WritePNG encodes Chart(reports) as PNG.
func WritePNG(w io.Writer, reports []Report) error {
	img, err := Chart(reports)
	if err != nil {
		return err
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("bench: chart: %w", err)
	}
	return nil
}

// chartLabel names a run and its concurrency.
func chartLabel(r Report) string {
	switch r.Mode {
	case "direct":
		return fmt.Sprintf("%s (%dxb%d)", r.Name, r.Clients, r.BatchSize)
	case "open":
		return fmt.Sprintf("%s (%g/s)", r.Name, r.Rate)
	}
	return fmt.Sprintf("%s (%d)", r.Name, r.Clients)
}

// barX maps v on [0, scale] to the bar area.
func barX(v, scale float64) int {
	if scale <= 0 {
		return chartBarL
	}
	f := min(max(v/scale, 0), 1)
	return chartBarL + int(f*float64(chartBarR-chartBarL)+0.5)
}

func fillChart(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, &image.Uniform{C: c}, image.Point{}, draw.Src)
}

func drawChartText(img *image.RGBA, x, y int, s string) {
	if n := chartLabelW / 7; x < chartLabelW && len(s) > n {
		s = s[:n-3] + "..."
	}
	d := font.Drawer{Dst: img, Src: &image.Uniform{C: chartText}, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
