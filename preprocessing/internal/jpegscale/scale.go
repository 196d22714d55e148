package jpegscale

import "image"

// This file holds what jpegscale adds to image/jpeg: writing each 8×8
// block at 1/2, 1/4 or 1/8 of its size.
//
// A component whose samples each cover ch×cv image pixels (2×2 for the
// chroma of 4:2:0) is reduced by sx = scale/ch horizontally and sy =
// scale/cv vertically, so that every component lands at the output size
// and the result is not subsampled. An output pixel o covers the image
// pixels [o·scale, o·scale+scale) on each axis, cut at the image's edge,
// and its value is the mean, rounded half up, of the samples image/jpeg
// would show at those pixels (image.YCbCr.At repeats each chroma sample
// over its ch×cv pixels). Inside the image every sample of an sx×sy group
// counts equally; in a block that crosses the right or bottom edge each
// sample counts as many times as it is seen by image pixels inside the
// image, so the padding the encoder added past the edge never enters.
//
// Groups of 2×2 and 4×4 samples (and 8×8 ones that may clip) take
// image/jpeg's inverse DCT, the clip, then the mean, which makes them
// exact. Computing those means straight from the coefficients instead (a
// separable 8→4 or 8→2 transform of the box-averaged DCT basis, for
// blocks that cannot clip) was measured on a 3000×2000 4:2:0 photograph,
// alternating the two in one process: 0.94–0.96 of the decode time at
// 1/2 and 0.76–0.81 at 1/4, for means within one level instead of exact.
// Not worth the exactness at 1/2, the default bundles' scale.

// scaled returns the reduction, 1 for the zero decoder.
func (d *decoder) scaled() int {
	if d.scale < 1 {
		return 1
	}
	return d.scale
}

// supports reports whether every component reduces by a whole number of
// samples at scale k (see Config.Supports).
func (d *decoder) supports(k int) bool {
	for i := range d.nComp {
		ch, cv := d.comp[0].h/d.comp[i].h, d.comp[0].v/d.comp[i].v
		if k%ch != 0 || k%cv != 0 {
			return false
		}
	}
	return true
}

// makeScaledImg allocates the reduced destination: the full-size MCU grid
// divided by the scale, cut to ⌈width/scale⌉×⌈height/scale⌉, one plane
// per component at that size (4:4:4 for three or four components).
func (d *decoder) makeScaledImg(mxx, myy int) {
	k := d.scaled()
	pw, ph := 8*d.comp[0].h*mxx/k, 8*d.comp[0].v*myy/k
	ow, oh := ScaledSize(d.width, d.height, k)
	if d.nComp == 1 {
		m := image.NewGray(image.Rect(0, 0, pw, ph))
		d.img1 = m.SubImage(image.Rect(0, 0, ow, oh)).(*image.Gray)
		return
	}
	m := image.NewYCbCr(image.Rect(0, 0, pw, ph), image.YCbCrSubsampleRatio444)
	d.img3 = m.SubImage(image.Rect(0, 0, ow, oh)).(*image.YCbCr)
	if d.nComp == 4 {
		d.blackPix = make([]byte, pw*ph)
		d.blackStride = pw
	}
}

// reconstructScaled writes the dequantized block b of component
// compIndex at (bx, by), in blocks, reduced by the decoder's scale.
func (d *decoder) reconstructScaled(b *block, bx, by, compIndex int) error {
	k := d.scaled()
	ch, cv := d.comp[0].h/d.comp[compIndex].h, d.comp[0].v/d.comp[compIndex].v
	sx, sy := k/ch, k/cv
	nx, ny := 8/sx, 8/sy // output pixels per block on each axis
	var dst []byte
	var stride int
	if d.nComp == 1 {
		dst, stride = d.img1.Pix, d.img1.Stride
	} else {
		switch compIndex {
		case 0:
			dst, stride = d.img3.Y, d.img3.YStride
		case 1:
			dst, stride = d.img3.Cb, d.img3.CStride
		case 2:
			dst, stride = d.img3.Cr, d.img3.CStride
		case 3:
			dst, stride = d.blackPix, d.blackStride
		default:
			return UnsupportedError("too many components")
		}
	}
	dst = dst[by*ny*stride+bx*nx:]
	edge := (bx+1)*8*ch > d.width || (by+1)*8*cv > d.height

	if sx == 8 && sy == 8 && !edge {
		if v, ok := dcOnly(b); ok {
			dst[0] = v
			return nil
		}
	}

	idct(b)
	// Level shift by +128 and clip to [0, 255], as reconstructBlock does.
	for i, c := range b {
		b[i] = min(max(c+128, 0), 255)
	}
	switch {
	case edge:
		d.averageEdge(b, dst, stride, bx, by, ch, cv)
	case sx == 1 && sy == 1:
		for y := range 8 {
			row := dst[y*stride : y*stride+8]
			for x, v := range b[y*8 : y*8+8] {
				row[x] = uint8(v)
			}
		}
	case sx == 2 && sy == 2:
		for oy := range 4 {
			r0, r1 := b[16*oy:16*oy+8], b[16*oy+8:16*oy+16]
			row := dst[oy*stride : oy*stride+4]
			for ox := range row {
				row[ox] = uint8((r0[2*ox] + r0[2*ox+1] + r1[2*ox] + r1[2*ox+1] + 2) >> 2)
			}
		}
	case sx == 4 && sy == 4:
		for oy := range 2 {
			var l, r int32
			for _, row := range [4][]int32{b[32*oy : 32*oy+8], b[32*oy+8 : 32*oy+16], b[32*oy+16 : 32*oy+24], b[32*oy+24 : 32*oy+32]} {
				l += row[0] + row[1] + row[2] + row[3]
				r += row[4] + row[5] + row[6] + row[7]
			}
			dst[oy*stride] = uint8((l + 8) >> 4)
			dst[oy*stride+1] = uint8((r + 8) >> 4)
		}
	default:
		average(b, dst, stride, sx, sy)
	}
	return nil
}

