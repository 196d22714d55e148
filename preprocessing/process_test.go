package preprocessing

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"
)

// referencePatches is an independent, literal transcription of Hugging
// Face's Qwen2VLImageProcessor._preprocess layout: build the channel-first
// stack (tp copies of a C×H×W image), view it as the 9-D array
// (gt, tp, C, gh/m, m, ps, gw/m, m, ps), transpose it by
// (0, 3, 6, 4, 7, 2, 1, 5, 8) and read it out in C order. Values are
// normalised in float64.
func referencePatches(img image.Image, cfg Config) []float32 {
	b := img.Bounds()
	H, W := b.Dy(), b.Dx()
	ps, tp, m := cfg.PatchSize, cfg.TemporalPatchSize, cfg.MergeSize
	gh, gw := H/ps, W/ps
	// Channel-first float stack, shape (tp, 3, H, W).
	stack := make([]float64, tp*3*H*W)
	for t := 0; t < tp; t++ {
		for y := 0; y < H; y++ {
			for x := 0; x < W; x++ {
				r, g, bb, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				for c, v := range []uint32{r >> 8, g >> 8, bb >> 8} {
					stack[((t*3+c)*H+y)*W+x] = (float64(v)/255 - cfg.ImageMean[c]) / cfg.ImageStd[c]
				}
			}
		}
	}
	shape := []int{1, tp, 3, gh / m, m, ps, gw / m, m, ps}
	perm := []int{0, 3, 6, 4, 7, 2, 1, 5, 8}
	strides := make([]int, len(shape))
	s := 1
	for k := len(shape) - 1; k >= 0; k-- {
		strides[k] = s
		s *= shape[k]
	}
	outShape := make([]int, len(shape))
	for k, p := range perm {
		outShape[k] = shape[p]
	}
	out := make([]float32, 0, s)
	idx := make([]int, len(shape)) // output multi-index, odometer order
	for n := 0; n < s; n++ {
		off := 0
		for k, p := range perm {
			off += idx[k] * strides[p]
		}
		out = append(out, float32(stack[off]))
		for k := len(idx) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < outShape[k] {
				break
			}
			idx[k] = 0
		}
	}
	return out
}

// randomRGBA returns a w×h opaque image of seeded random colours.
func randomRGBA(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 7))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255
	}
	return img
}

func TestProcessMatchesReferenceLayout(t *testing.T) {
	small := DefaultConfig()
	small.PatchSize, small.MergeSize, small.TemporalPatchSize = 4, 3, 3
	small.MinPixels, small.MaxPixels = 12*12, 1<<20
	tests := []struct {
		name string
		cfg  Config
		w, h int
		gray bool
	}{
		{"square 56x56", DefaultConfig(), 56, 56, false},
		{"wide 112x56", DefaultConfig(), 112, 56, false},
		{"tall 84x140", DefaultConfig(), 84, 140, false},
		{"grey 56x84", DefaultConfig(), 56, 84, true},
		{"odd config 24x36", small, 24, 36, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var img image.Image = randomRGBA(tt.w, tt.h, uint64(tt.w*tt.h))
			if tt.gray {
				g := image.NewGray(img.Bounds())
				for i := range g.Pix {
					g.Pix[i] = uint8(i * 37)
				}
				img = g
			}
			px, err := tt.cfg.Process(img)
			if err != nil {
				t.Fatal(err)
			}
			ps, tp, m := tt.cfg.PatchSize, tt.cfg.TemporalPatchSize, tt.cfg.MergeSize
			wantGrid := [3]int64{1, int64(tt.h / ps), int64(tt.w / ps)}
			if px.GridTHW != wantGrid || px.PatchDim != 3*tp*ps*ps || px.NumPatches != tt.w*tt.h/(ps*ps) {
				t.Fatalf("grid %v dim %d n %d, want %v %d %d", px.GridTHW, px.PatchDim, px.NumPatches, wantGrid, 3*tp*ps*ps, tt.w*tt.h/(ps*ps))
			}
			if got, want := px.ImageTokens(), px.NumPatches/(m*m); got != want {
				t.Errorf("ImageTokens = %d, want %d", got, want)
			}
			ref := referencePatches(img, tt.cfg)
			if len(ref) != len(px.Values) {
				t.Fatalf("len %d, reference %d", len(px.Values), len(ref))
			}
			for i := range ref {
				if d := math.Abs(float64(ref[i] - px.Values[i])); d > 1e-5 {
					t.Fatalf("value %d (patch %d, col %d) = %v, reference %v", i, i/px.PatchDim, i%px.PatchDim, px.Values[i], ref[i])
				}
			}
		})
	}
}

