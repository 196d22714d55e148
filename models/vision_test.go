package models_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// patchPositions lists (image, frame, row, col) of every pixel_values row in
// Qwen2-VL processor order: per image, per frame, 2×2 windows row-major,
// each window's patches row-major.
func patchPositions(grids [][3]int) (seg []int, rows, cols []int) {
	for img, g := range grids {
		for f := range g[0] {
			for wr := 0; wr < g[1]/2; wr++ {
				for wc := 0; wc < g[2]/2; wc++ {
					for k := range 4 {
						seg = append(seg, img*1000+f)
						rows = append(rows, wr*2+k/2)
						cols = append(cols, wc*2+k%2)
					}
				}
			}
		}
	}
	return seg, rows, cols
}

// vision is the plain-loop reference of the vision encoder.
func (r refModel) vision(px [][]float32, grids [][3]int) [][]float32 {
	v := r.cfg.Vision
	e, hd := v.EmbedDim, v.HeadDim()
	seg, rows, cols := patchPositions(grids)
	N := len(px)
	x := make([][]float32, N)
	for i := range px {
		x[i] = r.linear(px[i], "visual.patch_embed.proj.weight", "") // [E, 3,2,14,14] read as [E, 1176]
	}
	ang := make([][]float64, N)
	for i := range N {
		for _, p := range []int{rows[i], cols[i]} {
			for k := range hd / 4 {
				ang[i] = append(ang[i], float64(p)/math.Pow(10000, float64(2*k)/float64(hd/2)))
			}
		}
	}
	for l := range v.Depth {
		p := func(s string) string { return "visual.blocks." + itoa(l) + "." + s }
		qkv := make([][]float32, N)
		for i := range N {
			qkv[i] = r.linear(r.layerNorm(x[i], p("norm1")), p("attn.qkv.weight"), p("attn.qkv.bias"))
		}
		next := make([][]float32, N)
		for i := range N {
			var ctx []float32
			for h := range v.NumHeads {
				q := rotate(qkv[i][h*hd:(h+1)*hd], ang[i])
				keys, vals, allowed := make([][]float32, N), make([][]float32, N), make([]bool, N)
				for j := range N {
					keys[j] = rotate(qkv[j][e+h*hd:e+(h+1)*hd], ang[j])
					vals[j] = qkv[j][2*e+h*hd : 2*e+(h+1)*hd]
					allowed[j] = seg[i] == seg[j]
				}
				ctx = append(ctx, attend(q, keys, vals, allowed)...)
			}
			h := add(x[i], r.linear(ctx, p("attn.proj.weight"), p("attn.proj.bias")))
			m := r.linear(r.layerNorm(h, p("norm2")), p("mlp.fc1.weight"), p("mlp.fc1.bias"))
			for k, a := range m {
				m[k] = float32(float64(a) / (1 + math.Exp(-1.702*float64(a))))
			}
			next[i] = add(h, r.linear(m, p("mlp.fc2.weight"), p("mlp.fc2.bias")))
		}
		x = next
	}
	var out [][]float32
	for i := 0; i < N; i += 4 {
		var cat []float32
		for k := range 4 {
			cat = append(cat, r.layerNorm(x[i+k], "visual.merger.ln_q")...)
		}
		h := r.linear(cat, "visual.merger.mlp.0.weight", "visual.merger.mlp.0.bias")
		for k, a := range h {
			h[k] = float32(0.5 * float64(a) * (1 + math.Erf(float64(a)/math.Sqrt2)))
		}
		out = append(out, r.linear(h, "visual.merger.mlp.2.weight", "visual.merger.mlp.2.bias"))
	}
	return out
}

// TestVisionMatchesReference runs two images of different grids (one with
// two frames) through ORT and the reference, within 1e-4.
func TestVisionMatchesReference(t *testing.T) {
	b := exportBundle(t, nil, 5)
	cfg := b.Manifest.Architecture
	ref := refModel{cfg: cfg, w: readWeights(t, b)}
	tests := []struct {
		name  string
		grids [][3]int
	}{
		{"one-image", [][3]int{{1, 4, 6}}},
		{"two-images-two-frames", [][3]int{{1, 4, 4}, {2, 2, 4}}},
	}
	s := openSession(t, b.VisionEncoderPath(), []string{models.PixelValues, models.GridTHW}, []string{models.ImageFeatures})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, 9))
			seg, _, _ := patchPositions(tc.grids)
			N, D := len(seg), cfg.Vision.PatchDim()
			px := make([][]float32, N)
			var flat []float32
			for i := range px {
				for range D {
					px[i] = append(px[i], float32(rng.NormFloat64()))
				}
				flat = append(flat, px[i]...)
			}
			var grid []int64
			for _, g := range tc.grids {
				grid = append(grid, int64(g[0]), int64(g[1]), int64(g[2]))
			}
			out, err := s.Run(context.Background(), map[string]*graph.Tensor{
				models.PixelValues: mustF32(t, []int64{int64(N), int64(D)}, flat),
				models.GridTHW:     mustI64(t, []int64{int64(len(tc.grids)), 3}, grid),
			})
			if err != nil {
				t.Fatal(err)
			}
			got := out[models.ImageFeatures]
			if got.Dims[0] != int64(N/4) || got.Dims[1] != int64(cfg.HiddenSize) {
				t.Fatalf("image_features shape %v, want [%d %d]", got.Dims, N/4, cfg.HiddenSize)
			}
			want := ref.vision(px, tc.grids)
			worst := 0.0
			for i, w := range want {
				worst = max(worst, maxAbsDiff(got.F32[i*cfg.HiddenSize:(i+1)*cfg.HiddenSize], w))
			}
			if worst > 1e-4 {
				t.Fatalf("max |ORT - reference| = %g > 1e-4", worst)
			}
			t.Logf("max |ORT - reference| = %.3g", worst)
		})
	}
}