// average writes the means of the sx×sy groups of the block's 8×8
// samples b (0…255) to dst, rounded half up; sx and sy are powers of two
// up to 8.
func average(b *block, dst []byte, stride, sx, sy int) {
	lx, ly := log2(sx), log2(sy)
	shift := lx + ly
	half := int32(1) << shift >> 1
	nx := 8 >> lx
	for oy := range 8 >> ly {
		var sums [8]int32
		for y := oy * sy; y < (oy+1)*sy; y++ {
			row := (*[8]int32)(b[y*8 : y*8+8])
			for x, v := range row {
				sums[x>>lx&7] += v
			}
		}
		out := dst[oy*stride : oy*stride+nx]
		for ox := range out {
			out[ox] = uint8((sums[ox&7] + half) >> shift)
		}
	}
}

// log2 returns the base-2 logarithm of a power of two up to 8.
func log2(n int) uint {
	switch n {
	case 2:
		return 1
	case 4:
		return 2
	case 8:
		return 3
	}
	return 0
}

// dcOnly returns the block's mean sample from its DC term alone,
// round(DC/8)+128, exactly what the inverse DCT gives a block without AC
// terms, when no sample of the block can reach the 0 or 255 clip: a
// sample differs from the mean by at most the sum of |AC|/4 (each term's
// basis function is at most 1/4 in magnitude), plus 2 for the inverse
// DCT's fixed-point rounding. It reports false when a clip is possible,
// and the caller then runs the full inverse DCT.
func dcOnly(b *block) (uint8, bool) {
	var sum int64
	for _, c := range b[1:] {
		sum += int64(max(c, -c))
	}
	m := (int64(b[0]) + 4) >> 3
	dev := (sum+3)/4 + 2
	if m-dev < -128 || m+dev > 127 {
		return 0, false
	}
	return uint8(m + 128), true
}

// averageEdge writes the reduced samples of a block that crosses the
// image's right or bottom edge: each output pixel is the mean of the
// samples seen by the image pixels it covers that lie inside the image;
// output pixels wholly outside are left alone. b holds the block's 8×8
// samples (0…255); dst is the block's first output pixel.
func (d *decoder) averageEdge(b *block, dst []byte, stride, bx, by, ch, cv int) {
	k := d.scaled()
	wx, nx := edgeWeights(bx, ch, k, d.width)
	wy, ny := edgeWeights(by, cv, k, d.height)
	for oy := range ny {
		for ox := range nx {
			var sum, n int32
			for y, ay := range wy[oy] {
				if ay == 0 {
					continue
				}
				for x, ax := range wx[ox] {
					sum += ay * ax * b[y*8+x]
					n += ay * ax
				}
			}
			dst[oy*stride+ox] = uint8((sum + n/2) / n)
		}
	}
}

// edgeWeights returns, along one axis of block index bi whose samples
// each cover c image pixels, for each output pixel of the block the
// number of its image pixels inside [0, size) that see each of the
// block's 8 samples, and the number of output pixels with any.
func edgeWeights(bi, c, k, size int) (w [8][8]int32, n int) {
	per := 8 * c / k // output pixels per block
	first := bi * per
	for o := range per {
		lo := (first + o) * k
		hi := min(lo+k, size)
		if lo >= hi {
			break
		}
		for p := lo; p < hi; p++ {
			w[o][p/c-8*bi]++
		}
		n = o + 1
	}
	return w, n
}
