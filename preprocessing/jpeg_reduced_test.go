package preprocessing

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"math"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/preprocessing/internal/jpegscale"
)

// withMaxPixels returns the default processor with max_pixels set.
func withMaxPixels(n int) *Config {
	c := DefaultConfig()
	c.MaxPixels, c.MinPixels = n, min(c.MinPixels, n)
	return &c
}

// encodeJPEG encodes img with image/jpeg (4:2:0 for colour).
func encodeJPEG(tb testing.TB, img image.Image, q int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// upscaledJPEG is a real image scaled to w×h (CatmullRom) and encoded as
// JPEG at quality q: a large photograph with real content.
func upscaledJPEG(tb testing.TB, path string, w, h, q int) []byte {
	tb.Helper()
	img, _, err := DecodeFile(path, Limits{})
	if err != nil {
		tb.Fatal(err)
	}
	return encodeJPEG(tb, resized(img, w, h), q)
}

// resized scales img to w×h with CatmullRom, keeping grey grey.
func resized(img image.Image, w, h int) image.Image {
	return resizeTo(toRGB(img), w, h, ResizerCatmullRom)
}

// levels maps pixel_values back to 0…255 grey levels (the inverse of the
// normalisation), so differences read in levels.
func levels(c Config, px *Pixels) []float64 {
	c = c.WithDefaults()
	out := make([]float64, len(px.Values))
	ps2 := c.PatchSize * c.PatchSize
	for i, v := range px.Values {
		ch := (i % px.PatchDim) / (c.TemporalPatchSize * ps2)
		out[i] = (float64(v)*c.ImageStd[ch] + c.ImageMean[ch]) / c.RescaleFactor
	}
	return out
}

// TestReducedJPEGDeviation measures what the reduced decode changes in
// the model's input: the pixel values Process makes from a JPEG decoded
// with Options.ReduceFor against those from the full-size decode, in grey
// levels, for real BCCD photographs (640×480) and for large images made
// from real ones (a BCCD photograph at 3000×2000 and 4000×3000, an OCT
// B-scan in grey at 2304×744), at max_pixels from 56² to Hugging Face's
// default. The patch grid must be the same (same image tokens), the
// mean absolute difference at most 1 level and the largest at most 32.
// Run with -v to see the numbers.
func TestReducedJPEGDeviation(t *testing.T) {
	bccd, _ := filepath.Glob(filepath.Join(filepath.Dir(sharedData(t, "bccd/images/BloodImage_00000.jpg")), "*.jpg"))
	type input struct {
		name string
		data []byte
	}
	var inputs []input
	for i := 0; i < len(bccd); i += 50 {
		inputs = append(inputs, input{filepath.Base(bccd[i]), readFile(t, bccd[i])})
	}
	photo := sharedData(t, "bccd/images/BloodImage_00000.jpg")
	oct, _ := filepath.Glob(filepath.Join(filepath.Dir(sharedData(t, "kermany-oct/labels.jsonl")), "test", "*.png"))
	inputs = append(inputs,
		input{"bccd-3000x2000-q90", upscaledJPEG(t, photo, 3000, 2000, 90)},
		input{"bccd-4000x3000-q75", upscaledJPEG(t, photo, 4000, 3000, 75)},
		input{"oct-gray-2304x744-q90", upscaledJPEG(t, oct[0], 2304, 744, 90)},
	)
	for _, maxPx := range []int{56 * 56, 112 * 112, 224 * 224, 448 * 448, 28 * 28 * 1280} {
		cfg := withMaxPixels(maxPx)
		for _, in := range inputs {
			full, _, err := DecodeWith(in.data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			red, info, err := DecodeWith(in.data, Options{ReduceFor: cfg})
			if err != nil {
				t.Fatal(err)
			}
			if info.Scale == 0 {
				if !sameImage(full, red) {
					t.Fatalf("%s: not reduced, yet not the full decode", in.name)
				}
				continue
			}
			pf, err := cfg.Process(full)
			if err != nil {
				t.Fatal(err)
			}
			pr, err := cfg.Process(red)
			if err != nil {
				t.Fatal(err)
			}
			if pf.GridTHW != pr.GridTHW {
				t.Fatalf("%s at max_pixels %d: grid %v reduced, %v full", in.name, maxPx, pr.GridTHW, pf.GridTHW)
			}
			lf, lr := levels(*cfg, pf), levels(*cfg, pr)
			var sum, worst float64
			for i := range lf {
				d := math.Abs(lf[i] - lr[i])
				sum += d
				worst = max(worst, d)
			}
			mean := sum / float64(len(lf))
			t.Logf("max_pixels %7d %-22s %4dx%-4d → 1/%d %4dx%-4d → %dx%d: mean |Δ| %.3f, max |Δ| %.0f levels",
				maxPx, in.name, full.Bounds().Dx(), full.Bounds().Dy(), info.Scale, info.Width, info.Height, pf.Width, pf.Height, mean, worst)
			if mean > 1 || worst > 32 {
				t.Errorf("%s at max_pixels %d: mean |Δ| %.3f, max %.0f levels", in.name, maxPx, mean, worst)
			}
		}
	}
}

// sameImage reports whether two decoded images have the same bounds and
// pixels.
func sameImage(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

// TestJPEGScale checks the choice of reduction: the largest k leaving the
// decoded image at least twice the target on both sides with the same
// SmartResize target.
func TestJPEGScale(t *testing.T) {
	all := func(int) bool { return true }
	tests := []struct {
		name    string
		maxPx   int
		h, w    int
		want    int
		support func(int) bool
	}{
		{"4000x3000 at 448²", 448 * 448, 3000, 4000, 2, all},            // target 518×392: 1/2 is 2000×1500, 1/4 only 1000×750
		{"4000x3000 at 224²", 224 * 224, 3000, 4000, 4, all},            // target 252×196
		{"4000x3000 at 56²", 56 * 56, 3000, 4000, 8, all},               // 500×375 ≥ 2·(56×56)
		{"640x480 at 448²", 448 * 448, 480, 640, 1, all},                // target 504×364
		{"640x480 at 56²", 56 * 56, 480, 640, 4, all},                   // target 56×28; 1/8 is 80×60 < 112
		{"4000x3000 at HF default", 28 * 28 * 1280, 3000, 4000, 1, all}, // target 1148×868
		{"4:1:1 wanting 2", 448 * 448, 3000, 4000, 1, func(k int) bool { return k != 2 }},
		{"aspect over 200", 56 * 56, 10, 4000, 1, all},
		{"small image scaled up", 448 * 448, 20, 20, 1, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withMaxPixels(tt.maxPx)
			k, err := c.jpegScale(tt.h, tt.w, tt.support)
			if err != nil || k != tt.want {
				t.Fatalf("jpegScale = %d, %v; want %d", k, err, tt.want)
			}
			if k == 1 {
				return
			}
			th, tw, _ := c.SmartResize(tt.h, tt.w)
			rw, rh := jpegscale.ScaledSize(tt.w, tt.h, k)
			if rw < 2*tw || rh < 2*th {
				t.Fatalf("1/%d gives %dx%d for a %dx%d target", k, rw, rh, tw, th)
			}
		})
	}
	bad := Config{Resizer: "nearest"}
	if _, err := bad.jpegScale(3000, 4000, all); !errors.Is(err, ErrConfig) {
		t.Fatalf("invalid config: %v", err)
	}
}

// TestReducedJPEGLimits checks the limits on the reduced path: a JPEG
// whose stored size is over MaxPixels passes when its reduced size is
// within it, up to ReducedStoredPixels·MaxPixels for a baseline JPEG and
// MaxPixels for a progressive one; the decoded-bytes limit applies to the
// reduced size; and without ReduceFor the stored size is checked as
// before.
func TestReducedJPEGLimits(t *testing.T) {
	big := upscaledJPEG(t, sharedData(t, "bccd/images/BloodImage_00000.jpg"), 2000, 1500, 80) // 3 Mpx
	prog := readFile(t, "internal/jpegscale/testdata/bccd-317x243.444.q90.progressive.restart.jpeg")
	cfg := withMaxPixels(56 * 56) // 2000×1500 → 1/8 (250×188); 317×243 → 1/2 (159×122)
	tests := []struct {
		name    string
		data    []byte
		lim     Limits
		reduce  *Config
		wantErr error
		scale   int
	}{
		{"full decode over MaxPixels", big, Limits{MaxPixels: 1 << 20}, nil, ErrTooLarge, 0},
		{"reduced within MaxPixels", big, Limits{MaxPixels: 1 << 20}, cfg, nil, 8},
		{"stored over 4×MaxPixels", big, Limits{MaxPixels: 700_000}, cfg, ErrTooLarge, 0},
		{"reduced over MaxDecodedBytes", big, Limits{MaxPixels: 1 << 20, MaxDecodedBytes: 250*188*3 - 1}, cfg, ErrTooLarge, 0},
		{"reduced decoded bytes within", big, Limits{MaxPixels: 1 << 20, MaxDecodedBytes: 250*188*3 + 10}, cfg, nil, 8},
		{"progressive within MaxPixels", prog, Limits{MaxPixels: 317 * 243}, cfg, nil, 2},
		{"progressive over MaxPixels", prog, Limits{MaxPixels: 317*243 - 1}, cfg, ErrTooLarge, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, info, err := DecodeWith(tt.data, Options{Limits: tt.lim, ReduceFor: tt.reduce})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Scale != tt.scale || img.Bounds().Dx() != info.Width || info.Format != FormatJPEG || info.Channels != 3 {
				t.Fatalf("info %+v, bounds %v; want scale %d", info, img.Bounds(), tt.scale)
			}
		})
	}
}

// TestReducedJPEGBadInput checks that corrupt and truncated JPEGs give a
// FormatError through the reduced path, as through the full one.
func TestReducedJPEGBadInput(t *testing.T) {
	big := upscaledJPEG(t, sharedData(t, "bccd/images/BloodImage_00000.jpg"), 1600, 1200, 80)
	corrupt := bytes.Clone(big)
	sos := bytes.Index(corrupt, []byte("\xff\xda"))
	for i := sos + 40; i < len(corrupt)-2; i += 1009 {
		corrupt[i] = 0xff
	}
	cfg := withMaxPixels(56 * 56)
	if _, info, err := DecodeWith(big, Options{ReduceFor: cfg}); err != nil || info.Scale != 8 {
		t.Fatalf("intact input: scale %d, %v", info.Scale, err)
	}
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"truncated scan", big[:len(big)/2]},
		{"truncated after the header", big[:sos+20]},
		{"corrupt scan", corrupt},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, reduce := range []*Config{nil, cfg} {
				_, _, err := DecodeWith(tt.data, Options{ReduceFor: reduce})
				var fe FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("ReduceFor %v: %T %v, want a FormatError", reduce != nil, err, err)
				}
			}
		})
	}
	if _, _, err := DecodeWith(big, Options{ReduceFor: &Config{Resizer: "nearest"}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("invalid ReduceFor: %v", err)
	}
}
