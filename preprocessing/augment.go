package preprocessing

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
)

// AugmentConfig sets the random views Augment draws for self-supervised
// pretraining (SimCLR-style), chosen for grey-scale medical images: crops,
// small rotations and intensity changes that keep the anatomy a reader
// would name. Zero fields take the defaults of DefaultAugment, except the
// booleans; set a probability or amplitude negative to turn it off.
type AugmentConfig struct {
	// Size is the output edge in pixels (square views); default 56.
	Size int
	// MinScale is the smallest share of the image area a random resized
	// crop keeps; default 0.35 (the crop keeps 35–100% of the area, aspect
	// ratio 3/4–4/3).
	MinScale float64
	// MaxRotate is the largest rotation in degrees, either way; default
	// 10. Small tilts happen in any acquisition; large ones do not.
	MaxRotate float64
	// FlipLR mirrors half the views left-right. Off by default: a mirrored
	// chest X-ray has its heart on the wrong side and a mirrored fundus is
	// the other eye, so flips change what an image shows. Turn it on only
	// for collections without a laterality (cells, for instance).
	FlipLR bool
	// Brightness is the largest additive intensity shift (in units of the
	// full 0–1 range); default 0.2.
	Brightness float64
	// Contrast is the largest relative contrast change around the view's
	// mean; default 0.3 (factor 0.7–1.3).
	Contrast float64
	// Gamma is the largest |log γ| of a gamma curve v^γ; default 0.3
	// (γ in 0.74–1.35).
	Gamma float64
	// NoiseStd is the largest standard deviation of additive Gaussian
	// noise (0–1 units); each view draws its own σ in [0, NoiseStd];
	// default 0.04.
	NoiseStd float64
	// BlurProb is the probability of a Gaussian blur with σ drawn in
	// [0.3, 1.2] pixels; default 0.3.
	BlurProb float64
}

// DefaultAugment returns the default augmentation settings for size-pixel
// views (56 if size is 0).
func DefaultAugment(size int) AugmentConfig {
	return AugmentConfig{Size: size}.withDefaults()
}

func (c AugmentConfig) withDefaults() AugmentConfig {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		} else if *v < 0 {
			*v = 0
		}
	}
	if c.Size == 0 {
		c.Size = 56
	}
	def(&c.MinScale, 0.35)
	def(&c.MaxRotate, 10)
	def(&c.Brightness, 0.2)
	def(&c.Contrast, 0.3)
	def(&c.Gamma, 0.3)
	def(&c.NoiseStd, 0.04)
	def(&c.BlurProb, 0.3)
	return c
}

// validate checks the settings after defaults.
func (c AugmentConfig) validate() error {
	switch {
	case c.Size < 8 || c.Size > 1024:
		return fmt.Errorf("%w: augment size %d outside 8..1024", ErrConfig, c.Size)
	case c.MinScale > 1:
		return fmt.Errorf("%w: augment min scale %g above 1", ErrConfig, c.MinScale)
	case c.MaxRotate > 180:
		return fmt.Errorf("%w: augment rotation %g° above 180", ErrConfig, c.MaxRotate)
	case c.BlurProb > 1:
		return fmt.Errorf("%w: augment blur probability %g above 1", ErrConfig, c.BlurProb)
	}
	return nil
}

// Source is a decoded image held as float planes in [0, 1], shrunk once so
// that drawing many views of it is cheap. Gray images keep one plane.
type Source struct {
	w, h   int
	planes [][]float32 // 1 (gray) or 3 (RGB) planes, row-major h×w
}

// Bounds returns the size of the held planes.
func (s *Source) Bounds() (w, h int) { return s.w, s.h }

