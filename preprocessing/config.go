package preprocessing

import (
	"fmt"
	"math"
)

// Resizer names for Config.Resizer.
const (
	// ResizerPillow is a port of Pillow's bicubic resampling for 8-bit
	// images (separable 22-bit fixed-point kernels precomputed per
	// (source, target) size, an 8-bit intermediate), what Hugging Face's
	// processor runs. Default: within one grey level of a float64
	// transcription of Pillow on real images (TestPillowResizeParity) at
	// a fraction of ResizerCatmullRom's cost (BenchmarkResize).
	ResizerPillow = "pillow-bicubic"
	// ResizerCatmullRom is golang.org/x/image/draw's CatmullRom kernel
	// (bicubic, a = −0.5, widened when downscaling as Pillow does): about
	// 55 dB PSNR against Pillow's bicubic on real images versus about
	// 47 dB for nfnt/resize (TestResizerFidelity). The default before
	// ResizerPillow.
	ResizerCatmullRom = "xdraw-catmullrom"
	// ResizerNfntBicubic is github.com/nfnt/resize's Bicubic filter: the
	// faster choice when throughput matters more than matching Pillow.
	ResizerNfntBicubic = "nfnt-bicubic"
)

// Config holds the Qwen2-VL image processor settings. JSON names follow
// Hugging Face's preprocessor_config.json, so a model's file unmarshals
// into it directly (unknown keys are ignored); the models package embeds it
// in model.json. Zero numeric fields mean "unset" and are filled from
// DefaultConfig by WithDefaults.
type Config struct {
	// PatchSize is the ViT patch edge in pixels (default 14).
	PatchSize int `json:"patch_size"`
	// TemporalPatchSize is the number of frames per patch (default 2); a
	// still image is repeated to fill it.
	TemporalPatchSize int `json:"temporal_patch_size"`
	// MergeSize is the spatial merge edge (default 2): MergeSize² patches
	// become one token.
	MergeSize int `json:"merge_size"`
	// MinPixels and MaxPixels bound the resized area (defaults 56·56 = 3136
	// and 28·28·1280 = 1003520, Hugging Face's class defaults). Size, when
	// set, is used for any of the two left at zero.
	MinPixels int `json:"min_pixels"`
	MaxPixels int `json:"max_pixels"`
	// Size is the newer spelling of the pixel bounds in
	// preprocessor_config.json.
	Size *SizeConfig `json:"size,omitempty"`
	// ImageMean and ImageStd normalise each RGB channel after rescaling
	// (defaults: the OpenAI CLIP statistics).
	ImageMean [3]float64 `json:"image_mean"`
	ImageStd  [3]float64 `json:"image_std"`
	// RescaleFactor multiplies 8-bit values before normalising (default
	// 1/255).
	RescaleFactor float64 `json:"rescale_factor"`
	// Resample is PIL's filter code as Hugging Face stores it (3 =
	// bicubic, the default); only bicubic is implemented.
	Resample int `json:"resample"`
	// Resizer selects the resampling implementation (ResizerPillow by
	// default, ResizerCatmullRom or ResizerNfntBicubic). Not a Hugging
	// Face key.
	Resizer string `json:"medgr2_resizer,omitempty"`
}

// SizeConfig is Hugging Face's {"shortest_edge", "longest_edge"} object,
// which for Qwen2-VL holds the min and max pixel counts.
type SizeConfig struct {
	ShortestEdge int `json:"shortest_edge"`
	LongestEdge  int `json:"longest_edge"`
}

// PIL resampling code for bicubic, the only one implemented.
const resampleBicubic = 3

// DefaultConfig returns the Qwen2-VL defaults of Hugging Face's
// Qwen2VLImageProcessor.
func DefaultConfig() Config {
	return Config{
		PatchSize:         14,
		TemporalPatchSize: 2,
		MergeSize:         2,
		MinPixels:         56 * 56,
		MaxPixels:         28 * 28 * 1280,
		ImageMean:         [3]float64{0.48145466, 0.4578275, 0.40821073},
		ImageStd:          [3]float64{0.26862954, 0.26130258, 0.27577711},
		RescaleFactor:     1.0 / 255,
		Resample:          resampleBicubic,
		Resizer:           ResizerPillow,
	}
}

