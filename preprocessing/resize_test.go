package preprocessing

import (
	"image"
	"math"
	"testing"
)

// pilBicubic is a float64 transcription of Pillow's separable resampling
// (ImagingResample with the bicubic filter, a = −0.5, support widened by the
// scale when downscaling), the resize Hugging Face's processor calls. It is
// the fidelity reference for the Go resizers.
func pilBicubic(src *image.RGBA, w, h int) [][3]float64 {
	b := src.Bounds()
	inW, inH := b.Dx(), b.Dy()
	cubic := func(x float64) float64 {
		const a = -0.5
		x = math.Abs(x)
		switch {
		case x < 1:
			return ((a+2)*x-(a+3))*x*x + 1
		case x < 2:
			return (((x-5)*x+8)*x - 4) * a
		}
		return 0
	}
	// weights returns, per output index, the first input index and weights.
	weights := func(in, out int) ([]int, [][]float64) {
		scale := float64(in) / float64(out)
		filterScale := math.Max(scale, 1)
		support := 2 * filterScale
		starts, ws := make([]int, out), make([][]float64, out)
		for i := range out {
			center := (float64(i) + 0.5) * scale
			lo := max(int(center-support+0.5), 0)
			hi := min(int(center+support+0.5), in)
			var sum float64
			for k := lo; k < hi; k++ {
				v := cubic((float64(k) - center + 0.5) / filterScale)
				ws[i] = append(ws[i], v)
				sum += v
			}
			for k := range ws[i] {
				ws[i][k] /= sum
			}
			starts[i] = lo
		}
		return starts, ws
	}
	xs, xw := weights(inW, w)
	ys, yw := weights(inH, h)
	tmp := make([][3]float64, w*inH)
	for y := range inH {
		for x := range w {
			var acc [3]float64
			for k, wt := range xw[x] {
				o := y*src.Stride + 4*(xs[x]+k)
				for c := range 3 {
					acc[c] += wt * float64(src.Pix[o+c])
				}
			}
			tmp[y*w+x] = acc
		}
	}
	out := make([][3]float64, w*h)
	for y := range h {
		for x := range w {
			var acc [3]float64
			for k, wt := range yw[y] {
				for c := range 3 {
					acc[c] += wt * tmp[(ys[y]+k)*w+x][c]
				}
			}
			for c := range 3 {
				acc[c] = math.Round(math.Max(0, math.Min(255, acc[c])))
			}
			out[y*w+x] = acc
		}
	}
	return out
}

// psnr compares a resized *image.RGBA or *image.Gray with the reference.
func psnr(img image.Image, ref [][3]float64) float64 {
	var se float64
	w := img.Bounds().Dx()
	for i, r := range ref {
		for c := range 3 {
			var v uint8
			switch m := img.(type) {
			case *image.RGBA:
				v = m.Pix[(i/w)*m.Stride+4*(i%w)+c]
			case *image.Gray:
				v = m.Pix[(i/w)*m.Stride+i%w]
			}
			d := float64(v) - r[c]
			se += d * d
		}
	}
	mse := se / float64(3*len(ref))
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

// TestResizerFidelity measures how close each resizer comes to Pillow's
// bicubic on real images, downscaling and upscaling, and checks the default
// is the closer one.
func TestResizerFidelity(t *testing.T) {
	cases := []struct {
		path string
		w, h int
	}{
		{sharedData(t, "bccd/images/BloodImage_00000.jpg"), 224, 168},
		{sharedData(t, "busi/images/benign_204.png"), 252, 252},
		{sharedData(t, "pneumoniamnist/train/pneumoniamnist_train_00000.png"), 56, 56},
		{sharedData(t, "bccd/images/BloodImage_00001.jpg"), 644, 476},
	}
	var total [2]float64
	for _, c := range cases {
		img, _, err := DecodeFile(c.path, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		src := image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
		rgb := toRGB(img)
		for y := 0; y < src.Rect.Dy(); y++ {
			for x := 0; x < src.Rect.Dx(); x++ {
				src.Set(x, y, rgb.At(x, y))
			}
		}
		ref := pilBicubic(src, c.w, c.h)
		for i, name := range []string{ResizerCatmullRom, ResizerNfntBicubic} {
			p := psnr(resizeTo(rgb, c.w, c.h, name), ref)
			total[i] += p
			t.Logf("%s → %dx%d: %s PSNR %.2f dB vs Pillow bicubic", c.path, c.w, c.h, name, p)
			if p < 30 {
				t.Errorf("%s: %s PSNR %.2f dB, want ≥ 30", c.path, name, p)
			}
		}
	}
	if total[0] < total[1] {
		t.Errorf("default %s (mean %.2f dB) is further from Pillow than %s (%.2f dB)",
			ResizerCatmullRom, total[0]/4, ResizerNfntBicubic, total[1]/4)
	}
}
