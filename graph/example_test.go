package graph_test

import (
	"fmt"

	"github.com/medgr2/medgr2/graph"
)

// Example builds a small attention-score graph with a symbolic batch and
// shows the inferred shapes.
func Example() {
	g := graph.New("scores")
	q := g.Input("q", graph.Float32, graph.Shape{graph.Sym("batch"), graph.D(8), graph.D(16)})
	k := g.Input("k", graph.Float32, graph.Shape{graph.Sym("batch"), graph.D(8), graph.D(16)})
	s := g.Softmax(g.MatMul(q, g.Transpose(k, 0, 2, 1)), -1)
	flat := g.Reshape(s, 0, -1)
	g.Output("probs", flat)
	fmt.Println(s.Shape(), flat.Shape(), g.Err())
	// Output: [batch, 8, 8] [batch, 64] <nil>
}
