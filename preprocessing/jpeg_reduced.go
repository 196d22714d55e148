package preprocessing

import (
	"bytes"
	"fmt"
	"image"
	"math"

	"github.com/medgr2/medgr2/preprocessing/internal/jpegscale"
)

// decodeReducedJPEG decodes a JPEG at the reduced scale jpegScale picks
// for target, checking the limits against the reduced size and the
// stored size against ReducedStoredPixels. It returns a nil image and no
// error when the JPEG should decode at full size.
func decodeReducedJPEG(data []byte, lim Limits, target Config) (image.Image, Info, error) {
	hdr, err := jpegscale.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, Info{}, nil // the full decode reports it
	}
	k, err := target.jpegScale(hdr.Height, hdr.Width, hdr.Supports)
	if err != nil || k == 1 {
		return nil, Info{}, err
	}
	stored := lim
	if !hdr.Progressive && stored.MaxPixels <= math.MaxInt64/ReducedStoredPixels {
		stored.MaxPixels *= ReducedStoredPixels
	}
	if err := stored.checkPixels(hdr.Width, hdr.Height, 1); err != nil {
		return nil, Info{}, fmt.Errorf("jpeg header (stored size, for a decode at 1/%d): %w", k, err)
	}
	w, h := jpegscale.ScaledSize(hdr.Width, hdr.Height, k)
	if err := lim.checkPixels(w, h, 1); err != nil {
		return nil, Info{}, fmt.Errorf("jpeg header (decoded at 1/%d): %w", k, err)
	}
	if err := lim.checkDecodedBytes(w, h, hdr.ColorModel); err != nil {
		return nil, Info{}, fmt.Errorf("jpeg header (decoded at 1/%d): %w", k, err)
	}
	img, err := jpegscale.Decode(bytes.NewReader(data), k)
	if err != nil {
		return nil, Info{}, formatErrorf("jpeg (decoded at 1/%d): %v", k, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		return nil, Info{}, formatErrorf("jpeg: decoded %dx%d at 1/%d but header says %dx%d", b.Dx(), b.Dy(), k, hdr.Width, hdr.Height)
	}
	return img, Info{Format: FormatJPEG, Width: w, Height: h, BitDepth: 8, Channels: channels(img), Scale: k}, nil
}

// jpegScale returns the reduction k (1, 2, 4 or 8) at which Decode with
// Options.ReduceFor = &c decodes an h×w JPEG: the largest k the JPEG's
// subsampling allows (supports) for which the
// reduced image, ⌈h/k⌉×⌈w/k⌉, is at least twice SmartResize's target
// on both sides (so the bicubic resize that follows still reads at least
// two decoded pixels per output pixel on each axis, as it would when
// antialiasing from the full size) and SmartResize of the reduced size
// is the same target (so the patch grid, and the image's tokens, do not
// change). 1 when no k qualifies. Unset fields of c take their defaults;
// an invalid c is an ErrConfig error.
func (c Config) jpegScale(h, w int, supports func(k int) bool) (int, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return 0, err
	}
	th, tw, err := c.SmartResize(h, w)
	if err != nil {
		return 1, nil // Process refuses it; decode it as it is
	}
	for _, k := range []int{8, 4, 2} {
		if !supports(k) {
			continue
		}
		rw, rh := jpegscale.ScaledSize(w, h, k)
		if rw < 2*tw || rh < 2*th {
			continue
		}
		if h2, w2, err := c.SmartResize(rh, rw); err != nil || h2 != th || w2 != tw {
			continue
		}
		return k, nil
	}
	return 1, nil
}
