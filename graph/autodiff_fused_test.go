package graph_test

import (
	"testing"

	"github.com/medgr2/medgr2/graph"
)

// TestGradEmitsLeanGraphs checks the structure of gradients the fast paths
// produce (their values are checked by the finite-difference table): op
// counts among the nodes Grad appends.
func TestGradEmitsLeanGraphs(t *testing.T) {
	f32 := graph.Float32
	cases := []struct {
		name  string
		build func(g *graph.Graph) (loss *graph.Value, wrt []*graph.Value)
		want  map[string]int // op → exact count in the backward nodes
	}{
		{"cross-entropy-pick", func(g *graph.Graph) (*graph.Value, []*graph.Value) {
			x := g.Input("x", f32, graph.Dims(2, 3, 7))
			lab := g.Input("labels", graph.Int64, graph.Dims(2, 3, 1))
			return g.ReduceSum(g.GatherElements(g.LogSoftmax(x, -1), lab, 2), nil, false), []*graph.Value{x}
		}, map[string]int{"ScatterElements": 1, "Sub": 0, "Expand": 1}}, // the one Expand is the loss seed's
		{"rms-norm", func(g *graph.Graph) (*graph.Value, []*graph.Value) {
			x := g.Input("x", f32, graph.Dims(2, 3, 4))
			y := g.Mul(x, g.Reciprocal(g.Sqrt(g.ReduceMean(g.Mul(x, x), []int64{-1}, true))))
			return g.ReduceSum(g.Mul(y, y), nil, false), []*graph.Value{x}
		}, map[string]int{"Expand": 0}},
		{"gqa-shared-keys", func(g *graph.Graph) (*graph.Value, []*graph.Value) {
			q := g.Input("q", f32, graph.Dims(2, 2, 3, 5, 4))
			k := g.Input("k", f32, graph.Dims(2, 2, 1, 4, 5))
			return g.ReduceSum(g.MatMul(q, k), nil, false), []*graph.Value{q, k}
		}, map[string]int{"MatMul": 2, "ReduceSum": 0}},
		{"transposed-weight", func(g *graph.Graph) (*graph.Value, []*graph.Value) {
			x := g.Input("x", f32, graph.Dims(2, 3, 4))
			w := g.Input("w", f32, graph.Dims(6, 4))
			return g.ReduceSum(g.MatMul(x, g.Transpose(w, 1, 0)), nil, false), []*graph.Value{x, w}
		}, map[string]int{"MatMul": 1, "Gemm": 1, "Transpose": 0}}, // dx = d·W, dW = Gemm(dᵀ, x)
		{"silu", func(g *graph.Graph) (*graph.Value, []*graph.Value) {
			x := g.Input("x", f32, graph.Dims(2, 3))
			return g.ReduceSum(g.Exp(g.Mul(x, g.Sigmoid(x))), nil, false), []*graph.Value{x}
		}, map[string]int{"Mul": 3, "Sub": 1, "Add": 1}}, // Exp's d·y, then d·(σ + y·(1−σ))
		{"tied-embedding", func(g *graph.Graph) (*graph.Value, []*graph.Value) {
			e := g.Input("embed", f32, graph.Dims(7, 4))
			ids := g.Input("ids", graph.Int64, graph.Dims(2, 3))
			logits := g.MatMul(g.Gather(e, ids, 0), g.Transpose(e, 1, 0))
			return g.ReduceSum(logits, nil, false), []*graph.Value{e}
		}, map[string]int{"ScatterND": 1, "Gemm": 1, "Expand": 1}}, // no zeros: the lookup's rows land on the head's dE
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := graph.New(tc.name)
			loss, wrt := tc.build(g)
			before := len(g.Nodes())
			if _, err := graph.Grad(g, loss, wrt); err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, n := range g.Nodes()[before:] {
				got[n.OpType()]++
			}
			for op, want := range tc.want {
				if got[op] != want {
					t.Errorf("%d %s nodes in the backward pass, want %d (all: %v)", got[op], op, want, got)
				}
			}
		})
	}
}
