package train

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Curve geometry, in pixels.
const (
	curveWidth  = 720
	panelHeight = 200
	plotLeft    = 70
	plotRight   = curveWidth - 20
	plotTop     = 24
	plotBottom  = panelHeight - 24
)

var (
	curveBG   = color.RGBA{255, 255, 255, 255}
	curveText = color.RGBA{20, 20, 20, 255}
	curveGrid = color.RGBA{225, 225, 225, 255}
	curveLine = []color.RGBA{{66, 133, 244, 255}, {219, 68, 55, 255}, {15, 157, 88, 255}, {171, 71, 188, 255}}
)

// Curves draws one panel per metric key (loss, reward, …) against the step,
// stacked vertically, each with its range labelled. Keys without values are
// skipped; it is an error wrapping ErrConfig when none has values.
func (rc *Recorder) Curves(keys ...string) (*image.RGBA, error) {
	var panels []string
	for _, k := range keys {
		if xs, _ := rc.Series(k); len(xs) > 0 {
			panels = append(panels, k)
		}
	}
	if len(panels) == 0 {
		return nil, fmt.Errorf("%w: no values for curves %v", ErrConfig, keys)
	}
	img := image.NewRGBA(image.Rect(0, 0, curveWidth, panelHeight*len(panels)))
	draw.Draw(img, img.Bounds(), &image.Uniform{curveBG}, image.Point{}, draw.Src)
	for i, k := range panels {
		xs, ys := rc.Series(k)
		drawPanel(img, i*panelHeight, k, xs, ys, curveLine[i%len(curveLine)])
	}
	return img, nil
}

// WriteCurves encodes Curves(keys...) as PNG.
func (rc *Recorder) WriteCurves(w io.Writer, keys ...string) error {
	img, err := rc.Curves(keys...)
	if err != nil {
		return err
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("train: curves: %w", err)
	}
	return nil
}

func drawPanel(img *image.RGBA, top int, title string, xs, ys []float64, c color.RGBA) {
	x0, x1 := xs[0], xs[len(xs)-1]
	y0, y1 := ys[0], ys[0]
	for _, y := range ys {
		y0, y1 = math.Min(y0, y), math.Max(y1, y)
	}
	if x1 == x0 {
		x1 = x0 + 1
	}
	if y1 == y0 {
		y0, y1 = y0-1, y1+1
	}
	px := func(x float64) int { return plotLeft + int((x-x0)/(x1-x0)*float64(plotRight-plotLeft)) }
	py := func(y float64) int { return top + plotBottom - int((y-y0)/(y1-y0)*float64(plotBottom-plotTop)) }
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		y := py(y0 + f*(y1-y0))
		for x := plotLeft; x <= plotRight; x++ {
			img.Set(x, y, curveGrid)
		}
	}
	for y := top + plotTop; y <= top+plotBottom; y++ {
		img.Set(plotLeft, y, curveText)
	}
	for i := 1; i < len(xs); i++ {
		line(img, px(xs[i-1]), py(ys[i-1]), px(xs[i]), py(ys[i]), c)
	}
	if len(xs) == 1 {
		img.Set(px(xs[0]), py(ys[0]), c)
	}
	label(img, plotLeft, top+16, fmt.Sprintf("%s (last %.4g)", title, ys[len(ys)-1]))
	label(img, 4, py(y1)+4, fmt.Sprintf("%.4g", y1))
	label(img, 4, py(y0)+4, fmt.Sprintf("%.4g", y0))
	label(img, plotLeft, top+plotBottom+16, fmt.Sprintf("step %g", x0))
	label(img, plotRight-70, top+plotBottom+16, fmt.Sprintf("step %g", x1))
}

// line draws a segment with Bresenham's algorithm.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

func label(img *image.RGBA, x, y int, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(curveText), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
