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
// # Reverse-mode autodiff
//
// ONNX Runtime's standard build has no gradient kernels (the training API
// was removed in 1.20; com.microsoft *Grad ops and ai.onnx.preview.training
// ops are absent), so Grad differentiates a Graph symbolically and appends
// the backward pass to the same graph as standard ONNX ops (default domain,
// opset 17). Together with ClipByGlobalNorm and AdamW (optim.go) and
// BuildTrainStep (trainstep.go) this yields one train-step graph per static
// (batch, length) bucket that ONNX Runtime runs like any inference graph.
//
// # How autodiff works
//
// Grad walks the nodes in reverse insertion order (which is reverse
// topological order), visiting only nodes that lie on a path from one of
// the wrt values to the loss. Each node's op type is looked up in a rule
// table (gradRules in grad_rules.go, one line per op; one small function per
// rule in grad_*.go). A rule receives the upstream gradients of the node's
// outputs (zeros for outputs nothing downstream reads) and returns one
// gradient per input that needs one; Grad checks each against the input's
// dtype and static shape and sums contributions when a value feeds several
// nodes. Integer and bool inputs (indices, masks, shapes) never receive
// gradients. Values passed through StopGradient are constants to the walk.
//
// Broadcasting ops reduce their gradients back to the input shape with
// ReduceSum over the broadcast axes, decided statically from the builder's
// shapes, so train graphs must have static shapes per bucket (a symbolic dim
// is fine where it is not broadcast).
//
// An op on the gradient path without a rule is a *GradError wrapping
// ErrNoGradRule that names the op and node. Embedding lookups (Gather) are
// differentiated with ScatterND(reduction="add") by default, or with a
// one-hot MatMul (GradOptions.Embedding = EmbeddingOneHot) where ScatterND's
// add reduction lacks kernels (some CUDA builds).
//
// # Autodiff usage
//
//	g := graph.New("mlp")
//	x := g.Input("x", graph.Float32, graph.Dims(8, 16))
//	w := g.Input("w", graph.Float32, graph.Dims(16, 4))
//	loss := g.ReduceMean(g.Mul(g.MatMul(x, w), g.MatMul(x, w)), nil, false)
//	grads, err := graph.Grad(g, loss, []*graph.Value{w})
//	if err != nil { … }
//	g.Output("loss", loss)
//	g.Output("w.grad", grads[0])
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
