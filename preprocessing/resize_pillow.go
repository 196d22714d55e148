package preprocessing

import (
	"image"
	"math"
)

// Pillow's bicubic resampling (ImagingResample in libImaging/Resample.c),
// ported exactly for 8-bit images: a separable filter, horizontal pass
// first into an 8-bit intermediate holding only the rows the vertical pass
// reads, then the vertical pass; weights as 22-bit fixed-point integers
// (Pillow's PRECISION_BITS = 32 − 8 − 2), accumulated in int32 from a
// rounding bias of one half and clipped to 0…255. This is the resize
// Hugging Face's Qwen2-VL processor runs (PIL's Image.resize with
// Resampling.BICUBIC and no reducing_gap).

// pilPrecisionBits is Pillow's fixed-point precision for 8-bit images.
const pilPrecisionBits = 32 - 8 - 2

// pilKernel is the separable filter of one axis, precomputed for one
// (input, output) length pair.
type pilKernel struct {
	start  []int   // per output index, the first input index it reads
	count  []int   // per output index, how many input indices it reads
	stride int     // coefficients per output index in coeffs (the widest count)
	coeffs []int32 // fixed-point weights, stride per output index
}

// pilCubic is Pillow's bicubic filter (a = −0.5, support 2).
func pilCubic(x float64) float64 {
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

// newPilKernel computes Pillow's precompute_coeffs followed by
// normalize_coeffs_8bpc for resampling in input samples to out: when
// downscaling the filter widens by the scale, each output's weights are
// normalised to sum to one, then rounded half away from zero to
// pilPrecisionBits fixed point.
func newPilKernel(in, out int) pilKernel {
	scale := float64(in) / float64(out)
	filterScale := max(scale, 1)
	support := 2 * filterScale
	stride := int(math.Ceil(support))*2 + 1
	k := pilKernel{start: make([]int, out), count: make([]int, out), stride: stride, coeffs: make([]int32, out*stride)}
	w := make([]float64, stride)
	for i := range out {
		center := (float64(i) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		n := hi - lo
		var sum float64
		for j := range n {
			w[j] = pilCubic((float64(j+lo) - center + 0.5) / filterScale)
			sum += w[j]
		}
		c := k.coeffs[i*stride : i*stride+n]
		for j := range n {
			v := w[j]
			if sum != 0 {
				v /= sum
			}
			if v < 0 {
				c[j] = int32(-0.5 + v*(1<<pilPrecisionBits))
			} else {
				c[j] = int32(0.5 + v*(1<<pilPrecisionBits))
			}
		}
		k.start[i], k.count[i] = lo, n
	}
	return k
}

// clip8 turns a fixed-point accumulator into an 8-bit level.
func clip8(v int32) uint8 {
	v >>= pilPrecisionBits
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v)
}

// pilResize resamples src (a *image.Gray or *image.RGBA with its origin at
// (0, 0), opaque) to w×h as Pillow's bicubic does. The result has the
// same type as src.
func pilResize(src image.Image, w, h int) image.Image {
	var pix []uint8
	var stride, ch int
	var inW, inH int
	switch s := src.(type) {
	case *image.Gray:
		pix, stride, ch, inW, inH = s.Pix, s.Stride, 1, s.Rect.Dx(), s.Rect.Dy()
	case *image.RGBA:
		pix, stride, ch, inW, inH = s.Pix, s.Stride, 4, s.Rect.Dx(), s.Rect.Dy()
	default:
		panic("preprocessing: pilResize wants *image.Gray or *image.RGBA")
	}
	kv := newPilKernel(inH, h)
	// Rows of the source the vertical pass reads.
	first, last := 0, inH
	if h != inH {
		first, last = kv.start[0], kv.start[h-1]+kv.count[h-1]
	}
	if w != inW {
		kh := newPilKernel(inW, w)
		tmp := make([]uint8, (last-first)*w*ch)
		for y := first; y < last; y++ {
			row := pix[y*stride : y*stride+inW*ch]
			out := tmp[(y-first)*w*ch : (y-first+1)*w*ch]
			if ch == 1 {
				pilRowGray(out, row, &kh)
			} else {
				pilRowRGBA(out, row, &kh)
			}
		}
		pix, stride, inW = tmp, w*ch, w
		for i := range kv.start {
			kv.start[i] -= first
		}
	} else if first > 0 {
		pix = pix[first*stride:]
		for i := range kv.start {
			kv.start[i] -= first
		}
	}
	dst := make([]uint8, w*h*ch)
	if h != inH {
		pilColumns(dst, pix, stride, w*ch, &kv)
	} else {
		for y := range h {
			copy(dst[y*w*ch:(y+1)*w*ch], pix[y*stride:y*stride+w*ch])
		}
	}
	r := image.Rect(0, 0, w, h)
	if ch == 1 {
		return &image.Gray{Pix: dst, Stride: w, Rect: r}
	}
	for i := 3; i < len(dst); i += 4 {
		dst[i] = 255
	}
	return &image.RGBA{Pix: dst, Stride: 4 * w, Rect: r}
}

// pilRowGray resamples one greyscale row horizontally.
func pilRowGray(out, row []uint8, k *pilKernel) {
	for x := range out {
		n := k.count[x]
		c := k.coeffs[x*k.stride : x*k.stride+n]
		in := row[k.start[x] : k.start[x]+n]
		ss := int32(1) << (pilPrecisionBits - 1)
		for j, v := range in {
			ss += int32(v) * c[j]
		}
		out[x] = clip8(ss)
	}
}

// pilRowRGBA resamples one RGBA row horizontally (alpha is left for the
// caller: the images here are opaque).
func pilRowRGBA(out, row []uint8, k *pilKernel) {
	for x := 0; x < len(out)/4; x++ {
		n := k.count[x]
		c := k.coeffs[x*k.stride : x*k.stride+n]
		in := row[4*k.start[x] : 4*(k.start[x]+n)]
		r, g, b := int32(1)<<(pilPrecisionBits-1), int32(1)<<(pilPrecisionBits-1), int32(1)<<(pilPrecisionBits-1)
		for _, cj := range c {
			if len(in) < 4 {
				break
			}
			r += int32(in[0]) * cj
			g += int32(in[1]) * cj
			b += int32(in[2]) * cj
			in = in[4:]
		}
		o := out[4*x : 4*x+4]
		o[0], o[1], o[2] = clip8(r), clip8(g), clip8(b)
	}
}

// pilColumns runs the vertical pass: each output row is the weighted sum
// of the input rows its kernel names, accumulated a whole row at a time.
// rowLen is the number of samples per row in src and dst.
func pilColumns(dst, src []uint8, srcStride, rowLen int, k *pilKernel) {
	acc := make([]int32, rowLen)
	for y := range k.start {
		for i := range acc {
			acc[i] = 1 << (pilPrecisionBits - 1)
		}
		for j, cj := range k.coeffs[y*k.stride : y*k.stride+k.count[y]] {
			off := (k.start[y] + j) * srcStride
			row := src[off : off+rowLen]
			a := acc[:len(row)]
			for i, v := range row {
				a[i] += int32(v) * cj
			}
		}
		out := dst[y*rowLen : (y+1)*rowLen]
		for i, v := range acc {
			out[i] = clip8(v)
		}
	}
}
