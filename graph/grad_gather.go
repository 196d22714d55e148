package graph

import "fmt"

// gradGather differentiates Gather (embedding lookup): the rows of d are
// summed into the rows of x they were read from, with ScatterND add
// (EmbeddingScatter) or a one-hot MatMul (EmbeddingOneHot).
func gradGather(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, x, idx, d := r.g, n.inputs[0], n.inputs[1], dy[0]
	if !x.shape.Fixed() || !idx.shape.Fixed() {
		return nil, fmt.Errorf("%w: Gather gradient needs static shapes, got data %v, indices %v", ErrUnsupported, x.shape, idx.shape)
	}
	a, err := normAxis(attrInt(n, "axis", 0), x.Rank())
	if err != nil {
		return nil, err
	}
	ri, vocab := idx.Rank(), x.shape[a].Size
	// Bring the index dims of d to the front and the gathered axis of x to
	// the front, so the update is a row scatter into [V, rest...].
	var permD, permX []int64
	for i := range ri {
		permD = append(permD, int64(a+i))
	}
	permX = append(permX, int64(a))
	for i := range a {
		permD = append(permD, int64(i))
		permX = append(permX, int64(i))
	}
	for i := a + 1; i < x.Rank(); i++ {
		permD = append(permD, int64(i-1+ri))
		permX = append(permX, int64(i))
	}
	dT := d
	if a > 0 {
		dT = g.Transpose(d, permD...)
	}
	xTShape := make(Shape, len(permX))
	for i, p := range permX {
		xTShape[i] = x.shape[p]
	}
	i64 := normIndex(g, idx, vocab)
	var dxT *Value
	if r.opts.Embedding == EmbeddingOneHot {
		dxT = gatherGradOneHot(g, i64, dT, xTShape, vocab)
	} else {
		var base *Value
		if prev := r.grads[x]; a == 0 && prev != nil {
			// scatter onto the gradient x already has (a tied LM head's)
			// instead of onto zeros and adding the two
			base = prev
			delete(r.grads, x)
		} else {
			base = g.AddNode("Expand", []*Value{r.constLike(x, 0), g.ConstInt64s(xTShape.Sizes()...)}, nil, OutType{x.dtype, xTShape})[0]
		}
		dxT = g.ScatterNDAdd(base, g.Unsqueeze(i64, -1), dT)
	}
	dx := dxT
	if a > 0 {
		inv := make([]int64, len(permX))
		for i, p := range permX {
			inv[p] = int64(i)
		}
		dx = g.Transpose(dxT, inv...)
	}
	return []*Value{dx, nil}, nil
}

// gatherGradOneHot computes onehot(idx)ᵀ · d as one MatMul.
func gatherGradOneHot(g *Graph, idx, dT *Value, xTShape Shape, vocab int64) *Value {
	tokens := idx.shape.NumElements()
	rest := xTShape.NumElements() / max(vocab, 1)
	oh := g.OneHot(g.Reshape(idx, tokens), vocab, dT.dtype)
	prod := g.MatMul(g.Transpose(oh, 1, 0), g.Reshape(dT, tokens, rest))
	return g.Reshape(prod, xTShape.Sizes()...)
}

// normIndex casts indices to int64 and maps negative ones into [0, size).
func normIndex(g *Graph, idx *Value, size int64) *Value {
	i := g.Cast(idx, Int64)
	return g.Where(g.Less(i, g.ScalarInt64(0)), g.Add(i, g.ScalarInt64(size)), i)
}

// gradGatherElements scatters d back to the positions it was read from.
func gradGatherElements(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, x, idx, d := r.g, n.inputs[0], n.inputs[1], dy[0]
	if !x.shape.Fixed() || !idx.shape.Fixed() {
		return nil, fmt.Errorf("%w: GatherElements gradient needs static shapes, got data %v, indices %v", ErrUnsupported, x.shape, idx.shape)
	}
	axis := attrInt(n, "axis", 0)
	a, err := normAxis(axis, x.Rank())
	if err != nil {
		return nil, err
	}
	i64 := normIndex(g, idx, x.shape[a].Size)
	if r.opts.Embedding != EmbeddingOneHot {
		if r.logSoftmaxPick(x, i64, d, a) {
			return []*Value{nil, nil}, nil
		}
		return []*Value{g.ScatterElementsAdd(r.zerosLike(x), i64, d, int64(a)), nil}, nil
	}
	for i := range x.shape {
		if i != a && x.shape[i] != idx.shape[i] {
			return nil, fmt.Errorf("%w: one-hot GatherElements gradient needs indices %v to match data %v off axis %d", ErrUnsupported, idx.shape, x.shape, a)
		}
	}
	// [.., k, 1, ..] == [1.., V, ..] → [.., k, V, ..]; sum over k.
	size := x.shape[a].Size
	classes := g.Range(g.ScalarInt64(0), g.ScalarInt64(size), g.ScalarInt64(1), D(size))
	shape := make([]int64, x.Rank()+1)
	for i := range shape {
		shape[i] = 1
	}
	shape[a+1] = size
	hit := g.Equal(g.Unsqueeze(i64, int64(a+1)), g.Reshape(classes, shape...))
	spread := g.Where(hit, g.Unsqueeze(d, int64(a+1)), r.constLike(d, 0))
	return []*Value{g.ReduceSum(spread, []int64{int64(a)}, false), nil}, nil
}

// logSoftmaxPick is the fused rule for GatherElements(LogSoftmax(z), idx)
// along the softmax axis (the label log-probs of a cross-entropy): the
// dense gradient d − exp(y)·Σd is the sparse d scattered onto
// −exp(y)·Σ_axis d, so the zero tensor, the dense ReduceSum and the Sub
// over the logits are never built. It reports whether it applied (then the
// LogSoftmax is marked fused and z has received its gradient).
func (r *rev) logSoftmaxPick(x, idx, d *Value, axis int) bool {
	p := r.fusedProducer(x, "LogSoftmax")
	if p == nil {
		return false
	}
	if a, err := normAxis(attrInt(p, "axis", -1), x.Rank()); err != nil || a != axis {
		return false
	}
	g := r.g
	s := g.ReduceSum(d, []int64{int64(axis)}, true)
	r.addGrad(p.inputs[0], g.ScatterElementsAdd(g.Mul(g.Exp(x), g.Neg(s)), idx, d, int64(axis)))
	r.fused[p] = true
	return true
}
