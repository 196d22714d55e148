package graph

import (
	"fmt"
	"slices"
)

// gradSoftmax: dx = y·(d − Σ_axis d·y).
func gradSoftmax(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, y, d := r.g, n.outputs[0], dy[0]
	axis := attrInt(n, "axis", -1)
	s := g.ReduceSum(g.Mul(d, y), []int64{axis}, true)
	return []*Value{g.Mul(y, g.Sub(d, s))}, nil
}

// gradLogSoftmax: dx = d − exp(y)·Σ_axis d.
func gradLogSoftmax(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, y, d := r.g, n.outputs[0], dy[0]
	axis := attrInt(n, "axis", -1)
	s := g.ReduceSum(d, []int64{axis}, true)
	return []*Value{g.Sub(d, g.Mul(g.Exp(y), s))}, nil
}

// gradMatMul: dA = d·Bᵀ, dB = Aᵀ·d, with rank-1 operands promoted to
// matrices and broadcast batch dims summed away.
func gradMatMul(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, a, b, d := r.g, n.inputs[0], n.inputs[1], dy[0]
	a2, b2, d2 := a, b, d
	switch {
	case a.Rank() == 1 && b.Rank() == 1:
		d2 = g.Reshape(d, 1, 1)
	case a.Rank() == 1:
		d2 = g.Unsqueeze(d, -2)
	case b.Rank() == 1:
		d2 = g.Unsqueeze(d, -1)
	}
	if a.Rank() == 1 {
		a2 = g.Unsqueeze(a, 0)
	}
	if b.Rank() == 1 {
		b2 = g.Unsqueeze(b, -1)
	}
	out := []*Value{nil, nil}
	if need[0] {
		out[0] = reshapeLike(g, r.matMulGradA(a2, b2, d2), a)
	}
	if need[1] {
		if db := r.matMulGradB(a2, b2, d2); db != nil {
			out[1] = reshapeLike(g, db, b)
		}
	}
	return out, nil
}

// matMulGradB computes Aᵀ·d reduced to B's shape. When B is broadcast
// over trailing batch dims (a weight matrix against batched activations, or
// grouped-query attention's shared keys and values), those dims are folded
// into the rows of A and d so one larger product replaces a batched product
// and a ReduceSum. When B is the transpose of a weight W that only this
// MatMul reads, it is a fused rule: dW = dᵀ·A goes straight to W (the
// Transpose is marked fused) and it returns nil. When d is narrower than A
// (N < K) it computes (dᵀ·A)ᵀ.
func (r *rev) matMulGradB(a2, b2, d2 *Value) *Value {
	g := r.g
	af, df, lead, ok := foldBroadcastRows(g, a2, b2, d2)
	if !ok {
		return r.unbroadcast(g.MatMul(swapLast2(g, a2), d2), b2)
	}
	if lead == 0 && b2.Rank() == 2 {
		// A weight: af, df are [rows, K] and [rows, N]; Gemm reads them
		// transposed in place.
		if p := r.fusedProducer(b2, "Transpose"); p != nil && p.inputs[0].Rank() == 2 {
			r.addGrad(p.inputs[0], g.Gemm(df, af, nil, 1, 0, true, false))
			r.fused[p] = true
			return nil
		}
		return g.Gemm(af, df, nil, 1, 0, true, false)
	}
	if k, n := af.shape[af.Rank()-1].Size, df.shape[df.Rank()-1].Size; n < k {
		// (dᵀ·A)ᵀ: CPU GEMM kernels run a narrow output (attention's
		// dV = Pᵀ·dO, N = head dim) much slower than the wide transposed one.
		return reshapeLike(g, swapLast2(g, g.MatMul(swapLast2(g, df), af)), b2)
	}
	return reshapeLike(g, g.MatMul(swapLast2(g, af), df), b2)
}

// matMulGradA computes d·Bᵀ. When B is broadcast over trailing batch dims
// it folds them into d's rows as matMulGradB does, so B enters the product
// with its own (unbroadcast) shape: a weight's dx is one 2-D product with
// W itself when B = Wᵀ, and grouped-query attention reads its shared keys
// and values without a materialised 5-D transpose.
func (r *rev) matMulGradA(a2, b2, d2 *Value) *Value {
	g := r.g
	_, df, lead, ok := foldBroadcastRows(g, a2, b2, d2)
	if !ok {
		return r.unbroadcast(g.MatMul(d2, swapLast2(g, b2)), a2)
	}
	rb := b2.Rank()
	bf := b2
	if want := append(d2.shape[:lead].Sizes(), b2.shape[rb-2].Size, b2.shape[rb-1].Size); !slices.Equal(want, b2.shape.Sizes()) {
		bf = g.Reshape(b2, want...)
	}
	return reshapeLike(g, g.MatMul(df, swapLast2(g, bf)), a2)
}

