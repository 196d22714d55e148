package graph

import "fmt"

// constLike returns a rank-0 constant c of v's dtype.
func (r *rev) constLike(v *Value, c float64) *Value { return constOf(r.g, v.dtype, c) }

// constOf returns a rank-0 float constant c of dtype dt.
func constOf(g *Graph, dt DType, c float64) *Value {
	switch dt {
	case Float64:
		return g.Const(&Tensor{DType: Float64, F64: []float64{c}})
	case Float32:
		return g.ScalarFloat32(float32(c))
	}
	return g.Cast(g.ScalarFloat32(float32(c)), dt)
}

// shapeOf returns a constant holding like's shape when it is static, or a
// Shape node otherwise.
func shapeOf(g *Graph, like *Value) *Value {
	if like.shape.Fixed() {
		return g.ConstInt64s(like.shape.Sizes()...)
	}
	return g.ShapeOf(like)
}

// expandTo broadcasts x to like's shape.
func expandTo(g *Graph, x, like *Value) *Value {
	if x.shape.Equal(like.shape) {
		return x
	}
	return g.AddNode("Expand", []*Value{x, shapeOf(g, like)}, nil, OutType{DType: x.dtype, Shape: like.shape})[0]
}

// reshapeLike reshapes x (same element count) to like's shape.
func reshapeLike(g *Graph, x, like *Value) *Value {
	if x.shape.Equal(like.shape) {
		return x
	}
	return g.AddNode("Reshape", []*Value{x, shapeOf(g, like)}, nil, OutType{DType: x.dtype, Shape: like.shape})[0]
}

// zerosLike returns zeros of v's dtype and shape.
func (r *rev) zerosLike(v *Value) *Value { return expandTo(r.g, r.constLike(v, 0), v) }

// pick returns f() when need is set, else nil.
func pick(need bool, f func() *Value) *Value {
	if !need {
		return nil
	}
	return f()
}

// unbroadcast sums d (the gradient of a broadcast result) back to in's
// shape: over leading axes in lacks and over axes where in has size 1.
// Shapes are static, so the axes are known when the graph is built.
func (r *rev) unbroadcast(d, in *Value) *Value {
	if d.shape.Equal(in.shape) {
		return d
	}
	g := r.g
	lead := d.Rank() - in.Rank()
	if lead < 0 {
		g.setErr(fmt.Errorf("%w: cannot reduce gradient %v to %v", ErrShape, d.shape, in.shape))
		return g.placeholder()
	}
	var leadAxes, inner []int64
	for i := range lead {
		leadAxes = append(leadAxes, int64(i))
	}
	for j, dim := range in.shape {
		od := d.shape[lead+j]
		switch {
		case dim == od:
		case dim.Size == 1:
			inner = append(inner, int64(lead+j))
		default:
			g.setErr(fmt.Errorf("%w: cannot reduce gradient %v to %v (axis %d)", ErrShape, d.shape, in.shape, j))
			return g.placeholder()
		}
	}
	x := d
	if len(inner) > 0 {
		x = g.ReduceSum(x, inner, true)
	}
	if lead > 0 {
		x = g.ReduceSum(x, leadAxes, false)
	}
	return reshapeLike(g, x, in)
}

// constInts reads the integer values of a Constant node output or an
// in-memory initializer.
func constInts(v *Value) ([]int64, error) {
	var t *Tensor
	switch {
	case v == nil:
		return nil, fmt.Errorf("%w: missing constant input", ErrInvalidArg)
	case v.data != nil:
		t = v.data
	case v.producer != nil && v.producer.op == "Constant":
		if a, ok := v.producer.Attr("value"); ok {
			t, _ = a.(*Tensor)
		}
	}
	if t == nil {
		return nil, fmt.Errorf("%w: %s must be a constant for autodiff (static shapes)", ErrUnsupported, v.name)
	}
	switch t.DType {
	case Int64:
		return append([]int64(nil), t.I64...), nil
	case Int32:
		out := make([]int64, len(t.I32))
		for i, x := range t.I32 {
			out[i] = int64(x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: constant %s has dtype %v", ErrDType, v.name, t.DType)
}

// attrInt returns an int attribute of n, or def when absent.
func attrInt(n *Node, name string, def int64) int64 {
	if a, ok := n.Attr(name); ok {
		if v, ok := a.(int64); ok {
			return v
		}
	}
	return def
}

// attrFloat returns a float attribute of n, or def when absent.
func attrFloat(n *Node, name string, def float32) float32 {
	if a, ok := n.Attr(name); ok {
		if v, ok := a.(float32); ok {
			return v
		}
	}
	return def
}

// attrInts returns an ints attribute of n, or nil when absent.
func attrInts(n *Node, name string) []int64 {
	if a, ok := n.Attr(name); ok {
		if v, ok := a.([]int64); ok {
			return v
		}
	}
	return nil
}

// swapLast2 transposes the last two axes of x (rank ≥ 2); when x is itself
// such a transpose of some y, it returns y.
func swapLast2(g *Graph, x *Value) *Value {
	k := x.Rank()
	perm := make([]int64, k)
	for i := range perm {
		perm[i] = int64(i)
	}
	perm[k-1], perm[k-2] = perm[k-2], perm[k-1]
	return transposeOf(g, x, perm)
}

// transposeOf returns x transposed by perm, or y when x = Transpose(y) by
// the inverse of perm (so the two cancel).
func transposeOf(g *Graph, x *Value, perm []int64) *Value {
	if p := x.producer; p != nil && p.op == "Transpose" && len(p.inputs) == 1 {
		inner := attrInts(p, "perm")
		if len(inner) == len(perm) {
			cancel := true
			for i, q := range perm {
				cancel = cancel && inner[q] == int64(i)
			}
			if cancel {
				return p.inputs[0]
			}
		}
	}
	return g.Transpose(x, perm...)
}

// fixedProduct multiplies the sizes of shape at axes; ok is false when one
// of them is not fixed.
func fixedProduct(shape Shape, axes []int) (int64, bool) {
	n := int64(1)
	for _, a := range axes {
		if !shape[a].Fixed() {
			return 0, false
		}
		n *= shape[a].Size
	}
	return n, true
}

// toInt64s converts normalised axes to int64.
func toInt64s(axes []int) []int64 {
	out := make([]int64, len(axes))
	for i, a := range axes {
		out[i] = int64(a)
	}
	return out
}

// twoOverSqrtPi is d/dx erf(x) at 0.
const twoOverSqrtPi = 1.1283791670955126 // 2/√π