// TestProcessGolden pins a few entries computed by hand: for a 56×56 image
// whose red channel is x and green channel is y, patch 1 is the top-right
// 14×14 block of the first 2×2 merge group (gy=0, gx=1), patch 2 the
// bottom-left (gy=1, gx=0); within a patch column c·392 + t·196 + py·14 + px.
func TestProcessGolden(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 56, 56))
	for y := 0; y < 56; y++ {
		for x := 0; x < 56; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(x), uint8(y), 0, 255})
		}
	}
	px, err := DefaultConfig().Process(img)
	if err != nil {
		t.Fatal(err)
	}
	norm := func(v float64, c int) float32 {
		cfg := DefaultConfig()
		return float32((v/255 - cfg.ImageMean[c]) / cfg.ImageStd[c])
	}
	tests := []struct {
		patch, col int
		want       float32
	}{
		{0, 0, norm(0, 0)},                        // (x=0,y=0) red
		{1, 0, norm(14, 0)},                       // patch 1 starts at x=14
		{2, 392 + 0, norm(14, 1)},                 // patch 2 starts at y=14, green
		{3, 3*14 + 5, norm(14+5, 0)},              // patch 3 (x=14,y=14), row 3, col 5 → red x=19
		{3, 392 + 3*14 + 5, norm(14+3, 1)},        // same pixel green y=17
		{3, 196 + 3*14 + 5, norm(14+5, 0)},        // temporal copy of red
		{4, 0, norm(28, 0)},                       // second merge group starts at x=28
		{8, 392, norm(28, 1)},                     // third merge group starts at y=28
		{15, 2*392 + 13*14 + 13, norm(0, 2)},      // blue is 0 everywhere
		{15, 392 + 196 + 13*14 + 13, norm(55, 1)}, // last pixel green y=55
	}
	for _, tt := range tests {
		if got := px.Values[tt.patch*px.PatchDim+tt.col]; math.Abs(float64(got-tt.want)) > 1e-6 {
			t.Errorf("patch %d col %d = %v, want %v", tt.patch, tt.col, got, tt.want)
		}
	}
}

