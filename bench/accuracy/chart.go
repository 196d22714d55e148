package accuracy

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

	"github.com/medgr2/medgr2/data/eval"
)

// ErrEmpty reports a chart request for a report without rows.
var ErrEmpty = errors.New("accuracy: report has no rows")

// Chart geometry, in pixels.
const (
	chartWidth = 960
	lineHeight = 18
	labelWidth = 430 // left column for labels
	barLeft    = labelWidth + 10
	barRight   = chartWidth - 70
	topMargin  = 40
	maxLabel   = labelWidth / 7 // characters of the 7-px basic font
)

var (
	colBackground = color.RGBA{255, 255, 255, 255}
	colText       = color.RGBA{20, 20, 20, 255}
	colGrid       = color.RGBA{220, 220, 220, 255}
	colWhisker    = color.RGBA{40, 40, 40, 255}
	// colBars cycles per row so each system has its own colour.
	colBars = []color.RGBA{{66, 133, 244, 255}, {219, 68, 55, 255}, {244, 180, 0, 255}, {15, 157, 88, 255}, {171, 71, 188, 255}}
)

// chartLine is one bar of the chart.
type chartLine struct {
	label string
	score eval.Score
	row   int
	bold  bool // a row's overall bar
}

func (r Report) lines() []chartLine {
	var out []chartLine
	for i, row := range r.Rows {
		out = append(out, chartLine{label: row.Name + " on " + row.Benchmark, score: row.Summary.Overall, row: i, bold: true})
		for _, s := range row.Summary.ByModality {
			out = append(out, chartLine{label: "   " + s.Group, score: s, row: i})
		}
		for _, s := range row.Summary.ByQuestionType {
			out = append(out, chartLine{label: "   " + s.Group, score: s, row: i})
		}
	}
	return out
}

// Chart draws a horizontal bar chart: for every row its overall accuracy,
// then its accuracy per modality and per question type, each bar with its
// 95% interval as a whisker and its value in percent.
func (r Report) Chart() (*image.RGBA, error) {
	ls := r.lines()
	if len(ls) == 0 {
		return nil, ErrEmpty
	}
	h := topMargin + len(ls)*lineHeight + 20
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{C: colBackground}, image.Point{}, draw.Src)
	title := r.Title
	if title == "" {
		title = "Accuracy (95% Wilson interval)"
	}
	drawText(img, 10, 18, title, colText)
	for p := 0; p <= 100; p += 25 {
		x := xFor(float64(p) / 100)
		fill(img, image.Rect(x, topMargin-6, x+1, h-16), colGrid)
		drawText(img, x-10, topMargin-10, fmt.Sprintf("%d%%", p), colText)
	}
	for i, l := range ls {
		y := topMargin + i*lineHeight
		label := l.label
		if len(label) > maxLabel {
			label = label[:maxLabel-3] + "..."
		}
		drawText(img, 6, y+13, label, colText)
		c := colBars[l.row%len(colBars)]
		if !l.bold {
			c = color.RGBA{c.R/2 + 120, c.G/2 + 120, c.B/2 + 120, 255}
		}
		fill(img, image.Rect(barLeft, y+3, max(xFor(l.score.Accuracy), barLeft+1), y+lineHeight-3), c)
		lo, hi, mid := xFor(l.score.Low), xFor(l.score.High), y+lineHeight/2
		fill(img, image.Rect(lo, mid, hi+1, mid+1), colWhisker)
		fill(img, image.Rect(lo, mid-3, lo+1, mid+4), colWhisker)
		fill(img, image.Rect(hi, mid-3, hi+1, mid+4), colWhisker)
		drawText(img, barRight+8, y+13, fmt.Sprintf("%.1f%%", 100*l.score.Accuracy), colText)
	}
	return img, nil
}

// WritePNG encodes the chart as PNG.
func (r Report) WritePNG(w io.Writer) error {
	img, err := r.Chart()
	if err != nil {
		return err
	}
	return png.Encode(w, img)
}

func xFor(p float64) int {
	p = min(max(p, 0), 1)
	return barLeft + int(p*float64(barRight-barLeft)+0.5)
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, &image.Uniform{C: c}, image.Point{}, draw.Src)
}

func drawText(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: &image.Uniform{C: c}, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
