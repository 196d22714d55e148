// Package graph builds ONNX graphs in Go: an in-memory graph of nodes and
// values with static dtypes and shapes, inferred as each op is added, written
// as ONNX IR 8 / opset 17 (default ai.onnx domain only).
//
// # Building
//
// A Graph collects inputs, initializers (weights) and nodes. Op methods
// (MatMul, Add, Softmax, Reshape, …) check their arguments, infer the output
// dtype and shape and return the new *Value. The first error is kept and
// returned by Err (later calls become no-ops), so model code reads as
// straight-line math and is checked once:
//
//	g := graph.New("mlp")
//	x := g.Input("x", graph.Float32, graph.Shape{graph.Sym("batch"), graph.D(4)})
//	w := g.Initializer("w", wTensor) // [4, 2]
//	g.Output("y", g.Sigmoid(g.MatMul(x, w)))
//	if err := g.Save("mlp.onnx"); err != nil { … } // Save reports g.Err()
//
// # Shapes
//
// A Dim is a fixed size, a named symbol (Sym("batch"), written as an ONNX
// dim_param) or unknown. Broadcasting follows numpy; a fixed size meets a
// symbol by assuming they agree (ONNX Runtime checks at run time). Reshape
// infers its -1 also through symbols when they cancel. Ops whose output
// length depends on run-time values (Range) take the caller's Dim.
// Inference graphs use symbols; train graphs use fixed shapes.
//
// # Autodiff support
//
// Nodes are stored in insertion order, which is topological; walk
// Graph.Nodes from the end for reverse mode, find uses with
// Graph.Consumers, and append gradient nodes with the same op methods (or
// AddNode for ops without a typed helper). Weights may be declared as graph
// inputs instead of initializers for train-step graphs.
//
// # Weights outside the graph
//
// Weights live in one safetensors file beside the graphs (WriteWeights,
// ReadWeights) and the graphs reference them as ONNX external data
// (ExternalInitializer: location, offset, length into that file). Safetensors
// is self-describing (names, dtypes, shapes) so trainers and Hugging Face
// tools read it, and ONNX Runtime loads the same bytes directly, with no
// conversion. PlanWeights gives the same layout for the same specs, so new
// weights can be written over a bundle without rebuilding its graphs.
//
// Opset 17 notes: ReduceSum, Split, Squeeze, Unsqueeze, Slice and Clip take
// their axes/sizes/bounds as inputs (written as Constant nodes);
// ReduceMean and ReduceMax take axes as attributes.
package graph
