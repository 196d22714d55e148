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
