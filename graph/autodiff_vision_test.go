package graph_test

import (
	"math"
	"testing"

	"github.com/medgr2/medgr2/graph"
)

// visionCase mirrors one block of models.BuildVision and its merger in
// float32 (ONNX Runtime has no float64 Erf), as the trainer inlines it: patch MatMul, LayerNorm (primitive
// ops), fused qkv split per head, 2-D rotary positions cast from int64
// patch coordinates, attention masked to each image by Where on an int64
// segment comparison, QuickGELU MLP, the 2×2 merge (reshape of 4 rows),
// exact GELU (Erf), and the Gather of merged rows into [B, S, H] by an
// index, which is how image features reach the decoder in a train graph.
// Two images of 2×2 patches: 8 patches, 2 merged rows.
func visionCase() gradCase {
	const n, pd, e, heads, hd, hidden = 8, 6, 4, 2, 2, 3
	dt := graph.Float32 // ONNX Runtime has no float64 Erf
	return gradCase{
		name: "vision-block-merger-gather", dtype: dt,
		inputs: []gradIn{fin(n, pd), small(pd, e), pos(e), small(e), small(e, 3*e), small(3 * e), small(e, e), pos(e), small(e),
			small(e, 2*e), small(2*e, e), small(4*e, hidden), idx(0, 2, 2, 3)},
		build: func(g *graph.Graph, in []gv) gv {
			ln := func(x, w, b gv) gv {
				mu := g.ReduceMean(x, []int64{-1}, true)
				xc := g.Sub(x, mu)
				v := g.ReduceMean(g.Mul(xc, xc), []int64{-1}, true)
				return g.Add(g.Mul(g.Div(xc, g.Sqrt(g.Add(v, cst(g, dt, 1e-6)))), w), b)
			}
			x := g.MatMul(in[0], in[1]) // [n, e]
			r := g.Range(g.ScalarInt64(0), g.ScalarInt64(n), g.ScalarInt64(1), graph.D(n))
			seg := g.Div(r, g.ScalarInt64(4))
			local := g.Mod(r, g.ScalarInt64(4))
			row, col := g.Div(local, g.ScalarInt64(2)), g.Mod(local, g.ScalarInt64(2))
			same := g.Equal(g.Unsqueeze(seg, 1), g.Unsqueeze(seg, 0))
			fr := func(p gv) gv { return g.Mul(g.Unsqueeze(g.Cast(p, dt), 1), cst(g, dt, 0.7)) }
			rot := g.Concat(-1, fr(row), fr(col)) // [n, hd]
			cos, sin := g.Cos(rot), g.Sin(rot)
			rope := func(t gv) gv {
				half := g.Split(t, -1, hd/2, hd/2)
				return g.Add(g.Mul(t, cos), g.Mul(g.Concat(-1, g.Neg(half[1]), half[0]), sin))
			}
			h := ln(x, in[2], in[3])
			qkv := g.Add(g.MatMul(h, in[4]), in[5])
			qkv = g.Transpose(g.Reshape(qkv, n, 3, heads, hd), 1, 2, 0, 3) // [3, heads, n, hd]
			parts := g.Split(qkv, 0, 1, 1, 1)
			q, k, v := g.Squeeze(parts[0], 0), g.Squeeze(parts[1], 0), g.Squeeze(parts[2], 0)
			q, k = rope(q), rope(k)
			scores := g.Mul(g.MatMul(q, g.Transpose(k, 0, 2, 1)), cst(g, dt, 1/math.Sqrt(hd)))
			p := g.Softmax(g.Where(same, scores, cst(g, dt, -1e9)), -1)
			ctx := g.Reshape(g.Transpose(g.MatMul(p, v), 1, 0, 2), n, e)
			x = g.Add(x, g.MatMul(ctx, in[6]))
			h = ln(x, in[7], in[8])
			h = g.MatMul(h, in[9])
			h = g.Mul(h, g.Sigmoid(g.Mul(h, cst(g, dt, 1.702))))
			x = g.Add(x, g.MatMul(h, in[10]))
			m := g.Reshape(x, n/4, 4*e)
			m = g.Mul(g.Mul(m, cst(g, dt, 0.5)), g.Add(g.Erf(g.Mul(m, cst(g, dt, 1/math.Sqrt2))), cst(g, dt, 1)))
			feats := g.MatMul(m, in[11])      // [2, hidden]
			return g.Gather(feats, in[12], 0) // [2, 3, hidden]
		},
	}
}

// small is a float input in [-0.5, 0.5): weights at the scale that keeps
// float32 finite differences of this deep a composition accurate.
func small(shape ...int64) gradIn { return gradIn{shape: shape, lo: -0.5, hi: 0.5} }

// TestGradVisionFiniteDifference checks the gradient through the vision
// encoder's composition (every input: pixels, weights) against central
// finite differences, with both embedding-gradient forms for the Gather.
func TestGradVisionFiniteDifference(t *testing.T) {
	for i, mode := range []graph.EmbeddingGrad{graph.EmbeddingScatter, graph.EmbeddingOneHot} {
		tc := visionCase()
		tc.opts = graph.GradOptions{Embedding: mode}
		if mode == graph.EmbeddingOneHot {
			tc.name += "-onehot"
		}
		t.Run(tc.name, func(t *testing.T) { checkGrad(t, tc, uint64(300+i)) })
	}
}
