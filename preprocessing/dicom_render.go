package preprocessing

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/frame"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// renderNativeFrame maps an uncompressed frame to an 8-bit image, filling
// the window fields of info.
func renderNativeFrame(nf frame.INativeFrame, h dicomHeader, override Window, info *Info) (image.Image, error) {
	if nf.Rows() != h.rows || nf.Cols() != h.cols || nf.SamplesPerPixel() != h.samples {
		return nil, formatErrorf("dicom: frame is %dx%dx%d, header says %dx%dx%d",
			nf.Cols(), nf.Rows(), nf.SamplesPerPixel(), h.cols, h.rows, h.samples)
	}
	raw, err := rawSamples(nf, h.rows*h.cols*h.samples)
	if err != nil {
		return nil, err
	}
	if h.samples == 3 {
		if h.bitsAllocated != 8 {
			return nil, fmt.Errorf("%w: dicom colour with %d bits allocated", ErrUnsupported, h.bitsAllocated)
		}
		return colourImage(raw, h), nil
	}
	vals := modalityValues(raw, h)
	win, src := chooseWindow(h, override, vals)
	info.Window, info.WindowSource = win, src
	info.Inverted = h.photometric == "MONOCHROME1"
	return windowGray(vals, h.cols, h.rows, win, info.Inverted), nil
}

// rawSamples copies a native frame's samples into a uint32 slice of length n.
func rawSamples(nf frame.INativeFrame, n int) ([]uint32, error) {
	out := make([]uint32, n)
	switch s := nf.RawDataSlice().(type) {
	case []uint8:
		if len(s) < n {
			return nil, formatErrorf("dicom: frame holds %d samples, want %d", len(s), n)
		}
		for i := range out {
			out[i] = uint32(s[i])
		}
	case []uint16:
		if len(s) < n {
			return nil, formatErrorf("dicom: frame holds %d samples, want %d", len(s), n)
		}
		for i := range out {
			out[i] = uint32(s[i])
		}
	case []uint32:
		if len(s) < n {
			return nil, formatErrorf("dicom: frame holds %d samples, want %d", len(s), n)
		}
		copy(out, s)
	case []int:
		if len(s) < n {
			return nil, formatErrorf("dicom: frame holds %d samples, want %d", len(s), n)
		}
		for i := range out {
			out[i] = uint32(s[i])
		}
	default:
		return nil, fmt.Errorf("%w: dicom sample type %T", ErrUnsupported, s)
	}
	return out, nil
}

// modalityValues masks each stored value to BitsStored bits, sign-extends
// it when PixelRepresentation is 1, and applies the rescale slope and
// intercept.
func modalityValues(raw []uint32, h dicomHeader) []float64 {
	bits := uint(h.bitsStored)
	mask := uint64(1)<<bits - 1
	out := make([]float64, len(raw))
	for i, r := range raw {
		v := int64(uint64(r) & mask)
		if h.signed && bits > 0 && v&(1<<(bits-1)) != 0 {
			v -= 1 << bits
		}
		out[i] = float64(v)*h.slope + h.intercept
	}
	return out
}

// chooseWindow picks the VOI window: the caller's, the file's, the CT
// default, the identity for 8-bit data, or the frame's min-max.
func chooseWindow(h dicomHeader, override Window, vals []float64) (Window, string) {
	switch {
	case override.Width > 0:
		return override, WindowFromOptions
	case h.hasWindow:
		return h.window, WindowFromFile
	case h.modality == "CT":
		return DefaultCTWindow, WindowFromCTDefault
	case h.bitsStored <= 8 && h.slope == 1 && h.intercept == 0:
		return Window{Center: 128, Width: 256}, WindowFromFullRange
	default:
		return minMaxWindow(vals), WindowFromMinMax
	}
}