// WithDefaults returns c with every unset field taken from DefaultConfig
// (and MinPixels/MaxPixels from Size when present).
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.Size != nil {
		if c.MinPixels == 0 {
			c.MinPixels = c.Size.ShortestEdge
		}
		if c.MaxPixels == 0 {
			c.MaxPixels = c.Size.LongestEdge
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.PatchSize, d.PatchSize)
	setInt(&c.TemporalPatchSize, d.TemporalPatchSize)
	setInt(&c.MergeSize, d.MergeSize)
	setInt(&c.MinPixels, d.MinPixels)
	setInt(&c.MaxPixels, d.MaxPixels)
	setInt(&c.Resample, d.Resample)
	if c.ImageMean == ([3]float64{}) {
		c.ImageMean = d.ImageMean
	}
	if c.ImageStd == ([3]float64{}) {
		c.ImageStd = d.ImageStd
	}
	if c.RescaleFactor == 0 {
		c.RescaleFactor = d.RescaleFactor
	}
	if c.Resizer == "" {
		c.Resizer = d.Resizer
	}
	return c
}

// Validate reports the first invalid field as an error wrapping ErrConfig.
// It expects a Config that went through WithDefaults.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case c.PatchSize < 1 || c.PatchSize > 1024:
		return bad("patch_size %d outside [1, 1024]", c.PatchSize)
	case c.TemporalPatchSize < 1 || c.TemporalPatchSize > 64:
		return bad("temporal_patch_size %d outside [1, 64]", c.TemporalPatchSize)
	case c.MergeSize < 1 || c.MergeSize > 64:
		return bad("merge_size %d outside [1, 64]", c.MergeSize)
	case c.MinPixels < 1 || c.MaxPixels < c.MinPixels:
		return bad("min_pixels %d / max_pixels %d: want 1 ≤ min ≤ max", c.MinPixels, c.MaxPixels)
	case c.MaxPixels > 1<<28:
		return bad("max_pixels %d exceeds 2^28", c.MaxPixels)
	case c.Factor()*c.Factor() > c.MaxPixels:
		return bad("max_pixels %d is smaller than one merged patch (%d²)", c.MaxPixels, c.Factor())
	case c.Resample != resampleBicubic:
		return bad("resample %d: only 3 (bicubic) is implemented", c.Resample)
	case c.Resizer != ResizerPillow && c.Resizer != ResizerCatmullRom && c.Resizer != ResizerNfntBicubic:
		return bad("resizer %q: want %q, %q or %q", c.Resizer, ResizerPillow, ResizerCatmullRom, ResizerNfntBicubic)
	case math.IsNaN(c.RescaleFactor) || math.IsInf(c.RescaleFactor, 0) || c.RescaleFactor <= 0:
		return bad("rescale_factor %v must be positive", c.RescaleFactor)
	}
	for i := range 3 {
		if s := c.ImageStd[i]; !(s > 0) || math.IsInf(s, 0) {
			return bad("image_std[%d] = %v must be positive", i, s)
		}
		if m := c.ImageMean[i]; math.IsNaN(m) || math.IsInf(m, 0) {
			return bad("image_mean[%d] = %v must be finite", i, m)
		}
	}
	return nil
}

// Factor returns PatchSize×MergeSize, the multiple both resized sides are
// rounded to (28 for Qwen2-VL).
func (c Config) Factor() int { return c.PatchSize * c.MergeSize }

// SmartResize returns the resized height and width Hugging Face's
// Qwen2-VL smart_resize computes for an h×w image: each side rounded
// (half to even, as Python's round) to a multiple of Factor, then scaled
// down to fit MaxPixels (floored, at least one Factor) or up to reach
// MinPixels (ceiled), keeping the aspect ratio. Unlike older transformers
// releases it accepts sides shorter than Factor (they are scaled up). It
// returns ErrEmpty for a non-positive side and ErrUnsupported when the
// aspect ratio exceeds 200, as Hugging Face does.
func (c Config) SmartResize(h, w int) (int, int, error) {
	if h <= 0 || w <= 0 {
		return 0, 0, fmt.Errorf("%w: image is %dx%d", ErrEmpty, w, h)
	}
	if float64(max(h, w))/float64(min(h, w)) > 200 {
		return 0, 0, fmt.Errorf("%w: aspect ratio of %dx%d exceeds 200", ErrUnsupported, w, h)
	}
	f := float64(c.Factor())
	hf, wf := float64(h), float64(w)
	hBar := math.RoundToEven(hf/f) * f
	wBar := math.RoundToEven(wf/f) * f
	switch {
	case hBar*wBar > float64(c.MaxPixels):
		beta := math.Sqrt(hf * wf / float64(c.MaxPixels))
		hBar = math.Max(f, math.Floor(hf/beta/f)*f)
		wBar = math.Max(f, math.Floor(wf/beta/f)*f)
	case hBar*wBar < float64(c.MinPixels):
		beta := math.Sqrt(float64(c.MinPixels) / (hf * wf))
		hBar = math.Ceil(hf*beta/f) * f
		wBar = math.Ceil(wf*beta/f) * f
	}
	return int(hBar), int(wBar), nil
}