func TestSmartResize(t *testing.T) {
	cfg := DefaultConfig() // min 3136, max 1003520, factor 28
	tests := []struct {
		h, w, wantH, wantW int
	}{
		{28, 28, 56, 56},       // below min_pixels: scaled up, ceiled
		{56, 56, 56, 56},       // already fits
		{42, 70, 56, 56},       // 1.5→2 and 2.5→2: Python rounds half to even; 56·56 = min
		{70, 70, 56, 56},       // 2.5 → 2
		{98, 98, 112, 112},     // 3.5 → 4
		{224, 224, 224, 224},   // exact
		{480, 640, 476, 644},   // BCCD size: 17.14→17, 22.86→23
		{500, 500, 504, 504},   // 17.86 → 18
		{2048, 2048, 980, 980}, // beta = sqrt(2048²/1003520) ≈ 2.044; floor(35.78) = 35
		{5, 5, 56, 56},         // tiny: scaled up
		{10, 2000, 28, 812},    // aspect ratio 200: rounds to 0×1988, ceil branch beta ≈ 0.396
	}
	for _, tt := range tests {
		h, w, err := cfg.SmartResize(tt.h, tt.w)
		if err != nil {
			t.Fatalf("%dx%d: %v", tt.h, tt.w, err)
		}
		if want := [2]int{tt.wantH, tt.wantW}; [2]int{h, w} != want {
			t.Errorf("SmartResize(%d, %d) = %d, %d; want %v", tt.h, tt.w, h, w, want)
		}
		if h%28 != 0 || w%28 != 0 || h*w > cfg.MaxPixels || h*w < cfg.MinPixels {
			t.Errorf("SmartResize(%d, %d) = %d, %d breaks the invariants", tt.h, tt.w, h, w)
		}
	}
	for _, bad := range []struct {
		h, w int
		want error
	}{{0, 10, ErrEmpty}, {10, -1, ErrEmpty}, {1, 201, ErrUnsupported}} {
		if _, _, err := cfg.SmartResize(bad.h, bad.w); !errors.Is(err, bad.want) {
			t.Errorf("SmartResize(%d, %d) error = %v, want %v", bad.h, bad.w, err, bad.want)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	// The preprocessor_config.json of Qwen/Qwen2-VL-2B-Instruct.
	const hf = `{
	  "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14,
	  "temporal_patch_size": 2, "merge_size": 2,
	  "image_mean": [0.48145466, 0.4578275, 0.40821073],
	  "image_std": [0.26862954, 0.26130258, 0.27577711],
	  "image_processor_type": "Qwen2VLImageProcessor",
	  "processor_class": "Qwen2VLProcessor"
	}`
	var cfg Config
	if err := json.Unmarshal([]byte(hf), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.MaxPixels = 12845056
	if cfg != want {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
	var sized Config
	if err := json.Unmarshal([]byte(`{"size": {"shortest_edge": 1000, "longest_edge": 2000000}}`), &sized); err != nil {
		t.Fatal(err)
	}
	if sized = sized.WithDefaults(); sized.MinPixels != 1000 || sized.MaxPixels != 2000000 {
		t.Errorf("size object: min %d max %d", sized.MinPixels, sized.MaxPixels)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"negative patch", func(c *Config) { c.PatchSize = -1 }},
		{"min over max", func(c *Config) { c.MinPixels, c.MaxPixels = 5000, 4000 }},
		{"max below a merged patch", func(c *Config) { c.MinPixels, c.MaxPixels = 10, 100 }},
		{"huge max", func(c *Config) { c.MaxPixels = 1 << 30 }},
		{"bilinear", func(c *Config) { c.Resample = 2 }},
		{"unknown resizer", func(c *Config) { c.Resizer = "lanczos" }},
		{"zero std", func(c *Config) { c.ImageStd[1] = 0 }},
		{"NaN mean", func(c *Config) { c.ImageMean[2] = math.NaN() }},
		{"negative rescale", func(c *Config) { c.RescaleFactor = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			if err := cfg.Validate(); !errors.Is(err, ErrConfig) {
				t.Errorf("Validate = %v, want ErrConfig", err)
			}
			if _, err := cfg.Process(randomRGBA(56, 56, 1)); !errors.Is(err, ErrConfig) {
				t.Errorf("Process = %v, want ErrConfig", err)
			}
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default config invalid: %v", err)
	}
}

func TestProcessBadInput(t *testing.T) {
	cfg := DefaultConfig()
	tests := []struct {
		name string
		img  image.Image
		want error
	}{
		{"nil", nil, ErrEmpty},
		{"empty", image.NewRGBA(image.Rect(0, 0, 0, 0)), ErrEmpty},
		{"sliver", image.NewGray(image.Rect(0, 0, 1, 500)), ErrUnsupported},
	}
	for _, tt := range tests {
		if _, err := cfg.Process(tt.img); !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestProcessBatchInvariance: an image's patches are the same alone or
// inside a batch, and the batch concatenates them in order.
func TestProcessBatchInvariance(t *testing.T) {
	cfg := DefaultConfig()
	imgs := []image.Image{randomRGBA(56, 84, 1), randomRGBA(300, 200, 2), randomRGBA(28, 28, 3)}
	batch, err := cfg.ProcessBatch(context.Background(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for i, img := range imgs {
		p, err := cfg.Process(img)
		if err != nil {
			t.Fatal(err)
		}
		if batch.GridTHW[i] != p.GridTHW || batch.ImageTokens[i] != p.ImageTokens() {
			t.Errorf("image %d: grid %v tokens %d, alone %v %d", i, batch.GridTHW[i], batch.ImageTokens[i], p.GridTHW, p.ImageTokens())
		}
		n, _ := cfg.ImageTokens(img.Bounds().Dy(), img.Bounds().Dx())
		if n != p.ImageTokens() {
			t.Errorf("image %d: Config.ImageTokens %d, Pixels.ImageTokens %d", i, n, p.ImageTokens())
		}
		for j, v := range p.Values {
			if batch.Values[off+j] != v {
				t.Fatalf("image %d value %d differs in batch", i, j)
			}
		}
		off += len(p.Values)
	}
	if off != len(batch.Values) || batch.NumPatches*batch.PatchDim != off {
		t.Errorf("batch holds %d values for %d patches × %d", len(batch.Values), batch.NumPatches, batch.PatchDim)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cfg.ProcessBatch(ctx, imgs); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled batch: %v", err)
	}
	if _, err := cfg.ProcessBatch(context.Background(), []image.Image{imgs[0], nil}); !errors.Is(err, ErrEmpty) {
		t.Errorf("batch with nil image: %v", err)
	}
}

// TestProcessAlphaOverWhite: transparent pixels become white, as Hugging
// Face's convert_to_rgb composites RGBA over a white background.
func TestProcessAlphaOverWhite(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 56, 56)) // all transparent black
	px, err := DefaultConfig().Process(img)
	if err != nil {
		t.Fatal(err)
	}
	lut := DefaultConfig().normLUT()
	for c := range 3 {
		if got := px.Values[c*2*196]; got != lut[c][255] {
			t.Errorf("channel %d = %v, want white %v", c, got, lut[c][255])
		}
	}
}
