package preprocessing

import (
	"image"
	"math"
)

// Window is a DICOM VOI linear window (PS3.3 C.11.2.1.2): modality values
// in [Center-Width/2, Center+Width/2] map linearly onto the 8-bit grey range.
// A Width of 0 means "unset".
type Window struct {
	// Center is the window centre (level), in modality units (HU for CT).
	Center float64 `json:"center"`
	// Width is the window width, in modality units; values below 1 are
	// treated as 1, as the standard requires.
	Width float64 `json:"width"`
}

// Window sources reported in Info.WindowSource.
const (
	// WindowFromOptions: the caller's Options.Window.
	WindowFromOptions = "options"
	// WindowFromFile: the first Window Center/Width pair in the file.
	WindowFromFile = "file"
	// WindowFromCTDefault: no window in the file, modality CT; the soft
	// tissue window DefaultCTWindow is used.
	WindowFromCTDefault = "ct-default"
	// WindowFromFullRange: no window in the file and at most 8 stored bits;
	// stored values map to grey levels unchanged.
	WindowFromFullRange = "full-range"
	// WindowFromMinMax: no window in the file and more than 8 stored bits;
	// the frame's minimum and maximum modality values span the grey range.
	WindowFromMinMax = "min-max"
)

// DefaultCTWindow is the window used for CT images whose file carries none:
// a soft-tissue window, centre 40 HU, width 400 HU.
var DefaultCTWindow = Window{Center: 40, Width: 400}

// apply maps a modality value to a grey level in [0, 255] with the DICOM
// linear VOI function.
func (w Window) apply(x float64) uint8 {
	width := math.Max(w.Width, 1)
	lo := w.Center - 0.5 - (width-1)/2
	hi := w.Center - 0.5 + (width-1)/2
	switch {
	case x <= lo:
		return 0
	case x > hi:
		return 255
	case width == 1:
		return 255
	}
	y := ((x-(w.Center-0.5))/(width-1) + 0.5) * 255
	return uint8(math.Round(math.Max(0, math.Min(255, y))))
}

// minMaxWindow returns the window that maps min to 0 and max to 255.
func minMaxWindow(vals []float64) Window {
	if len(vals) == 0 {
		return Window{Center: 0.5, Width: 1}
	}
	lo, hi := vals[0], vals[0]
	for _, v := range vals[1:] {
		lo = math.Min(lo, v)
		hi = math.Max(hi, v)
	}
	return Window{Center: (lo+hi)/2 + 0.5, Width: hi - lo + 1}
}

// windowGray renders modality values (row-major, w×h) through win into an
// 8-bit grey image, inverting when invert is set (MONOCHROME1).
func windowGray(vals []float64, w, h int, win Window, invert bool) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i, v := range vals {
		y := win.apply(v)
		if invert {
			y = 255 - y
		}
		g.Pix[i] = y
	}
	return g
}