// NewSource prepares img for Augment and View: it is converted to gray or
// RGB and, if its longer edge exceeds maxEdge (0: no limit), shrunk to it
// with the package's antialiasing bicubic resizer.
func NewSource(img image.Image, maxEdge int) (*Source, error) {
	if img == nil {
		return nil, fmt.Errorf("%w: nil image", ErrEmpty)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: image of %d×%d pixels", ErrEmpty, w, h)
	}
	rgb := toRGB(img)
	if maxEdge > 0 && max(w, h) > maxEdge {
		f := float64(maxEdge) / float64(max(w, h))
		w, h = max(1, int(math.Round(float64(w)*f))), max(1, int(math.Round(float64(h)*f)))
		rgb = resizeTo(rgb, w, h, "")
	}
	s := &Source{w: w, h: h}
	switch im := rgb.(type) {
	case *image.Gray:
		p := make([]float32, w*h)
		for y := range h {
			for x := range w {
				p[y*w+x] = float32(im.Pix[y*im.Stride+x]) / 255
			}
		}
		s.planes = [][]float32{p}
	case *image.RGBA:
		s.planes = [][]float32{make([]float32, w*h), make([]float32, w*h), make([]float32, w*h)}
		for y := range h {
			for x := range w {
				o := y*im.Stride + 4*x
				for c := range 3 {
					s.planes[c][y*w+x] = float32(im.Pix[o+c]) / 255
				}
			}
		}
	default:
		return nil, fmt.Errorf("%w: unexpected converted image %T", ErrConfig, rgb)
	}
	return s, nil
}

// View returns the whole source squeezed to size×size with no random
// change (bilinear): the unaugmented input the probe and the pipeline's
// square images correspond to.
func (s *Source) View(size int) image.Image {
	return s.render(size, viewParams{cx: 0.5, cy: 0.5, cw: 1, ch: 1, contrast: 1, gamma: 1})
}

// viewParams is one random draw of Augment.
type viewParams struct {
	cx, cy, cw, ch float64 // crop centre and size, as shares of the source's width and height
	rot            float64 // radians
	flip           bool
	blur           float64 // Gaussian σ in output pixels; 0 for none
	bright         float64
	contrast       float64
	gamma          float64
	noise          float64 // σ of the additive noise
}

// Augment draws one random view of s with the settings c from rng: a
// random resized crop (scale MinScale–1, aspect 3/4–4/3), a rotation
// within ±MaxRotate, an optional left-right flip, an optional Gaussian
// blur, brightness, contrast and gamma jitter and Gaussian noise. The view
// is a Size×Size *image.Gray for a gray source, *image.RGBA otherwise.
// The same rng state gives the same view.
func Augment(s *Source, c AugmentConfig, rng *rand.Rand) (image.Image, error) {
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	if s == nil || rng == nil {
		return nil, fmt.Errorf("%w: augment needs a source and a random source", ErrConfig)
	}
	p := viewParams{contrast: 1, gamma: 1}
	area := c.MinScale + rng.Float64()*(1-c.MinScale)
	logR := (rng.Float64()*2 - 1) * math.Log(4.0/3)
	ar := math.Exp(logR) // width / height of the crop, relative to the image's
	p.cw, p.ch = min(1, math.Sqrt(area*ar)), min(1, math.Sqrt(area/ar))
	p.cx = p.cw/2 + rng.Float64()*(1-p.cw)
	p.cy = p.ch/2 + rng.Float64()*(1-p.ch)
	p.rot = (rng.Float64()*2 - 1) * c.MaxRotate * math.Pi / 180
	p.flip = c.FlipLR && rng.IntN(2) == 1
	if rng.Float64() < c.BlurProb {
		p.blur = 0.3 + rng.Float64()*0.9
	}
	p.bright = (rng.Float64()*2 - 1) * c.Brightness
	p.contrast = 1 + (rng.Float64()*2-1)*c.Contrast
	p.gamma = math.Exp((rng.Float64()*2 - 1) * c.Gamma)
	p.noise = rng.Float64() * c.NoiseStd
	img := s.render(c.Size, p)
	if p.noise > 0 {
		addNoise(img, p.noise, rng)
	}
	return img, nil
}

// render samples the view described by p (everything but the noise).
func (s *Source) render(size int, p viewParams) image.Image {
	n := size * size
	planes := make([][]float32, len(s.planes))
	sin, cos := math.Sincos(p.rot)
	for c := range planes {
		planes[c] = make([]float32, n)
	}
	for y := range size {
		for x := range size {
			u := (float64(x)+0.5)/float64(size) - 0.5
			v := (float64(y)+0.5)/float64(size) - 0.5
			if p.flip {
				u = -u
			}
			u, v = cos*u-sin*v, sin*u+cos*v
			sx := (p.cx+u*p.cw)*float64(s.w) - 0.5
			sy := (p.cy+v*p.ch)*float64(s.h) - 0.5
			for c, pl := range s.planes {
				planes[c][y*size+x] = bilinear(pl, s.w, s.h, sx, sy)
			}
		}
	}
	if p.blur > 0 {
		for _, pl := range planes {
			gaussBlur(pl, size, p.blur)
		}
	}
	photometric(planes, p)
	return toImage(planes, size)
}

