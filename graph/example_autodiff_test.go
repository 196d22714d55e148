package graph_test

import (
	"fmt"

	"github.com/medgr2/medgr2/graph"
)

// ExampleGrad differentiates a least-squares loss with respect to a weight
// matrix; the backward nodes are appended to the same graph.
func ExampleGrad() {
	g := graph.New("lsq")
	x := g.Input("x", graph.Float32, graph.Dims(8, 3))
	y := g.Input("y", graph.Float32, graph.Dims(8, 2))
	w := g.Input("w", graph.Float32, graph.Dims(3, 2))
	diff := g.Sub(g.MatMul(x, w), y)
	loss := g.ReduceMean(g.Mul(diff, diff), nil, false)
	grads, err := graph.Grad(g, loss, []*graph.Value{w})
	if err != nil {
		fmt.Println(err)
		return
	}
	g.Output("loss", g.Reshape(loss, 1))
	g.Output("w.grad", grads[0])
	fmt.Println(grads[0].Shape(), graph.CheckDefaultDomain(g))
	// Output: [3, 2] <nil>
}

// ExampleBuildTrainStep turns a forward graph with a scalar "loss" output
// into one train step and lists what the trainer feeds and fetches.
func ExampleBuildTrainStep() {
	g := graph.New("linear")
	x := g.Input("x", graph.Float32, graph.Dims(4, 3))
	w := g.Input("w", graph.Float32, graph.Dims(3, 1))
	b := g.Input("b", graph.Float32, graph.Dims(1))
	pred := g.Add(g.MatMul(x, w), b)
	g.Output("loss", g.Reshape(g.ReduceMean(g.Mul(pred, pred), nil, false), 1))
	g.Output("pred_mean", g.Reshape(g.ReduceMean(pred, nil, false), 1))
	ts, err := graph.BuildTrainStep(g, graph.TrainStepConfig{Params: []string{"w", "b"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ts.InputNames())
	fmt.Println(ts.OutputNames())
	// Output:
	// [x w w.m w.v b b.m b.v step lr]
	// [loss pred_mean grad_norm w.new w.m.new w.v.new b.new b.m.new b.v.new]
}