// colourImage builds an RGBA image from 8-bit RGB or YBR_FULL samples,
// interleaved (PlanarConfiguration 0) or planar (1).
func colourImage(raw []uint32, h dicomHeader) *image.RGBA {
	n := h.rows * h.cols
	img := image.NewRGBA(image.Rect(0, 0, h.cols, h.rows))
	for i := 0; i < n; i++ {
		var a, b, c uint8
		if h.planar == 1 {
			a, b, c = uint8(raw[i]), uint8(raw[n+i]), uint8(raw[2*n+i])
		} else {
			a, b, c = uint8(raw[3*i]), uint8(raw[3*i+1]), uint8(raw[3*i+2])
		}
		if h.photometric != "RGB" {
			a, b, c = color.YCbCrToRGB(a, b, c)
		}
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = a, b, c, 255
	}
	return img
}

// renderJPEGFrame decodes a baseline-JPEG frame. Greyscale frames go
// through the same rescale/window/inversion path as native 8-bit data;
// colour frames are returned as decoded.
func renderJPEGFrame(data []byte, h dicomHeader, override Window, lim Limits, info *Info) (image.Image, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, formatErrorf("dicom JPEG frame header: %v", err)
	}
	if cfg.Width != h.cols || cfg.Height != h.rows {
		return nil, formatErrorf("dicom JPEG frame is %dx%d, header says %dx%d", cfg.Width, cfg.Height, h.cols, h.rows)
	}
	if err := lim.checkPixels(cfg.Width, cfg.Height, 1); err != nil {
		return nil, err
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, formatErrorf("dicom JPEG frame: %v", err)
	}
	g, ok := img.(*image.Gray)
	if !ok || h.samples != 1 {
		return img, nil
	}
	raw := make([]uint32, len(g.Pix))
	for y := 0; y < h.rows; y++ {
		for x := 0; x < h.cols; x++ {
			raw[y*h.cols+x] = uint32(g.Pix[y*g.Stride+x])
		}
	}
	if h.bitsStored > 8 {
		h.bitsStored = 8 // baseline JPEG carries 8-bit samples
	}
	vals := modalityValues(raw, h)
	win, src := chooseWindow(h, override, vals)
	info.Window, info.WindowSource = win, src
	info.Inverted = h.photometric == "MONOCHROME1"
	return windowGray(vals, h.cols, h.rows, win, info.Inverted), nil
}

// firstString returns the first string value of an element, trimmed, or "".
func firstString(ds dicom.Dataset, t tag.Tag) string {
	el, err := ds.FindElementByTag(t)
	if err != nil || el.Value == nil {
		return ""
	}
	ss, ok := el.Value.GetValue().([]string)
	if !ok || len(ss) == 0 {
		return ""
	}
	return strings.Trim(ss[0], " \x00")
}

// firstInt returns the first integer value of an element (US/UL/SS/SL or an
// IS string).
func firstInt(ds dicom.Dataset, t tag.Tag) (int, bool) {
	el, err := ds.FindElementByTag(t)
	if err != nil || el.Value == nil {
		return 0, false
	}
	switch v := el.Value.GetValue().(type) {
	case []int:
		if len(v) > 0 {
			return v[0], true
		}
	case []string:
		if len(v) > 0 {
			n, err := strconv.Atoi(strings.TrimSpace(v[0]))
			return n, err == nil
		}
	}
	return 0, false
}

// firstFloat returns the first decimal-string value of an element. When
// the element is not at the top level it is looked up inside sequences, as
// enhanced multi-frame objects keep rescale and window attributes in the
// shared or per-frame functional groups (the first occurrence is used).
func firstFloat(ds dicom.Dataset, t tag.Tag) (float64, bool) {
	s := firstString(ds, t)
	if s == "" {
		if el, err := ds.FindElementByTagNested(t); err == nil && el.Value != nil {
			if ss, ok := el.Value.GetValue().([]string); ok && len(ss) > 0 {
				s = strings.TrimSpace(ss[0])
			}
		}
	}
	if s == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}
