package preprocessing

import (
	"image"
	"image/color"
	"image/draw"

	"github.com/nfnt/resize"
	xdraw "golang.org/x/image/draw"
)

// toRGB returns img as an opaque 8-bit image the resizers and the patcher
// read directly: *image.Gray stays greyscale (converted to RGB by channel
// replication later, which commutes with resizing), everything else becomes
// *image.RGBA composited over white, as Hugging Face's convert_to_rgb does
// for images with alpha. 16-bit samples are reduced to their high byte.
func toRGB(img image.Image) image.Image {
	b := img.Bounds()
	switch src := img.(type) {
	case *image.Gray:
		if b.Min == (image.Point{}) {
			return src
		}
	case *image.Gray16:
		g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				g.Pix[y*g.Stride+x] = uint8(src.Gray16At(b.Min.X+x, b.Min.Y+y).Y >> 8)
			}
		}
		return g
	case *image.YCbCr, *image.RGBA:
		if isOpaque(img) {
			dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
			draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Src)
			return dst
		}
	}
	if isGray(img) {
		g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(g, g.Bounds(), img, b.Min, draw.Src)
		return g
	}
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Over)
	return dst
}

// isOpaque reports whether img has no transparent pixels, using the
// image's own Opaque method when it has one.
func isOpaque(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	return false
}

// isGray reports colour models that carry only grey levels.
func isGray(img image.Image) bool {
	switch img.ColorModel() {
	case color.GrayModel, color.Gray16Model:
		return true
	}
	return false
}

// resizeTo resamples src (a *image.Gray or *image.RGBA from toRGB) to w×h
// with the named resizer. The result is a *image.Gray or *image.RGBA with
// its origin at (0, 0).
func resizeTo(src image.Image, w, h int, resizer string) image.Image {
	b := src.Bounds()
	if b.Dx() == w && b.Dy() == h {
		return src
	}
	if resizer == ResizerPillow {
		return pilResize(src, w, h)
	}
	if resizer == ResizerNfntBicubic {
		out := resize.Resize(uint(w), uint(h), src, resize.Bicubic)
		switch out.(type) {
		case *image.Gray, *image.RGBA:
			if out.Bounds().Min == (image.Point{}) {
				return out
			}
		}
		return toRGB(out)
	}
	if g, ok := src.(*image.Gray); ok {
		// x/image/draw has a fast path only for *image.RGBA destinations;
		// scale into RGBA and keep one channel.
		tmp := image.NewRGBA(image.Rect(0, 0, w, h))
		xdraw.CatmullRom.Scale(tmp, tmp.Bounds(), g, b, xdraw.Src, nil)
		out := image.NewGray(tmp.Bounds())
		for i := range out.Pix {
			out.Pix[i] = tmp.Pix[4*i]
		}
		return out
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), src, b, xdraw.Src, nil)
	return dst
}
