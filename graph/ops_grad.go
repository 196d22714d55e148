package graph

import "fmt"

// StopGradient returns x unchanged (an Identity node) and marks the result
// as a constant for Grad: no gradient flows back through it. Use it for
// targets, old-policy log-probabilities and other values that must not be
// trained through. The mark is the node name (prefix "StopGradient_"), so it
// survives Save and does not change what ONNX Runtime computes.
func (g *Graph) StopGradient(x *Value) *Value {
	if !g.begin("Identity", x) {
		return g.placeholder()
	}
	y := g.node("Identity", []*Value{x}, nil, out{dt: x.dtype, shape: x.shape})[0]
	y.producer.name = fmt.Sprintf("%s%d", stopGradientPrefix, y.producer.id)
	return y
}

// ScatterNDAdd returns a copy of data where updates are added at indices
// (ONNX ScatterND, reduction="add", opset 16+): indices is int64 with
// shape q[:-1] + [k], updates has shape q[:-1] + data.shape[k:].
func (g *Graph) ScatterNDAdd(data, indices, updates *Value) *Value {
	if !g.begin("ScatterND", data, indices, updates) {
		return g.placeholder()
	}
	if indices.dtype != Int64 || data.dtype != updates.dtype {
		return g.fail("ScatterND", fmt.Errorf("%w: ScatterND(%v, %v, %v)", ErrDType, data.dtype, indices.dtype, updates.dtype))
	}
	q := indices.Rank()
	if q == 0 || !indices.shape[q-1].Fixed() || indices.shape[q-1].Size > int64(data.Rank()) {
		return g.fail("ScatterND", fmt.Errorf("%w: indices %v for data %v", ErrShape, indices.shape, data.shape))
	}
	k := int(indices.shape[q-1].Size)
	want := append(indices.shape[:q-1].Clone(), data.shape[k:]...)
	if !want.Equal(updates.shape) {
		return g.fail("ScatterND", fmt.Errorf("%w: updates %v, want %v", ErrShape, updates.shape, want))
	}
	return g.node("ScatterND", []*Value{data, indices, updates}, []Attr{{"reduction", "add"}}, out{dt: data.dtype, shape: data.shape})[0]
}

// ScatterElementsAdd returns a copy of data where each element of updates
// is added at the position given by indices along axis (ONNX
// ScatterElements, reduction="add"); indices and updates share one shape
// of data's rank.
func (g *Graph) ScatterElementsAdd(data, indices, updates *Value, axis int64) *Value {
	if !g.begin("ScatterElements", data, indices, updates) {
		return g.placeholder()
	}
	if (indices.dtype != Int64 && indices.dtype != Int32) || data.dtype != updates.dtype {
		return g.fail("ScatterElements", fmt.Errorf("%w: ScatterElements(%v, %v, %v)", ErrDType, data.dtype, indices.dtype, updates.dtype))
	}
	if indices.Rank() != data.Rank() || !indices.shape.Equal(updates.shape) {
		return g.fail("ScatterElements", fmt.Errorf("%w: indices %v, updates %v, data %v", ErrShape, indices.shape, updates.shape, data.shape))
	}
	if _, err := normAxis(axis, data.Rank()); err != nil {
		return g.fail("ScatterElements", err)
	}
	attrs := []Attr{{"axis", axis}, {"reduction", "add"}}
	return g.node("ScatterElements", []*Value{data, indices, updates}, attrs, out{dt: data.dtype, shape: data.shape})[0]
}

// OneHot returns a [idx.shape..., depth] tensor of dtype dt that is 1 where
// the last index equals idx (negative indices count from depth) and 0
// elsewhere. It is built from Range, Equal and Cast, which every execution
// provider implements.
func (g *Graph) OneHot(idx *Value, depth int64, dt DType) *Value {
	if !g.begin("OneHot", idx) {
		return g.placeholder()
	}
	if (idx.dtype != Int64 && idx.dtype != Int32) || !dt.IsFloat() || depth <= 0 {
		return g.fail("OneHot", fmt.Errorf("%w: OneHot(%v, depth %d) to %v", ErrInvalidArg, idx.dtype, depth, dt))
	}
	i := g.Cast(idx, Int64)
	i = g.Where(g.Less(i, g.ScalarInt64(0)), g.Add(i, g.ScalarInt64(depth)), i)
	classes := g.Range(g.ScalarInt64(0), g.ScalarInt64(depth), g.ScalarInt64(1), D(depth))
	return g.Cast(g.Equal(g.Unsqueeze(i, -1), classes), dt)
}
