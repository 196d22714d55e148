package preprocessing

import (
	"context"
	"fmt"
	"image"
)

// Pixels is one image in the vision encoder's input layout.
type Pixels struct {
	// Values is pixel_values, row-major [NumPatches, PatchDim].
	Values []float32
	// NumPatches is grid_t×grid_h×grid_w.
	NumPatches int
	// PatchDim is channels×TemporalPatchSize×PatchSize² (3·2·14·14 = 1176
	// for Qwen2-VL).
	PatchDim int
	// GridTHW is (grid_t, grid_h, grid_w) in patches: the image's row of
	// the encoder's grid_thw input.
	GridTHW [3]int64
	// MergeSize is the spatial merge edge the patches were laid out for.
	MergeSize int
	// Height and Width are the resized image size in pixels.
	Height, Width int
}

// ImageTokens returns the number of <|image_pad|> tokens the image takes
// in the prompt: NumPatches / MergeSize².
func (p *Pixels) ImageTokens() int {
	if p == nil || p.MergeSize == 0 {
		return 0
	}
	return p.NumPatches / (p.MergeSize * p.MergeSize)
}

// Batch is several images concatenated along the patch axis, as Qwen2-VL
// feeds them to the vision encoder.
type Batch struct {
	// Values is pixel_values, row-major [NumPatches, PatchDim], the images'
	// patches one after another.
	Values []float32
	// NumPatches is the total over all images.
	NumPatches int
	// PatchDim is the per-patch length, equal for every image.
	PatchDim int
	// GridTHW is grid_thw, one row per image.
	GridTHW [][3]int64
	// ImageTokens is the number of <|image_pad|> tokens of each image.
	ImageTokens []int
}

// ImageTokens returns the number of <|image_pad|> tokens an h×w image
// (before resizing) takes: (resized height/PatchSize)·(resized
// width/PatchSize)/MergeSize².
func (c Config) ImageTokens(h, w int) (int, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return 0, err
	}
	rh, rw, err := c.SmartResize(h, w)
	if err != nil {
		return 0, err
	}
	return (rh / c.PatchSize) * (rw / c.PatchSize) / (c.MergeSize * c.MergeSize), nil
}

// Process turns a decoded image into Qwen2-VL pixel_values exactly as
// Hugging Face's Qwen2VLImageProcessor lays them out: convert to RGB
// (greyscale replicated, alpha composited over white), resize to
// SmartResize's size with the configured bicubic resizer, rescale by
// RescaleFactor, normalise with ImageMean/ImageStd (in float32, as the
// reference does), repeat the frame TemporalPatchSize times, and flatten
// patches in the order of the reshape (t, tp, C, gh/m, m, p, gw/m, m, p) →
// transpose (0, 3, 6, 4, 7, 2, 1, 5, 8). Unset Config fields take their
// defaults.
func (c Config) Process(img image.Image) (*Pixels, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if img == nil {
		return nil, fmt.Errorf("%w: nil image", ErrEmpty)
	}
	b := img.Bounds()
	h, w, err := c.SmartResize(b.Dy(), b.Dx())
	if err != nil {
		return nil, err
	}
	resized := resizeTo(toRGB(img), w, h, c.Resizer)
	return c.patchify(resized, h, w), nil
}

// ProcessBatch processes each image and concatenates the patches. It stops
// at the first error (reporting the image index) or when ctx is done.
func (c Config) ProcessBatch(ctx context.Context, imgs []image.Image) (*Batch, error) {
	out := &Batch{}
	for i, img := range imgs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("preprocessing: batch cancelled at image %d: %w", i, err)
		}
		p, err := c.Process(img)
		if err != nil {
			return nil, fmt.Errorf("preprocessing: image %d: %w", i, err)
		}
		if out.Values == nil {
			out.Values = make([]float32, 0, len(p.Values)*len(imgs))
		}
		out.Values = append(out.Values, p.Values...)
		out.NumPatches += p.NumPatches
		out.PatchDim = p.PatchDim
		out.GridTHW = append(out.GridTHW, p.GridTHW)
		out.ImageTokens = append(out.ImageTokens, p.ImageTokens())
	}
	return out, nil
}

// normLUT returns, per channel, the normalised float32 value of each 8-bit
// level, computed the way the Hugging Face processor does: rescale in
// float64 then cast to float32, subtract and divide in float32.
func (c Config) normLUT() [3][256]float32 {
	var lut [3][256]float32
	for ch := range 3 {
		mean, std := float32(c.ImageMean[ch]), float32(c.ImageStd[ch])
		for v := range 256 {
			r := float32(float64(v) * c.RescaleFactor)
			lut[ch][v] = (r - mean) / std
		}
	}
	return lut
}

// patchify lays out a resized h×w *image.Gray or *image.RGBA (origin 0,0)
// as Qwen2-VL patches.
func (c Config) patchify(img image.Image, h, w int) *Pixels {
	ps, tp, m := c.PatchSize, c.TemporalPatchSize, c.MergeSize
	gh, gw := h/ps, w/ps
	dim := 3 * tp * ps * ps
	px := &Pixels{
		Values:     make([]float32, gh*gw*dim),
		NumPatches: gh * gw,
		PatchDim:   dim,
		GridTHW:    [3]int64{1, int64(gh), int64(gw)},
		MergeSize:  m,
		Height:     h,
		Width:      w,
	}
	lut := c.normLUT()
	// Pixel access: channel ch of (x, y) is pix[y*stride + x*step + ch*chStep].
	var pix []uint8
	var stride, step, chStep int
	switch im := img.(type) {
	case *image.Gray:
		pix, stride, step, chStep = im.Pix, im.Stride, 1, 0
	case *image.RGBA:
		pix, stride, step, chStep = im.Pix, im.Stride, 4, 1
	}
	p := 0
	for by := 0; by < gh/m; by++ {
		for bx := 0; bx < gw/m; bx++ {
			for my := 0; my < m; my++ {
				for mx := 0; mx < m; mx++ {
					origin := (by*m+my)*ps*stride + (bx*m+mx)*ps*step
					c.fillPatch(px.Values[p*dim:(p+1)*dim], &lut, pix[origin:], stride, step, chStep)
					p++
				}
			}
		}
	}
	return px
}

// fillPatch writes one patch: for each channel, the ps×ps block starting
// at pix[0] repeated TemporalPatchSize times.
func (c Config) fillPatch(dst []float32, lut *[3][256]float32, pix []uint8, stride, step, chStep int) {
	ps, tp := c.PatchSize, c.TemporalPatchSize
	block := ps * ps
	for ch := range 3 {
		first := dst[ch*tp*block : ch*tp*block+block]
		l := &lut[ch]
		for py := range ps {
			row := pix[py*stride+ch*chStep:]
			out := first[py*ps : py*ps+ps]
			for x := range out {
				out[x] = l[row[x*step]]
			}
		}
		for t := 1; t < tp; t++ {
			copy(dst[(ch*tp+t)*block:(ch*tp+t+1)*block], first)
		}
	}
}