// foldBroadcastRows reshapes A [..., M, K] and d [..., M, N] so the batch
// dims over which B is broadcast (size 1 or missing), when they are the
// trailing batch dims, join the M rows: A' [lead..., R·M, K], d' [lead...,
// R·M, N]. lead is the number of batch dims kept (where B matches d); ok is
// false when the shapes are not static, A is itself broadcast, or B has no
// trailing broadcast dims to fold.
func foldBroadcastRows(g *Graph, a2, b2, d2 *Value) (af, df *Value, lead int, ok bool) {
	rd := d2.Rank()
	if !a2.shape.Fixed() || !b2.shape.Fixed() || !d2.shape.Fixed() || rd < 3 || a2.Rank() != rd {
		return nil, nil, 0, false
	}
	batch := rd - 2
	bDim := func(i int) int64 { // B's batch dim i, aligned to d's, 1 when missing
		if j := i - (rd - b2.Rank()); j >= 0 {
			return b2.shape[j].Size
		}
		return 1
	}
	lead = batch
	for lead > 0 && bDim(lead-1) == 1 {
		lead--
	}
	if lead == batch {
		return nil, nil, 0, false
	}
	rows := int64(1)
	for i := range batch {
		if a2.shape[i].Size != d2.shape[i].Size || (i < lead && bDim(i) != d2.shape[i].Size) {
			return nil, nil, 0, false
		}
		if i >= lead {
			rows *= d2.shape[i].Size
		}
	}
	shape := func(x *Value) []int64 {
		return append(x.shape[:lead].Sizes(), rows*x.shape[rd-2].Size, x.shape[rd-1].Size)
	}
	return g.Reshape(a2, shape(a2)...), g.Reshape(d2, shape(d2)...), lead, true
}

// gradGemm differentiates y = α·op(A)·op(B) + β·C.
func gradGemm(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, a, b, d := r.g, n.inputs[0], n.inputs[1], dy[0]
	alpha, beta := attrFloat(n, "alpha", 1), attrFloat(n, "beta", 1)
	ta, tb := attrInt(n, "transA", 0) != 0, attrInt(n, "transB", 0) != 0
	out := make([]*Value, len(n.inputs))
	if need[0] {
		if !ta {
			out[0] = g.Gemm(d, b, nil, alpha, 0, false, !tb)
		} else {
			out[0] = g.Gemm(b, d, nil, alpha, 0, tb, true)
		}
	}
	if need[1] {
		if !tb {
			out[1] = g.Gemm(a, d, nil, alpha, 0, !ta, false)
		} else {
			out[1] = g.Gemm(d, a, nil, alpha, 0, true, ta)
		}
	}
	if len(n.inputs) > 2 && n.inputs[2] != nil && need[2] {
		dc := d
		if beta != 1 {
			dc = g.Mul(d, r.constLike(d, float64(beta)))
		}
		out[2] = r.unbroadcast(dc, n.inputs[2])
	}
	return out, nil
}

// reduceAxes returns the normalised reduced axes of a Reduce* node and
// whether it keeps dims; noop is set for an empty-axes no-op reduction.
func reduceAxes(n *Node) (axes []int, keep, noop bool, err error) {
	x := n.inputs[0]
	var raw []int64
	if n.op == "ReduceSum" && len(n.inputs) > 1 && n.inputs[1] != nil {
		if raw, err = constInts(n.inputs[1]); err != nil {
			return nil, false, false, err
		}
	} else {
		raw = attrInts(n, "axes")
	}
	keep = attrInt(n, "keepdims", 1) != 0
	if len(raw) == 0 {
		if attrInt(n, "noop_with_empty_axes", 0) != 0 {
			return nil, keep, true, nil
		}
		for i := range x.Rank() {
			axes = append(axes, i)
		}
		return axes, keep, false, nil
	}
	axes, err = normAxes(raw, x.Rank())
	return axes, keep, false, err
}

// keptGrad returns d with the reduced axes restored as size-1 dims.
func keptGrad(g *Graph, d *Value, axes []int, keep bool) *Value {
	if keep || len(axes) == 0 {
		return d
	}
	return g.Unsqueeze(d, toInt64s(axes)...)
}

func gradReduceSum(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	axes, keep, noop, err := reduceAxes(n)
	if err != nil {
		return nil, err
	}
	out := make([]*Value, len(n.inputs))
	if noop {
		out[0] = dy[0]
		return out, nil
	}
	dk := keptGrad(r.g, dy[0], axes, keep)
	if !r.reduceOfProduct(n.inputs[0], dk) {
		out[0] = expandTo(r.g, dk, n.inputs[0])
	}
	return out, nil
}

