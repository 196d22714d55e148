package pipeline

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// series is one line of a chart: y values at x = X0, X0+1, ….
type series struct {
	Name string
	Y    []float64
}

// chart is a line chart drawn with image/draw and basicfont (no plotting
// dependency), like bench/accuracy's bar chart.
type chart struct {
	Title, XLabel, YLabel string
	X0                    int // x of each series' first point
	Series                []series
}

// Chart geometry, in pixels.
const (
	chartW, chartH = 800, 480
	padL, padR     = 60, 220 // room for the y axis and the legend
	padT, padB     = 30, 40
)

var palette = []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}}

// bounds returns the data ranges (x from X0; y padded when flat).
func (c chart) bounds() (xmax int, ylo, yhi float64) {
	ylo, yhi = math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		xmax = max(xmax, len(s.Y))
		for _, y := range s.Y {
			if !math.IsNaN(y) && !math.IsInf(y, 0) {
				ylo, yhi = math.Min(ylo, y), math.Max(yhi, y)
			}
		}
	}
	if math.IsInf(ylo, 1) {
		ylo, yhi = 0, 1
	}
	if yhi-ylo < 1e-9 {
		ylo, yhi = ylo-1, yhi+1
	}
	return xmax, ylo, yhi
}

// png renders the chart; an empty chart is a frame with "no data".
func (c chart) png() ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	black := color.RGBA{0, 0, 0, 255}
	text(img, padL, 18, c.Title, black)
	x0, y0, x1, y1 := padL, chartH-padB, chartW-padR, padT
	line(img, x0, y0, x1, y0, black)
	line(img, x0, y0, x0, y1, black)
	xmax, ylo, yhi := c.bounds()
	text(img, x1-60, chartH-8, c.XLabel, black)
	text(img, 4, y1+4, c.YLabel, black)
	text(img, 4, y1+20, fmt.Sprintf("%.3g", yhi), black)
	text(img, 4, y0, fmt.Sprintf("%.3g", ylo), black)
	text(img, x0, y0+16, fmt.Sprint(c.X0), black)
	text(img, x1-20, y0+16, fmt.Sprint(c.X0+max(xmax-1, 0)), black)
	if xmax == 0 {
		text(img, (x0+x1)/2-30, (y0+y1)/2, "no data", black)
	}
	px := func(i int) int {
		if xmax <= 1 {
			return (x0 + x1) / 2
		}
		return x0 + i*(x1-x0)/(xmax-1)
	}
	py := func(y float64) int { return y0 - int(math.Round((y-ylo)/(yhi-ylo)*float64(y0-y1))) }
	for si, s := range c.Series {
		col := palette[si%len(palette)]
		for i, y := range s.Y {
			if math.IsNaN(y) || math.IsInf(y, 0) {
				continue
			}
			fill(img, image.Rect(px(i)-2, py(y)-2, px(i)+3, py(y)+3), col)
			if i > 0 && !math.IsNaN(s.Y[i-1]) && !math.IsInf(s.Y[i-1], 0) {
				line(img, px(i-1), py(s.Y[i-1]), px(i), py(y), col)
			}
		}
		ly := padT + 16*si
		fill(img, image.Rect(x1+10, ly-6, x1+22, ly+2), col)
		text(img, x1+28, ly+2, s.Name, black)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("pipeline: encode chart: %w", err)
	}
	return buf.Bytes(), nil
}

// line draws a straight line (DDA).
func line(img *image.RGBA, xa, ya, xb, yb int, c color.Color) {
	n := max(abs(xb-xa), abs(yb-ya), 1)
	for i := 0; i <= n; i++ {
		img.Set(xa+(xb-xa)*i/n, ya+(yb-ya)*i/n, c)
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, &image.Uniform{C: c}, image.Point{}, draw.Src)
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: &image.Uniform{C: c}, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
