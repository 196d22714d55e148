package bench

import (
	"bytes"
	"errors"
	"image/color"
	"image/png"
	"testing"
)

func TestChart(t *testing.T) {
	reports := []Report{
		{Name: "raw", Mode: "direct", Clients: 2, BatchSize: 16, Throughput: 100, P50MS: 20, P95MS: 30},
		{Name: "server 1 client", Mode: "closed", Clients: 1, Throughput: 50, P50MS: 5, P95MS: 6},
		{Name: "server 32 clients", Mode: "closed", Clients: 32, Throughput: 25, P50MS: 40, P95MS: 60},
	}
	var buf bytes.Buffer
	if err := WritePNG(&buf, reports); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dx() != chartWidth || b.Dy() != 2*(chartTitleH+3*chartRowH+chartGap)+chartGap {
		t.Fatalf("chart %v", b)
	}
	// barEnd is the x where row i's bar of panel k stops.
	barEnd := func(k, i int) int {
		y := chartGap + k*(chartTitleH+3*chartRowH+chartGap) + chartTitleH + i*chartRowH + chartRowH/2
		x := chartBarL
		for x < chartBarR && img.At(x, y) != color.Color(chartBG) && colorOf(img.At(x, y)) != chartBG {
			x++
		}
		return x
	}
	full, half, quarter := barEnd(0, 0), barEnd(0, 1), barEnd(0, 2)
	if full != chartBarR || abs(half-(chartBarL+chartBarR)/2) > 1 || abs(quarter-(3*chartBarL+chartBarR)/4) > 1 {
		t.Errorf("throughput bars end at %d, %d, %d: want full, half and a quarter of [%d, %d]", full, half, quarter, chartBarL, chartBarR)
	}
	if got := colorOf(img.At(chartBarL+2, chartGap+chartTitleH+chartRowH/2)); got != chartRawBar {
		t.Errorf("direct run bar colour %v, want grey %v", got, chartRawBar)
	}
	if _, err := Chart(nil); !errors.Is(err, ErrNoRuns) {
		t.Errorf("no runs: err %v", err)
	}
}

func colorOf(c color.Color) color.RGBA {
	r, g, b, a := c.RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestChartStages checks the stage panel: present only when runs carry
// stage timing, one stacked bar per server run whose parts are in
// proportion, none for a direct run.
func TestChartStages(t *testing.T) {
	reports := []Report{
		{Name: "raw", Mode: "direct", Clients: 2, BatchSize: 16, Throughput: 100, P50MS: 20, P95MS: 30},
		{Name: "server 1 client", Mode: "closed", Clients: 1, Throughput: 50, P50MS: 5, P95MS: 6,
			Stages: Stages{Responses: 10, DecodeMS: 1, PreprocessMS: 1, QueueMS: 2, ModelMS: 4, ServerOtherMS: 0}},
	}
	img, err := Chart(reports)
	if err != nil {
		t.Fatal(err)
	}
	panelH := chartTitleH + 2*chartRowH
	if want := 3*(panelH+chartGap) + chartGap; img.Bounds().Dy() != want {
		t.Fatalf("chart height %d, want %d (three panels)", img.Bounds().Dy(), want)
	}
	top := chartGap + 2*(panelH+chartGap) + chartTitleH
	at := func(row int, f float64) color.RGBA {
		x := chartBarL + int(f*float64(chartBarR-chartBarL))
		return colorOf(img.At(x, top+row*chartRowH+chartRowH/2))
	}
	// 8 ms in all: decode to 1/8, preprocess to 2/8, queue to 4/8, model to the end.
	for _, c := range []struct {
		f    float64
		want color.RGBA
	}{{0.06, chartStageBars[0]}, {0.19, chartStageBars[1]}, {0.4, chartStageBars[2]}, {0.9, chartStageBars[3]}} {
		if got := at(1, c.f); got != c.want {
			t.Errorf("server bar at %.2f: colour %v, want %v", c.f, got, c.want)
		}
	}
	if got := at(0, 0.5); got != chartBG {
		t.Errorf("direct run has a stage bar (colour %v)", got)
	}
}