// reduceOfProduct is the fused rule for ReduceSum/ReduceMean(a·b) (a sum
// of squares in RMSNorm, a weighted loss): dk, the reduction's gradient
// with the reduced axes kept as size 1, multiplies the other factor by
// broadcasting, so the expanded copy of dk is never built. It applies when
// x = Mul(a, b) has no other reader and a, b both have x's shape, and
// reports whether it did (then the Mul is marked fused).
func (r *rev) reduceOfProduct(x, dk *Value) bool {
	p := r.fusedProducer(x, "Mul")
	if p == nil {
		return false
	}
	a, b := p.inputs[0], p.inputs[1]
	if !a.shape.Equal(x.shape) || !b.shape.Equal(x.shape) {
		return false
	}
	g := r.g
	if a == b {
		r.addGrad(a, g.Mul(g.Mul(dk, r.constLike(dk, 2)), a)) // 2 scales the reduced dk, not the full tensor
	} else {
		if r.need[a] {
			r.addGrad(a, g.Mul(dk, b))
		}
		if r.need[b] {
			r.addGrad(b, g.Mul(dk, a))
		}
	}
	r.fused[p] = true
	return true
}

func gradReduceMean(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	axes, keep, noop, err := reduceAxes(n)
	if err != nil {
		return nil, err
	}
	x, g := n.inputs[0], r.g
	out := make([]*Value, len(n.inputs))
	if noop {
		out[0] = dy[0]
		return out, nil
	}
	count, ok := fixedProduct(x.shape, axes)
	if !ok {
		return nil, fmt.Errorf("%w: ReduceMean over non-static dims of %v", ErrUnsupported, x.shape)
	}
	dk := g.Div(keptGrad(g, dy[0], axes, keep), r.constLike(x, float64(count)))
	if !r.reduceOfProduct(x, dk) {
		out[0] = expandTo(g, dk, x)
	}
	return out, nil
}

// gradReduceMinMax sends d to the extreme elements, split evenly on ties.
func gradReduceMinMax(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	axes, keep, noop, err := reduceAxes(n)
	if err != nil {
		return nil, err
	}
	g, x := r.g, n.inputs[0]
	out := make([]*Value, len(n.inputs))
	if noop {
		out[0] = dy[0]
		return out, nil
	}
	yk := keptGrad(g, n.outputs[0], axes, keep)
	mask := g.Cast(g.Equal(x, yk), x.dtype)
	count := g.ReduceSum(mask, toInt64s(axes), true)
	out[0] = g.Mul(mask, g.Div(keptGrad(g, dy[0], axes, keep), count))
	return out, nil
}

// gradCumSum: the adjoint of a cumulative sum runs the other way.
func gradCumSum(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	x := n.inputs[0]
	attrs := []Attr{{"exclusive", attrInt(n, "exclusive", 0)}, {"reverse", 1 - attrInt(n, "reverse", 0)}}
	dx := r.g.AddNode("CumSum", []*Value{dy[0], n.inputs[1]}, attrs, OutType{x.dtype, x.shape})[0]
	return []*Value{dx, nil}, nil
}

// gradLayerNorm differentiates ONNX LayerNormalization (Y output only),
// recomputing the statistics from X.
func gradLayerNorm(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	for i := 1; i < len(n.outputs); i++ {
		if r.grads[n.outputs[i]] != nil {
			return nil, fmt.Errorf("%w: gradient through LayerNormalization's Mean/InvStdDev outputs", ErrUnsupported)
		}
	}
	g, x, scale, d := r.g, n.inputs[0], n.inputs[1], dy[0]
	a, err := normAxis(attrInt(n, "axis", -1), x.Rank())
	if err != nil {
		return nil, err
	}
	var axes []int64
	for i := a; i < x.Rank(); i++ {
		axes = append(axes, int64(i))
	}
	eps := r.constLike(x, float64(attrFloat(n, "epsilon", 1e-5)))
	xc := g.Sub(x, g.ReduceMean(x, axes, true))
	inv := g.Reciprocal(g.Sqrt(g.Add(g.ReduceMean(g.Mul(xc, xc), axes, true), eps)))
	xhat := g.Mul(xc, inv)
	out := make([]*Value, len(n.inputs))
	if need[0] {
		dxh := g.Mul(d, scale)
		m1 := g.ReduceMean(dxh, axes, true)
		m2 := g.ReduceMean(g.Mul(dxh, xhat), axes, true)
		out[0] = g.Mul(inv, g.Sub(g.Sub(dxh, m1), g.Mul(xhat, m2)))
	}
	if need[1] {
		out[1] = r.unbroadcast(g.Mul(d, xhat), scale)
	}
	if len(n.inputs) > 2 && n.inputs[2] != nil && need[2] {
		out[2] = r.unbroadcast(d, n.inputs[2])
	}
	return out, nil
}
