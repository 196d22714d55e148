package graph_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/graph/graphtest"
)

func f32(t *testing.T, dims []int64, data ...float32) *graph.Tensor {
	t.Helper()
	x, err := graph.NewFloat32(dims, data)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// opCase builds a graph with input "x" (float32 [2,3] = 1..6, or the given
// feed) and one output "y", and states the expected output.
type opCase struct {
	name  string
	build func(g *graph.Graph, x *graph.Value) *graph.Value
	want  []float32 // expected output (cast to float32 for int/bool results)
	shape []int64
}

func TestOpsAgainstORT(t *testing.T) {
	e := float32(math.E)
	cases := []opCase{
		{"Add-broadcast", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Add(x, g.ConstFloat32s(10, 20, 30))
		}, []float32{11, 22, 33, 14, 25, 36}, []int64{2, 3}},
		{"Sub", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Sub(x, g.ScalarFloat32(1)) },
			[]float32{0, 1, 2, 3, 4, 5}, []int64{2, 3}},
		{"Div-Mul", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Div(g.Mul(x, g.ScalarFloat32(2)), g.ScalarFloat32(4))
		}, []float32{0.5, 1, 1.5, 2, 2.5, 3}, []int64{2, 3}},
		{"Pow-Sqrt", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Sqrt(g.Pow(x, g.ScalarFloat32(2)))
		}, []float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}},
		{"Neg-Exp-Log", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Neg(g.Log(g.Exp(x))) },
			[]float32{-1, -2, -3, -4, -5, -6}, []int64{2, 3}},
		{"Reciprocal", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Reciprocal(x) },
			[]float32{1, 0.5, 1.0 / 3, 0.25, 0.2, 1.0 / 6}, []int64{2, 3}},
		{"Sigmoid-Tanh", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Add(g.Sigmoid(g.Sub(x, x)), g.Tanh(g.Sub(x, x)))
		}, []float32{0.5, 0.5, 0.5, 0.5, 0.5, 0.5}, []int64{2, 3}},
		{"Sin-Cos", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Add(g.Mul(g.Sin(x), g.Sin(x)), g.Mul(g.Cos(x), g.Cos(x)))
		}, []float32{1, 1, 1, 1, 1, 1}, []int64{2, 3}},
		{"Softmax", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Softmax(g.Log(x), 1) },
			[]float32{1.0 / 6, 2.0 / 6, 3.0 / 6, 4.0 / 15, 5.0 / 15, 6.0 / 15}, []int64{2, 3}},
		{"LogSoftmax", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Exp(g.LogSoftmax(g.Log(x), -1)) },
			[]float32{1.0 / 6, 2.0 / 6, 3.0 / 6, 4.0 / 15, 5.0 / 15, 6.0 / 15}, []int64{2, 3}},
		{"ReduceSum", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.ReduceSum(x, []int64{1}, false) },
			[]float32{6, 15}, []int64{2}},
		{"ReduceSum-all", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.ReduceSum(x, nil, true) },
			[]float32{21}, []int64{1, 1}},
		{"ReduceMean", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.ReduceMean(x, []int64{0}, true) },
			[]float32{2.5, 3.5, 4.5}, []int64{1, 3}},
		{"ReduceMax", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.ReduceMax(x, []int64{-1}, false) },
			[]float32{3, 6}, []int64{2}},
		{"MatMul", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.MatMul(x, g.Transpose(x)) },
			[]float32{14, 32, 32, 77}, []int64{2, 2}},
		{"Gemm", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Gemm(x, x, g.ConstFloat32s(1, 2), 1, 1, false, true)
		}, []float32{15, 34, 33, 79}, []int64{2, 2}},
		{"Gather", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Gather(x, g.ConstInt64s(2, 0), 1)
		}, []float32{3, 1, 6, 4}, []int64{2, 2}},
		{"GatherElements", func(g *graph.Graph, x *graph.Value) *graph.Value {
			idx := g.Reshape(g.ConstInt64s(2, 0), 2, 1)
			return g.GatherElements(x, idx, 1)
		}, []float32{3, 4}, []int64{2, 1}},
		{"Reshape-Transpose", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Transpose(g.Reshape(x, 3, -1), 1, 0)
		}, []float32{1, 3, 5, 2, 4, 6}, []int64{2, 3}},
		{"Concat", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Concat(0, x, x) },
			[]float32{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}, []int64{4, 3}},
		{"Split", func(g *graph.Graph, x *graph.Value) *graph.Value {
			parts := g.Split(x, 1, 1, 2)
			return g.Concat(1, parts[1], parts[0])
		}, []float32{2, 3, 1, 5, 6, 4}, []int64{2, 3}},
		{"Slice", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Slice(x, []int64{-2}, []int64{graph.SliceEnd}, []int64{1}, nil)
		}, []float32{2, 3, 5, 6}, []int64{2, 2}},
		{"Slice-step", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Slice(x, []int64{2}, []int64{-4}, []int64{1}, []int64{-2})
		}, []float32{3, 1, 6, 4}, []int64{2, 2}},
		{"Squeeze-Unsqueeze", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Squeeze(g.Unsqueeze(x, 0, 3), 0)
		}, []float32{1, 2, 3, 4, 5, 6}, []int64{2, 3, 1}},
		{"Where-Greater", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Where(g.Greater(x, g.ScalarFloat32(3)), x, g.ScalarFloat32(0))
		}, []float32{0, 0, 0, 4, 5, 6}, []int64{2, 3}},
		{"Equal-Less-Cast", func(g *graph.Graph, x *graph.Value) *graph.Value {
			eq := g.Cast(g.Equal(x, g.ScalarFloat32(2)), graph.Float32)
			lt := g.Cast(g.Less(x, g.ScalarFloat32(2)), graph.Float32)
			return g.Add(eq, g.Mul(lt, g.ScalarFloat32(10)))
		}, []float32{10, 1, 0, 0, 0, 0}, []int64{2, 3}},
		{"Clip", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Clip(x, g.ScalarFloat32(2), g.ScalarFloat32(4))
		}, []float32{2, 2, 3, 4, 4, 4}, []int64{2, 3}},
		{"Min-Max", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Add(g.Min(x, g.ScalarFloat32(3)), g.Max(x, g.ScalarFloat32(5)))
		}, []float32{6, 7, 8, 8, 8, 9}, []int64{2, 3}},
		{"Expand", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Expand(g.Slice(x, []int64{0}, []int64{1}, []int64{0}, nil), 2, 3)
		}, []float32{1, 2, 3, 1, 2, 3}, []int64{2, 3}},
		{"Shape-Range", func(g *graph.Graph, x *graph.Value) *graph.Value {
			n := g.Gather(g.ShapeOf(x), g.ScalarInt64(1), 0)
			return g.Cast(g.Range(g.ScalarInt64(0), n, g.ScalarInt64(1), graph.D(3)), graph.Float32)
		}, []float32{0, 1, 2}, []int64{3}},
		{"Trilu", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Trilu(x, false, 0) },
			[]float32{1, 0, 0, 4, 5, 0}, []int64{2, 3}},
		{"CumSum-Mod-ArgMax", func(g *graph.Graph, x *graph.Value) *graph.Value {
			c := g.CumSum(g.Cast(x, graph.Int64), 1)
			m := g.Mod(c, g.ScalarInt64(4))
			return g.Cast(g.Concat(1, m, g.ArgMax(x, 1, true)), graph.Float32)
		}, []float32{1, 3, 2, 2, 0, 1, 3, 2}, []int64{2, 4}},
		{"And-Or-Not", func(g *graph.Graph, x *graph.Value) *graph.Value {
			a := g.Greater(x, g.ScalarFloat32(2))
			b := g.Less(x, g.ScalarFloat32(5))
			return g.Cast(g.Or(g.And(a, b), g.Not(b)), graph.Float32)
		}, []float32{0, 0, 1, 1, 1, 1}, []int64{2, 3}},
		{"Exp-e", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Exp(g.Div(x, x))
		}, []float32{e, e, e, e, e, e}, []int64{2, 3}},
	}
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := graph.New(tc.name)
			x := g.Input("x", graph.Float32, graph.Shape{graph.Sym("rows"), graph.D(3)})
			y := g.Output("y", tc.build(g, x))
			if err := g.Err(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tc.name+".onnx")
			if err := g.Save(path); err != nil {
				t.Fatal(err)
			}
			out, err := graphtest.RunFile(ctx, path, map[string]*graph.Tensor{"x": f32(t, []int64{2, 3}, 1, 2, 3, 4, 5, 6)}, "y")
			if err != nil {
				t.Fatal(err)
			}
			got := asFloat32(out["y"])
			if !equalDims(out["y"].Dims, tc.shape) {
				t.Fatalf("shape %v, want %v", out["y"].Dims, tc.shape)
			}
			// the builder's static shape agrees with ORT where it is fixed
			for i, d := range y.Shape() {
				if d.Fixed() && d.Size != tc.shape[i] {
					t.Errorf("inferred %v, ORT gave %v", y.Shape(), tc.shape)
				}
			}
			for i := range tc.want {
				if math.Abs(float64(got[i]-tc.want[i])) > 1e-5 {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func asFloat32(t *graph.Tensor) []float32 {
	switch t.DType {
	case graph.Int64:
		out := make([]float32, len(t.I64))
		for i, v := range t.I64 {
			out[i] = float32(v)
		}
		return out
	}
	return t.F32
}

func equalDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
