package graph_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/medgr2/medgr2/graph"
)

func TestGradOpsAgainstORT(t *testing.T) {
	g := graph.New("scatter")
	data := g.Input("x", graph.Float32, graph.Dims(3, 2))
	ids := g.ConstInt64s(2, 0, 2)
	upd := g.Reshape(g.ConstFloat32s(1, 2, 3, 4, 5, 6), 3, 2)
	g.Output("nd", g.ScatterNDAdd(data, g.Unsqueeze(ids, -1), upd))
	g.Output("el", g.ScatterElementsAdd(data, g.Reshape(g.ConstInt64s(1, 0, 0, 0, 1, 1), 3, 2), upd, 0))
	g.Output("oh", g.OneHot(g.ConstInt64s(1, -1), 3, graph.Float32))
	g.Output("sg", g.StopGradient(data))
	out := runGraph(t, g, map[string]*graph.Tensor{"x": f32(t, []int64{3, 2}, 0, 0, 0, 0, 0, 0)}, "nd", "el", "oh", "sg")
	for name, want := range map[string]string{
		"nd": "[3 4 0 0 6 8]", "el": "[3 6 6 6 0 0]", "oh": "[0 1 0 0 0 1]", "sg": "[0 0 0 0 0 0]",
	} {
		if got := fmt.Sprint(out[name].F32); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
}

func TestGradOpsBadInput(t *testing.T) {
	cases := []struct {
		name  string
		build func(g *graph.Graph, x gv)
		want  error
	}{
		{"ScatterND-int32-indices", func(g *graph.Graph, x gv) {
			g.ScatterNDAdd(x, g.Cast(g.Reshape(g.ConstInt64s(0), 1, 1), graph.Int32), g.Reshape(g.ConstFloat32s(1, 2), 1, 2))
		}, graph.ErrDType},
		{"ScatterND-updates-shape", func(g *graph.Graph, x gv) {
			g.ScatterNDAdd(x, g.Reshape(g.ConstInt64s(0), 1, 1), g.ConstFloat32s(1, 2, 3))
		}, graph.ErrShape},
		{"ScatterND-index-depth", func(g *graph.Graph, x gv) {
			g.ScatterNDAdd(x, g.Reshape(g.ConstInt64s(0, 0, 0), 1, 3), g.ConstFloat32s(1))
		}, graph.ErrShape},
		{"ScatterElements-rank", func(g *graph.Graph, x gv) {
			g.ScatterElementsAdd(x, g.ConstInt64s(0), g.ConstFloat32s(1), 0)
		}, graph.ErrShape},
		{"ScatterElements-axis", func(g *graph.Graph, x gv) {
			g.ScatterElementsAdd(x, g.Reshape(g.ConstInt64s(0), 1, 1), g.Reshape(g.ConstFloat32s(1), 1, 1), 2)
		}, graph.ErrInvalidArg},
		{"OneHot-float-indices", func(g *graph.Graph, x gv) { g.OneHot(x, 3, graph.Float32) }, graph.ErrInvalidArg},
		{"OneHot-depth", func(g *graph.Graph, x gv) { g.OneHot(g.ConstInt64s(1), 0, graph.Float32) }, graph.ErrInvalidArg},
		{"StopGradient-nil", func(g *graph.Graph, x gv) { g.StopGradient(nil) }, graph.ErrNilValue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := graph.New(tc.name)
			tc.build(g, g.Input("x", graph.Float32, graph.Dims(3, 2)))
			if err := g.Err(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
