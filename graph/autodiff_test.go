package graph_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/graph/graphtest"
)

func TestGradBadInput(t *testing.T) {
	type built struct {
		loss gv
		wrt  []gv
	}
	cases := []struct {
		name  string
		build func(g *graph.Graph) built
		want  error
		msg   string // must appear in the error text
	}{
		{"unknown-op-on-path", func(g *graph.Graph) built {
			w := g.Input("w", graph.Float32, graph.Dims(2, 3))
			fl := g.AddNode("Floor", []gv{w}, nil, graph.OutType{DType: graph.Float32, Shape: graph.Dims(2, 3)})[0]
			return built{g.ReduceSum(g.Mul(fl, w), nil, false), []gv{w}}
		}, graph.ErrNoGradRule, "Floor (Floor_0)"},
		{"non-scalar-loss", func(g *graph.Graph) built {
			w := g.Input("w", graph.Float32, graph.Dims(2, 3))
			return built{g.Mul(w, w), []gv{w}}
		}, graph.ErrLossNotScalar, "shape [2, 3]"},
		{"shape-mismatch", func(g *graph.Graph) built {
			a := g.Input("a", graph.Float32, graph.Dims(2, 3))
			b := g.Input("b", graph.Float32, graph.Dims(3))
			// a node whose declared output shape is wrong for its inputs
			bad := g.AddNode("Add", []gv{a, b}, nil, graph.OutType{DType: graph.Float32, Shape: graph.Dims(3)})[0]
			return built{g.ReduceSum(bad, nil, false), []gv{a}}
		}, graph.ErrShape, "Add"},
		{"int-wrt", func(g *graph.Graph) built {
			ids := g.Input("ids", graph.Int64, graph.Dims(2))
			e := g.Input("e", graph.Float32, graph.Dims(4, 3))
			return built{g.ReduceSum(g.Gather(e, ids, 0), nil, false), []gv{ids}}
		}, graph.ErrNotDifferential, "ids"},
		{"int-loss", func(g *graph.Graph) built {
			ids := g.Input("ids", graph.Int64, graph.Dims(1))
			return built{ids, []gv{ids}}
		}, graph.ErrNotDifferential, "int64"},
		{"nil-wrt", func(g *graph.Graph) built {
			w := g.Input("w", graph.Float32, graph.Dims(1))
			return built{w, []gv{nil}}
		}, graph.ErrNilValue, "wrt[0]"},
		{"foreign-wrt", func(g *graph.Graph) built {
			w := g.Input("w", graph.Float32, graph.Dims(1))
			other := graph.New("other").Input("w", graph.Float32, graph.Dims(1))
			return built{w, []gv{other}}
		}, graph.ErrForeignValue, "wrt[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := graph.New(tc.name)
			b := tc.build(g)
			_, err := graph.Grad(g, b.loss, b.wrt)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestGradErrorNamesNode(t *testing.T) {
	g := graph.New("topk")
	w := g.Input("w", graph.Float32, graph.Dims(4))
	y := g.AddNode("Round", []gv{w}, nil, graph.OutType{DType: graph.Float32, Shape: graph.Dims(4)})[0]
	_, err := graph.Grad(g, g.ReduceSum(y, nil, false), []gv{w})
	var ge *graph.GradError
	if !errors.As(err, &ge) || ge.Op != "Round" || ge.Node != "Round_0" {
		t.Fatalf("got %#v", err)
	}
}

// Non-differentiable branches (ArgMax, comparisons, int indices) and
// parameters the loss does not reach need no rules and get zeros.
func TestGradSkipsNonDifferentiable(t *testing.T) {
	g := graph.New("skip")
	w := g.Input("w", graph.Float32, graph.Dims(2, 3))
	unused := g.Input("unused", graph.Float32, graph.Dims(5))
	am := g.ArgMax(g.AddNode("Floor", []gv{w}, nil, graph.OutType{DType: graph.Float32, Shape: graph.Dims(2, 3)})[0], 1, true)
	picked := g.GatherElements(w, am, 1)
	loss := g.ReduceSum(picked, nil, false)
	grads, err := graph.Grad(g, loss, []gv{w, unused})
	if err != nil {
		t.Fatal(err)
	}
	g.Output("gw", grads[0])
	g.Output("gu", grads[1])
	out := runGraph(t, g, map[string]*graph.Tensor{
		"w":      f32(t, []int64{2, 3}, 0.5, 3.5, 1.5, 2.5, 0.5, 9.5),
		"unused": f32(t, []int64{5}, 1, 2, 3, 4, 5),
	}, "gw", "gu")
	if fmt.Sprint(out["gw"].F32) != "[0 1 0 0 0 1]" || fmt.Sprint(out["gu"].F32) != "[0 0 0 0 0]" {
		t.Fatalf("gw %v gu %v", out["gw"].F32, out["gu"].F32)
	}
}

func TestStopGradient(t *testing.T) {
	for _, viaOption := range []bool{false, true} {
		g := graph.New("stop")
		x := g.Input("x", graph.Float32, graph.Dims(3))
		var sx gv
		opts := graph.GradOptions{}
		if viaOption {
			sx = g.Identity(x)
			opts.Stop = []gv{sx}
		} else {
			sx = g.StopGradient(x)
		}
		// loss = Σ x·stop(x): the gradient is stop(x) = x, not 2x.
		grads, err := graph.GradWith(g, g.ReduceSum(g.Mul(x, sx), nil, false), []gv{x}, opts)
		if err != nil {
			t.Fatal(err)
		}
		g.Output("gx", grads[0])
		out := runGraph(t, g, map[string]*graph.Tensor{"x": f32(t, []int64{3}, 1, -2, 3)}, "gx")
		if fmt.Sprint(out["gx"].F32) != "[1 -2 3]" {
			t.Fatalf("option=%v: got %v, want [1 -2 3]", viaOption, out["gx"].F32)
		}
	}
}

func TestCheckDefaultDomain(t *testing.T) {
	g := graph.New("contrib")
	x := g.Input("x", graph.Float32, graph.Dims(2))
	g.AddNode("SoftmaxGrad_13", []gv{x, x}, nil, graph.OutType{DType: graph.Float32, Shape: graph.Dims(2)})
	if err := graph.CheckDefaultDomain(g); !errors.Is(err, graph.ErrDomain) || !strings.Contains(err.Error(), "SoftmaxGrad_13") {
		t.Fatalf("got %v", err)
	}
	// A whole train step serialises with the default domain only.
	ts := tinyLM(1, 3, 7, 4)
	if _, err := graph.BuildTrainStep(ts, graph.TrainStepConfig{Params: tinyParams}); err != nil {
		t.Fatal(err)
	}
	m, err := ts.Model()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.GetOpsetImport()) != 1 || m.GetOpsetImport()[0].GetDomain() != "" {
		t.Fatalf("opset imports %v", m.GetOpsetImport())
	}
	for _, n := range m.GetGraph().GetNode() {
		if n.GetDomain() != "" {
			t.Fatalf("node %s in domain %q", n.GetName(), n.GetDomain())
		}
	}
}

func runGraph(t *testing.T, g *graph.Graph, feeds map[string]*graph.Tensor, outs ...string) map[string]*graph.Tensor {
	t.Helper()
	path := filepath.Join(t.TempDir(), g.Name()+".onnx")
	if err := g.Save(path); err != nil {
		t.Fatal(err)
	}
	res, err := graphtest.RunFile(context.Background(), path, feeds, outs...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
