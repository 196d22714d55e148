package graph_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/graph/graphtest"
)

// gradIn describes one input of a gradient-check graph: a float tensor
// with values in [lo, hi) (differentiated), or, when intMax > 0, an int64
// index tensor with values in [intMin, intMax).
type gradIn struct {
	shape          []int64
	lo, hi         float64
	intMin, intMax int64
}

func fin(shape ...int64) gradIn               { return gradIn{shape: shape, lo: -2, hi: 2} }
func pos(shape ...int64) gradIn               { return gradIn{shape: shape, lo: 0.5, hi: 2} }
func idx(lo, hi int64, shape ...int64) gradIn { return gradIn{shape: shape, intMin: lo, intMax: hi} }

// gradCase is one row of the finite-difference table: build maps the
// inputs to an output of any shape; the checked loss is Σ y·R for a fixed
// random R, so every output element matters.
type gradCase struct {
	name   string
	dtype  graph.DType // Float64 unless stated
	inputs []gradIn
	build  func(g *graph.Graph, in []*graph.Value) *graph.Value
	opts   graph.GradOptions
}

// fdTolerance returns the step and tolerances for a dtype: float64 checks
// are tight; float32 ones (ops ORT implements only in float32) use a larger
// step and a looser, stated tolerance.
func fdTolerance(dt graph.DType) (h, atol, rtol float64) {
	if dt == graph.Float32 {
		return 1e-2, 2e-3, 2e-2
	}
	return 1e-6, 1e-6, 1e-5
}

func randTensor(rng *rand.Rand, dt graph.DType, in gradIn) *graph.Tensor {
	n := int64(1)
	for _, d := range in.shape {
		n *= d
	}
	if in.intMax > 0 {
		v := make([]int64, n)
		for i := range v {
			v[i] = in.intMin + rng.Int64N(in.intMax-in.intMin)
		}
		t, _ := graph.NewInt64(in.shape, v)
		return t
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = in.lo + (in.hi-in.lo)*rng.Float64()
	}
	return fromF64(dt, in.shape, v)
}

func fromF64(dt graph.DType, shape []int64, v []float64) *graph.Tensor {
	if dt == graph.Float32 {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		t, _ := graph.NewFloat32(shape, f)
		return t
	}
	t, _ := graph.NewFloat64(shape, v)
	return t
}

func toF64(t *graph.Tensor) []float64 {
	if t.DType == graph.Float64 {
		return t.F64
	}
	out := make([]float64, len(t.F32))
	for i, x := range t.F32 {
		out[i] = float64(x)
	}
	return out
}

// gradGraph is a saved gradient-check graph and its random feeds.
type gradGraph struct {
	path     string
	names    []string // input names
	outs     []string // "loss", "grad0", …
	feeds    map[string]*graph.Tensor
	floatIdx []int // inputs that are differentiated, in grad order
}

// buildGradGraph builds the case, differentiates Σ y·R with respect to its
// float inputs and saves the graph.
func buildGradGraph(t *testing.T, tc gradCase, dt graph.DType, rng *rand.Rand) gradGraph {
	t.Helper()
	gg := gradGraph{feeds: map[string]*graph.Tensor{}, outs: []string{"loss"}}
	g := graph.New(tc.name)
	var vals, wrt []*graph.Value
	for i, in := range tc.inputs {
		name, idt := fmt.Sprintf("x%d", i), dt
		if in.intMax > 0 {
			idt = graph.Int64
		}
		v := g.Input(name, idt, graph.Dims(in.shape...))
		vals, gg.names = append(vals, v), append(gg.names, name)
		gg.feeds[name] = randTensor(rng, dt, in)
		if in.intMax == 0 {
			wrt, gg.floatIdx = append(wrt, v), append(gg.floatIdx, i)
		}
	}
	y := tc.build(g, vals)
	if err := g.Err(); err != nil {
		t.Fatalf("forward: %v", err)
	}
	rv := make([]float64, y.Shape().NumElements())
	for i := range rv {
		rv[i] = rng.Float64()*2 - 1
	}
	loss := g.ReduceSum(g.Mul(y, g.Const(fromF64(dt, y.Shape().Sizes(), rv))), nil, false)
	grads, err := graph.GradWith(g, loss, wrt, tc.opts)
	if err != nil {
		t.Fatalf("Grad: %v", err)
	}
	g.Output("loss", g.Reshape(loss, 1))
	for i, gv := range grads {
		gg.outs = append(gg.outs, fmt.Sprintf("grad%d", i))
		g.Output(gg.outs[len(gg.outs)-1], gv)
	}
	if err := graph.CheckDefaultDomain(g); err != nil {
		t.Fatal(err)
	}
	gg.path = filepath.Join(t.TempDir(), "g.onnx")
	if err := g.Save(gg.path); err != nil {
		t.Fatal(err)
	}
	return gg
}

// checkGrad compares every gradient element of the case with a central
// finite difference computed through ONNX Runtime.
func checkGrad(t *testing.T, tc gradCase, seed uint64) {
	t.Helper()
	ctx := context.Background()
	dt := tc.dtype
	if dt == 0 {
		dt = graph.Float64
	}
	gg := buildGradGraph(t, tc, dt, rand.New(rand.NewPCG(seed, 7)))
	s, err := graphtest.Open(ctx, gg.path, gg.names, gg.outs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base, err := s.Run(ctx, gg.feeds)
	if err != nil {
		t.Fatal(err)
	}
	lossAt := func(x *graph.Tensor, e int, v float64) (float64, float64) {
		setF(x, e, v)
		res, err := s.Run(ctx, gg.feeds)
		if err != nil {
			t.Fatal(err)
		}
		return toF64(res["loss"])[0], getF(x, e)
	}
	h, atol, rtol := fdTolerance(dt)
	for k, i := range gg.floatIdx {
		x := gg.feeds[gg.names[i]]
		analytic := toF64(base[fmt.Sprintf("grad%d", k)])
		for e := range analytic {
			orig := getF(x, e)
			lp, xp := lossAt(x, e, orig+h)
			lm, xm := lossAt(x, e, orig-h)
			setF(x, e, orig)
			num := (lp - lm) / (xp - xm)
			if diff := math.Abs(analytic[e] - num); diff > atol+rtol*math.Abs(num) || math.IsNaN(analytic[e]) {
				t.Fatalf("input %d element %d: analytic %.9g, finite difference %.9g (diff %.3g)", i, e, analytic[e], num, diff)
			}
		}
	}
}

func getF(t *graph.Tensor, i int) float64 {
	if t.DType == graph.Float32 {
		return float64(t.F32[i])
	}
	return t.F64[i]
}

func setF(t *graph.Tensor, i int, v float64) {
	if t.DType == graph.Float32 {
		t.F32[i] = float32(v)
		return
	}
	t.F64[i] = v
}
