package train

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// sslArch is a tiny model for contrastive tests.
func sslArch() models.ArchConfig {
	c := smallArch()
	c.HiddenSize, c.IntermediateSize, c.NumLayers = 32, 64, 1
	c.NumHeads, c.NumKVHeads = 2, 1
	c.Vision.EmbedDim, c.Vision.NumHeads = 32, 2
	return c
}

// writeTestImages writes n distinct 56×56 gray PNGs (random blobs on a
// ramp) and returns their paths.
func writeTestImages(t testing.TB, n int, seed uint64) []string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(seed, 2))
	var paths []string
	for i := range n {
		g := image.NewGray(image.Rect(0, 0, 56, 56))
		cx, cy, r := 10+rng.IntN(36), 10+rng.IntN(36), 4+rng.IntN(12)
		base := rng.IntN(120)
		for y := range 56 {
			for x := range 56 {
				v := base + x*(i%3)
				if (x-cx)*(x-cx)+(y-cy)*(y-cy) < r*r {
					v = 230
				}
				g.SetGray(x, y, color.Gray{Y: uint8(min(255, v))})
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("img%02d.png", i))
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, g); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

func TestPretrainVisionLearns(t *testing.T) {
	for _, obj := range []SSLObjective{SimCLR, MIM} {
		t.Run(string(obj), func(t *testing.T) { testPretrainLearns(t, obj) })
	}
}

func testPretrainLearns(t *testing.T, obj SSLObjective) {
	env := openEnv(t)
	src := testBundle(t, sslArch(), 3)
	imgs := writeTestImages(t, 8, 1)
	cfg := SSLConfig{Objective: obj, Steps: 30, Pairs: 8, LR: 3e-3, Seed: 1}
	res, err := PretrainVision(context.Background(), env, src, imgs, t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 30 {
		t.Fatalf("%d steps recorded, want 30", len(res.Steps))
	}
	mean := func(from, to int) float64 {
		var s float64
		for _, st := range res.Steps[from:to] {
			s += st.Loss
		}
		return s / float64(to-from)
	}
	first, last := mean(0, 5), mean(25, 30)
	if !(last < 0.9*first) {
		t.Errorf("loss did not fall by 10%%: first steps %.4f, last steps %.4f", first, last)
	}
	chance := math.Log(float64(2*cfg.Pairs - 1))
	if obj == SimCLR && math.Abs(res.Steps[0].Loss-chance) > 1.5 {
		t.Errorf("first loss %.4f far from chance log(%d) = %.4f", res.Steps[0].Loss, 2*cfg.Pairs-1, chance)
	}
	before, err := BundleWeights(src)
	if err != nil {
		t.Fatal(err)
	}
	after, err := BundleWeights(res.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range after {
		changed := maxAbsDiff(w.F32, before[name].F32) > 0
		if isVision := len(name) > 7 && name[:7] == "visual."; changed != isVision {
			t.Errorf("%s: changed %v, vision weight %v", name, changed, isVision)
		}
		if len(name) >= len(SSLHeadPrefix) && name[:len(SSLHeadPrefix)] == SSLHeadPrefix {
			t.Errorf("projection head %s written to the bundle", name)
		}
	}
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// TestPretrainVisionDeterministic: the same seed gives the same losses.
func TestPretrainVisionDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two pretraining runs")
	}
	env := openEnv(t)
	src := testBundle(t, sslArch(), 3)
	imgs := writeTestImages(t, 6, 2)
	run := func() []SSLStep {
		res, err := PretrainVision(context.Background(), env, src, imgs, t.TempDir(), SSLConfig{Steps: 3, Pairs: 4, Seed: 9})
		if err != nil {
			t.Fatal(err)
		}
		return res.Steps
	}
	a, b := run(), run()
	for i := range a {
		if math.Abs(a[i].Loss-b[i].Loss) > 1e-5 {
			t.Errorf("step %d: loss %.6f then %.6f", i+1, a[i].Loss, b[i].Loss)
		}
	}
}

func TestPretrainVisionErrors(t *testing.T) {
	env := openEnv(t)
	src := testBundle(t, sslArch(), 3)
	imgs := writeTestImages(t, 4, 3)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		images []string
		cfg    SSLConfig
		want   error
	}{
		{"too few images", context.Background(), imgs[:2], SSLConfig{Pairs: 4}, ErrConfig},
		{"one pair", context.Background(), imgs, SSLConfig{Pairs: 1}, ErrConfig},
		{"bad size", context.Background(), imgs, SSLConfig{Pairs: 2, ImageSize: 50}, ErrConfig},
		{"negative lr", context.Background(), imgs, SSLConfig{Pairs: 2, LR: -1}, ErrConfig},
		{"unknown objective", context.Background(), imgs, SSLConfig{Pairs: 2, Objective: "byol"}, ErrConfig},
		{"mask ratio", context.Background(), imgs, SSLConfig{Pairs: 2, Objective: MIM, MaskRatio: 1}, ErrConfig},
		{"missing file", context.Background(), append([]string{"nope.png"}, imgs...), SSLConfig{Pairs: 2}, os.ErrNotExist},
		{"cancelled", cancelled, imgs, SSLConfig{Pairs: 2}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			_, err := PretrainVision(tc.ctx, env, src, tc.images, dir, tc.cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if _, serr := os.Stat(dir); serr == nil {
				t.Errorf("a failed run wrote %s", dir)
			}
		})
	}
}

func TestBuildSSLGraphErrors(t *testing.T) {
	arch := sslArch()
	arch.VocabSize = 100
	tests := []struct {
		name  string
		shape SSLShape
		proj  int
		tau   float64
	}{
		{"one pair", SSLShape{Pairs: 1, Patches: 4}, 8, 0.2},
		{"odd patches", SSLShape{Pairs: 2, Patches: 3}, 8, 0.2},
		{"no projection", SSLShape{Pairs: 2, Patches: 4}, 0, 0.2},
		{"zero temperature", SSLShape{Pairs: 2, Patches: 4}, 8, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := BuildSSLGraph(arch, tc.shape, tc.proj, tc.tau); !errors.Is(err, ErrConfig) {
				t.Errorf("err = %v, want ErrConfig", err)
			}
		})
	}
	g, err := BuildSSLGraph(arch, SSLShape{Pairs: 2, Patches: 4}, 8, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := graph.BuildTrainStep(g, graph.TrainStepConfig{Params: append(VisionParams(arch), sslParamNames(arch, 8)...)}); err != nil {
		t.Fatalf("the ssl graph does not differentiate: %v", err)
	}
}

// TestMIMMasking: masked windows are zero in the input and intact in the
// target, visible windows are unchanged, and half the windows are masked.
func TestMIMMasking(t *testing.T) {
	env := openEnv(t)
	src := testBundle(t, sslArch(), 3)
	imgs := writeTestImages(t, 3, 4)
	cfg := SSLConfig{Objective: MIM, Pairs: 3, Steps: 1}.withDefaults()
	r, err := newSSLRun(context.Background(), env, src, cfg, SSLShape{Pairs: 3, Patches: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.close() })
	srcs, err := loadSSLSources(context.Background(), imgs, 112)
	if err != nil {
		t.Fatal(err)
	}
	in, err := r.batch(srcs, []int{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	px, target, mask := in[0].data, in[1].data, in[2].data
	width := int(in[1].shape[1])
	if len(mask) != 3*4 || len(px) != len(target) {
		t.Fatalf("mask %d windows, pixels %d, target %d", len(mask), len(px), len(target))
	}
	masked := 0
	for w, m := range mask {
		win, tgt := px[w*width:(w+1)*width], target[w*width:(w+1)*width]
		if m == 1 {
			masked++
			if maxAbsDiff(win, make([]float32, width)) != 0 || maxAbsDiff(tgt, make([]float32, width)) == 0 {
				t.Errorf("window %d: masked input not zero or target empty", w)
			}
		} else if maxAbsDiff(win, tgt) != 0 {
			t.Errorf("window %d: visible input differs from its target", w)
		}
	}
	if masked != 6 {
		t.Errorf("%d of 12 windows masked, want 6 (ratio 0.5)", masked)
	}
}