// photometric applies contrast around the mean, brightness and gamma.
func photometric(planes [][]float32, p viewParams) {
	if p.contrast == 1 && p.bright == 0 && p.gamma == 1 {
		return
	}
	var sum float64
	for _, pl := range planes {
		for _, v := range pl {
			sum += float64(v)
		}
	}
	mean := sum / float64(len(planes)*len(planes[0]))
	for _, pl := range planes {
		for i, v := range pl {
			w := (float64(v)-mean)*p.contrast + mean + p.bright
			w = math.Pow(min(1, max(0, w)), p.gamma)
			pl[i] = float32(w)
		}
	}
}

// bilinear samples plane pl (w×h) at (x, y) in pixel-centre coordinates,
// clamping to the edge.
func bilinear(pl []float32, w, h int, x, y float64) float32 {
	x = min(max(x, 0), float64(w-1))
	y = min(max(y, 0), float64(h-1))
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
	fx, fy := float32(x-float64(x0)), float32(y-float64(y0))
	top := pl[y0*w+x0]*(1-fx) + pl[y0*w+x1]*fx
	bot := pl[y1*w+x0]*(1-fx) + pl[y1*w+x1]*fx
	return top*(1-fy) + bot*fy
}

// gaussBlur blurs a size×size plane in place with a separable Gaussian of
// standard deviation sigma pixels (edges clamped).
func gaussBlur(pl []float32, size int, sigma float64) {
	r := int(math.Ceil(2 * sigma))
	k := make([]float32, 2*r+1)
	var sum float32
	for i := range k {
		d := float64(i - r)
		k[i] = float32(math.Exp(-d * d / (2 * sigma * sigma)))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	tmp := make([]float32, len(pl))
	for pass := range 2 {
		src, dst := pl, tmp
		if pass == 1 {
			src, dst = tmp, pl
		}
		for y := range size {
			for x := range size {
				var acc float32
				for i, kv := range k {
					xx, yy := x, y
					if pass == 0 {
						xx = min(max(x+i-r, 0), size-1)
					} else {
						yy = min(max(y+i-r, 0), size-1)
					}
					acc += kv * src[yy*size+xx]
				}
				dst[y*size+x] = acc
			}
		}
	}
}

// toImage quantises the planes to 8 bits.
func toImage(planes [][]float32, size int) image.Image {
	q := func(v float32) uint8 { return uint8(min(255, max(0, math.Round(float64(v)*255)))) }
	if len(planes) == 1 {
		g := image.NewGray(image.Rect(0, 0, size, size))
		for i, v := range planes[0] {
			g.Pix[(i/size)*g.Stride+i%size] = q(v)
		}
		return g
	}
	im := image.NewRGBA(image.Rect(0, 0, size, size))
	for i := range planes[0] {
		o := (i/size)*im.Stride + 4*(i%size)
		im.Pix[o], im.Pix[o+1], im.Pix[o+2], im.Pix[o+3] = q(planes[0][i]), q(planes[1][i]), q(planes[2][i]), 255
	}
	return im
}

// addNoise adds Gaussian noise of standard deviation sigma (0–1 units) to
// every sample, the same draw to each channel of a pixel.
func addNoise(img image.Image, sigma float64, rng *rand.Rand) {
	switch im := img.(type) {
	case *image.Gray:
		for i, v := range im.Pix {
			im.Pix[i] = clamp8(float64(v) + rng.NormFloat64()*sigma*255)
		}
	case *image.RGBA:
		for o := 0; o < len(im.Pix); o += 4 {
			d := rng.NormFloat64() * sigma * 255
			for c := range 3 {
				im.Pix[o+c] = clamp8(float64(im.Pix[o+c]) + d)
			}
		}
	}
}

func clamp8(v float64) uint8 { return uint8(min(255, max(0, math.Round(v)))) }
