package preprocessing

import (
	"image"
	"math"
	"testing"
)

// pilBicubic8 is pilBicubic with Pillow's 8-bit intermediate: the
// horizontal pass is rounded and clipped to 0…255 before the vertical one,
// as ImagingResample stores it in an 8-bit image.
func pilBicubic8(src *image.RGBA, w, h int) [][3]float64 {
	return pilBicubicWith(src, w, h, true)
}

// pilBicubic is a float64 transcription of Pillow's separable resampling
// (ImagingResample with the bicubic filter, a = −0.5, support widened by the
// scale when downscaling), the resize Hugging Face's processor calls. It is
// the fidelity reference for the Go resizers.
func pilBicubic(src *image.RGBA, w, h int) [][3]float64 {
	return pilBicubicWith(src, w, h, false)
}

// pilBicubicWith is pilBicubic, with the intermediate rounded to 8 bits
// when round8 is set.
func pilBicubicWith(src *image.RGBA, w, h int, round8 bool) [][3]float64 {
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
			if round8 {
				for c := range 3 {
					acc[c] = math.Round(math.Max(0, math.Min(255, acc[c])))
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
	var total [3]float64
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
		for i, name := range []string{ResizerPillow, ResizerCatmullRom, ResizerNfntBicubic} {
			p := psnr(resizeTo(rgb, c.w, c.h, name), ref)
			total[i] += p
			t.Logf("%s → %dx%d: %s PSNR %.2f dB vs Pillow bicubic", c.path, c.w, c.h, name, p)
			if p < 30 {
				t.Errorf("%s: %s PSNR %.2f dB, want ≥ 30", c.path, name, p)
			}
		}
	}
	for i, name := range []string{ResizerCatmullRom, ResizerNfntBicubic} {
		if total[0] < total[i+1] {
			t.Errorf("default %s (mean %.2f dB) is further from Pillow than %s (%.2f dB)",
				ResizerPillow, total[0]/4, name, total[i+1]/4)
		}
	}
}

// parityCases are real images and target sizes that exercise downscaling
// on both axes (BCCD 640×480), mixed and identity axes, and upscaling
// (PneumoniaMNIST 28×28, BUSI).
func parityCases(t *testing.T) []struct {
	path string
	w, h int
} {
	return []struct {
		path string
		w, h int
	}{
		{sharedData(t, "bccd/images/BloodImage_00000.jpg"), 224, 168},
		{sharedData(t, "bccd/images/BloodImage_00001.jpg"), 644, 476},
		{sharedData(t, "bccd/images/BloodImage_00002.jpg"), 640, 252},
		{sharedData(t, "bccd/images/BloodImage_00003.jpg"), 308, 480},
		{sharedData(t, "busi/images/benign_204.png"), 252, 252},
		{sharedData(t, "busi/images/benign_204.png"), 980, 868},
		{sharedData(t, "pneumoniamnist/train/pneumoniamnist_train_00000.png"), 56, 56},
		{sharedData(t, "pneumoniamnist/train/pneumoniamnist_train_00001.png"), 84, 56},
	}
}

// TestPillowResizeParity checks that ResizerPillow is within one grey
// level of the float64 transcription of Pillow's bicubic on every sample
// of real images, for RGB and greyscale sources alike.
func TestPillowResizeParity(t *testing.T) {
	for _, c := range parityCases(t) {
		img, _, err := DecodeFile(c.path, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		rgb := toRGB(img)
		src := image.NewRGBA(image.Rect(0, 0, rgb.Bounds().Dx(), rgb.Bounds().Dy()))
		for y := 0; y < src.Rect.Dy(); y++ {
			for x := 0; x < src.Rect.Dx(); x++ {
				src.Set(x, y, rgb.At(x, y))
			}
		}
		ref := pilBicubic(src, c.w, c.h)
		inputs := []image.Image{src}
		if g, ok := rgb.(*image.Gray); ok {
			inputs = append(inputs, g)
		}
		for _, in := range inputs {
			got := resizeTo(in, c.w, c.h, ResizerPillow)
			if b := got.Bounds(); b != image.Rect(0, 0, c.w, c.h) {
				t.Fatalf("%s: bounds %v, want %dx%d", c.path, b, c.w, c.h)
			}
			worst, off := maxDiff(got, ref)
			worst8, off8 := maxDiff(got, pilBicubic8(src, c.w, c.h))
			t.Logf("%s %T → %dx%d: max |Δ| %d, %d samples off by one (8-bit intermediate: %d, %d)", c.path, in, c.w, c.h, worst, off, worst8, off8)
			if worst > 1 || worst8 > 1 {
				t.Errorf("%s %T → %dx%d: max |Δ| = %d grey levels (%d against the 8-bit intermediate), want ≤ 1", c.path, in, c.w, c.h, worst, worst8)
			}
		}
	}
}

// maxDiff returns the largest absolute difference between img (a
// *image.RGBA or *image.Gray) and ref over R, G and B, and how many
// samples differ at all.
func maxDiff(img image.Image, ref [][3]float64) (worst, off int) {
	w := img.Bounds().Dx()
	for i, r := range ref {
		for c := range 3 {
			var v uint8
			switch m := img.(type) {
			case *image.RGBA:
				v = m.Pix[(i/w)*m.Stride+4*(i%w)+c]
				if a := m.Pix[(i/w)*m.Stride+4*(i%w)+3]; a != 255 {
					return 256, off
				}
			case *image.Gray:
				v = m.Pix[(i/w)*m.Stride+i%w]
			}
			d := int(math.Abs(float64(v) - r[c]))
			worst = max(worst, d)
			if d > 0 {
				off++
			}
		}
	}
	return worst, off
}

// TestPilKernelSums checks that every fixed-point kernel row sums to one
// within rounding and stays inside the input, for up- and downscaling.
func TestPilKernelSums(t *testing.T) {
	for _, tt := range []struct{ in, out int }{{640, 224}, {28, 56}, {480, 476}, {7, 1}, {1, 9}, {1003, 1003}} {
		k := newPilKernel(tt.in, tt.out)
		for i := range tt.out {
			if k.start[i] < 0 || k.count[i] < 1 || k.start[i]+k.count[i] > tt.in {
				t.Fatalf("%d→%d: output %d reads [%d, %d) of %d", tt.in, tt.out, i, k.start[i], k.start[i]+k.count[i], tt.in)
			}
			var sum int64
			for _, c := range k.coeffs[i*k.stride : i*k.stride+k.count[i]] {
				sum += int64(c)
			}
			if d := sum - 1<<pilPrecisionBits; d < -int64(k.count[i]) || d > int64(k.count[i]) {
				t.Errorf("%d→%d: output %d weights sum to %d, want %d", tt.in, tt.out, i, sum, 1<<pilPrecisionBits)
			}
		}
	}
}
