package graph_test

import (
	"math"
	"testing"

	"github.com/medgr2/medgr2/graph"
)

// cst returns a rank-0 constant of dtype dt.
func cst(g *graph.Graph, dt graph.DType, v float64) gv {
	if dt == graph.Float32 {
		return g.ScalarFloat32(float32(v))
	}
	return g.Const(f64s(v))
}

// rmsNorm is Qwen2's RMSNorm: x / √(mean(x²) + ε) · w.
func rmsNorm(g *graph.Graph, x, w gv, dt graph.DType) gv {
	ms := g.ReduceMean(g.Mul(x, x), []int64{-1}, true)
	return g.Mul(g.Mul(x, g.Reciprocal(g.Sqrt(g.Add(ms, cst(g, dt, 1e-6))))), w)
}

// geluTanh is the tanh approximation of GELU.
func geluTanh(g *graph.Graph, x gv, dt graph.DType) gv {
	inner := g.Mul(cst(g, dt, math.Sqrt(2/math.Pi)), g.Add(x, g.Mul(cst(g, dt, 0.044715), g.Pow(x, cst(g, dt, 3)))))
	return g.Mul(g.Mul(cst(g, dt, 0.5), x), g.Add(cst(g, dt, 1), g.Tanh(inner)))
}

// crossEntropy is the mean token cross-entropy of logits [n, c] against
// int64 targets [n].
func crossEntropy(g *graph.Graph, logits, targets gv) gv {
	logp := g.LogSoftmax(logits, -1)
	picked := g.GatherElements(logp, g.Unsqueeze(targets, 1), 1)
	return g.Neg(g.ReduceMean(picked, nil, false))
}

// mlpCase: embedding → RMSNorm → Linear+bias → SiLU + GELU → Linear →
// softmax cross-entropy.
func mlpCase(dt graph.DType, mode graph.EmbeddingGrad) gradCase {
	return gradCase{
		name: "mlp-rmsnorm-ce-" + dt.String(), dtype: dt, opts: graph.GradOptions{Embedding: mode},
		inputs: []gradIn{idx(0, 7, 2, 3), fin(7, 4), fin(4), fin(4, 6), fin(6), fin(6, 5), idx(0, 5, 6)},
		build: func(g *graph.Graph, in []gv) gv {
			x := rmsNorm(g, g.Gather(in[1], in[0], 0), in[2], dt)
			h := g.Add(g.MatMul(x, in[3]), in[4])
			act := g.Add(g.Mul(h, g.Sigmoid(h)), g.Mul(geluTanh(g, h, dt), cst(g, dt, 0.5)))
			logits := g.Reshape(g.MatMul(act, in[5]), 6, 5)
			return g.Reshape(crossEntropy(g, logits, in[6]), 1)
		},
	}
}

// attentionCase: two-head causal self-attention with rotary embedding
// (rotate-half via Split/Concat), residual and output projection.
func attentionCase() gradCase {
	const b, s, heads, hd = 2, 4, 2, 4
	const d = heads * hd
	dt := graph.Float64
	return gradCase{
		name:   "attention-causal-rope",
		inputs: []gradIn{fin(b, s, d), fin(d, d), fin(d, d), fin(d, d), fin(d, d)},
		build: func(g *graph.Graph, in []gv) gv {
			x := in[0]
			pos := g.Cast(g.Range(g.ScalarInt64(0), g.ScalarInt64(s), g.ScalarInt64(1), graph.D(s)), dt)
			ang := g.Mul(g.Reshape(pos, s, 1), g.Const(&graph.Tensor{DType: dt, Dims: []int64{hd}, F64: []float64{1, 0.3, 1, 0.3}}))
			cos, sin := g.Cos(ang), g.Sin(ang)
			rope := func(t gv) gv {
				half := g.Split(t, -1, hd/2, hd/2)
				rot := g.Concat(-1, g.Neg(half[1]), half[0])
				return g.Add(g.Mul(t, cos), g.Mul(rot, sin))
			}
			proj := func(w gv) gv { return g.Transpose(g.Reshape(g.MatMul(x, w), b, s, heads, hd), 0, 2, 1, 3) }
			q, k, v := rope(proj(in[1])), rope(proj(in[2])), proj(in[3])
			scores := g.Div(g.MatMul(q, g.Transpose(k, 0, 1, 3, 2)), cst(g, dt, math.Sqrt(hd)))
			ones := g.Expand(cst(g, dt, 1), s, s)
			causal := g.Greater(g.Trilu(ones, false, 0), cst(g, dt, 0.5))
			p := g.Softmax(g.Where(causal, scores, cst(g, dt, -1e9)), -1)
			o := g.Reshape(g.Transpose(g.MatMul(p, v), 0, 2, 1, 3), b, s, d)
			return g.Add(x, g.MatMul(o, in[4]))
		},
	}
}

func TestGradModelsFiniteDifference(t *testing.T) {
	cases := []gradCase{
		mlpCase(graph.Float64, graph.EmbeddingScatter),
		mlpCase(graph.Float64, graph.EmbeddingOneHot),
		mlpCase(graph.Float32, graph.EmbeddingScatter),
		attentionCase(),
	}
	for i, tc := range cases {
		if tc.dtype == graph.Float64 && tc.opts.Embedding == graph.EmbeddingOneHot {
			tc.name += "-onehot"
		}
		t.Run(tc.name, func(t *testing.T) { checkGrad(t, tc, uint64(100+i)) })
	}
}
