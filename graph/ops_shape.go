package graph

import (
	"fmt"
	"math"
)

// Const returns a Constant node holding t.
func (g *Graph) Const(t *Tensor) *Value {
	if g.err != nil {
		return g.placeholder()
	}
	if t == nil {
		return g.fail("Constant", fmt.Errorf("%w: nil tensor", ErrInvalidArg))
	}
	if err := checkLen(t.Dims, t.Len()); err != nil || !t.DType.Valid() || t.DType == Float16 {
		return g.fail("Constant", fmt.Errorf("%w: bad constant %v%v: %w", ErrInvalidArg, t.DType, t.Dims, err))
	}
	return g.node("Constant", nil, []Attr{{"value", t}}, out{dt: t.DType, shape: t.Shape()})[0]
}

// ConstInt64s returns a 1-D int64 constant.
func (g *Graph) ConstInt64s(vals ...int64) *Value {
	return g.Const(&Tensor{DType: Int64, Dims: []int64{int64(len(vals))}, I64: append([]int64(nil), vals...)})
}

// ConstFloat32s returns a 1-D float32 constant.
func (g *Graph) ConstFloat32s(vals ...float32) *Value {
	return g.Const(&Tensor{DType: Float32, Dims: []int64{int64(len(vals))}, F32: append([]float32(nil), vals...)})
}

// ScalarInt64 returns a rank-0 int64 constant.
func (g *Graph) ScalarInt64(v int64) *Value {
	return g.Const(&Tensor{DType: Int64, I64: []int64{v}})
}

// ScalarFloat32 returns a rank-0 float32 constant.
func (g *Graph) ScalarFloat32(v float32) *Value {
	return g.Const(&Tensor{DType: Float32, F32: []float32{v}})
}

// Reshape reshapes x to target, with ONNX semantics: 0 copies the input
// dim at the same index and one -1 is inferred (also through symbolic dims
// when they cancel, e.g. [n, 1176] → [-1, 3, 2, 14, 14] gives [n, 3, 2, 14, 14]).
func (g *Graph) Reshape(x *Value, target ...int64) *Value {
	if !g.begin("Reshape", x) {
		return g.placeholder()
	}
	shape, err := reshapeShape(x.shape, target)
	if err != nil {
		return g.fail("Reshape", err)
	}
	return g.node("Reshape", []*Value{x, g.ConstInt64s(target...)}, nil, out{dt: x.dtype, shape: shape})[0]
}

// Transpose permutes the axes of x; a nil perm reverses them.
func (g *Graph) Transpose(x *Value, perm ...int64) *Value {
	if !g.begin("Transpose", x) {
		return g.placeholder()
	}
	if perm == nil {
		for i := x.Rank() - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != x.Rank() {
		return g.fail("Transpose", fmt.Errorf("%w: perm %v for rank %d", ErrInvalidArg, perm, x.Rank()))
	}
	seen := make([]bool, len(perm))
	shape := make(Shape, len(perm))
	for i, p := range perm {
		if p < 0 || p >= int64(len(perm)) || seen[p] {
			return g.fail("Transpose", fmt.Errorf("%w: perm %v is not a permutation", ErrInvalidArg, perm))
		}
		seen[p] = true
		shape[i] = x.shape[p]
	}
	return g.node("Transpose", []*Value{x}, []Attr{{"perm", append([]int64(nil), perm...)}}, out{dt: x.dtype, shape: shape})[0]
}

// Concat joins xs along axis; all other dims must agree.
func (g *Graph) Concat(axis int64, xs ...*Value) *Value {
	if !g.begin("Concat", xs...) {
		return g.placeholder()
	}
	if len(xs) == 0 {
		return g.fail("Concat", fmt.Errorf("%w: nothing to concat", ErrInvalidArg))
	}
	a, err := normAxis(axis, xs[0].Rank())
	if err != nil {
		return g.fail("Concat", err)
	}
	shape := xs[0].shape.Clone()
	for _, x := range xs[1:] {
		if x.dtype != xs[0].dtype {
			return g.fail("Concat", fmt.Errorf("%w: %v vs %v", ErrDType, xs[0].dtype, x.dtype))
		}
		if x.Rank() != len(shape) {
			return g.fail("Concat", fmt.Errorf("%w: rank %d vs %d", ErrShape, len(shape), x.Rank()))
		}
		for i, d := range x.shape {
			if i == a {
				shape[a] = addDims(shape[a], d)
				continue
			}
			merged, err := broadcastDim(shape[i], d)
			if err != nil || (shape[i].Fixed() && d.Fixed() && shape[i] != d) {
				return g.fail("Concat", fmt.Errorf("%w: %v vs %v off axis %d", ErrShape, xs[0].shape, x.shape, a))
			}
			shape[i] = merged
		}
	}
	return g.node("Concat", append([]*Value(nil), xs...), []Attr{{"axis", axis}}, out{dt: xs[0].dtype, shape: shape})[0]
}

func addDims(a, b Dim) Dim {
	switch {
	case a.Fixed() && b.Fixed():
		return D(a.Size + b.Size)
	case a.Size == 0:
		return b
	case b.Size == 0:
		return a
	}
	return Unknown
}

// Split splits x along axis into pieces of the given sizes (opset 13+:
// sizes are an input).
func (g *Graph) Split(x *Value, axis int64, sizes ...int64) []*Value {
	if !g.begin("Split", x) {
		return placeholders(g, len(sizes))
	}
	a, err := normAxis(axis, x.Rank())
	if err != nil {
		g.fail("Split", err)
		return placeholders(g, len(sizes))
	}
	total := int64(0)
	outs := make([]out, len(sizes))
	for i, s := range sizes {
		if s < 0 {
			g.fail("Split", fmt.Errorf("%w: negative size %d", ErrInvalidArg, s))
			return placeholders(g, len(sizes))
		}
		total += s
		shape := x.shape.Clone()
		shape[a] = D(s)
		outs[i] = out{dt: x.dtype, shape: shape}
	}
	if len(sizes) == 0 || (x.shape[a].Fixed() && x.shape[a].Size != total) {
		g.fail("Split", fmt.Errorf("%w: sizes %v do not add up to dim %v", ErrShape, sizes, x.shape[a]))
		return placeholders(g, len(sizes))
	}
	return g.node("Split", []*Value{x, g.ConstInt64s(sizes...)}, []Attr{{"axis", axis}}, outs...)
}

// SliceEnd is an end index meaning "to the end of the axis".
const SliceEnd = math.MaxInt64

// Slice takes x[starts:ends:steps] on axes (constant bounds; steps nil means
// all 1). Negative indices count from the end, as in numpy.
func (g *Graph) Slice(x *Value, starts, ends, axes, steps []int64) *Value {
	if !g.begin("Slice", x) {
		return g.placeholder()
	}
	if steps == nil {
		steps = make([]int64, len(starts))
		for i := range steps {
			steps[i] = 1
		}
	}
	if len(starts) != len(ends) || len(starts) != len(axes) || len(steps) != len(starts) {
		return g.fail("Slice", fmt.Errorf("%w: starts/ends/axes/steps lengths differ", ErrInvalidArg))
	}
	shape := x.shape.Clone()
	for i, ax := range axes {
		a, err := normAxis(ax, x.Rank())
		if err != nil {
			return g.fail("Slice", err)
		}
		if steps[i] == 0 {
			return g.fail("Slice", fmt.Errorf("%w: zero step", ErrInvalidArg))
		}
		shape[a] = sliceDim(x.shape[a], starts[i], ends[i], steps[i])
	}
	inputs := []*Value{x, g.ConstInt64s(starts...), g.ConstInt64s(ends...), g.ConstInt64s(axes...), g.ConstInt64s(steps...)}
	return g.node("Slice", inputs, nil, out{dt: x.dtype, shape: shape})[0]
}

// SliceTail returns the last k positions of x on axis, k a scalar int64
// value computed in the graph (an input such as num_logits_to_keep):
// x[…, -k:, …]. k = 0 keeps every position, as does a k over the axis
// length. The axis's size becomes the symbolic dim named sym.
func (g *Graph) SliceTail(x, k *Value, axis int64, sym string) *Value {
	if !g.begin("Slice", x, k) {
		return g.placeholder()
	}
	a, err := normAxis(axis, x.Rank())
	if err != nil {
		return g.fail("Slice", err)
	}
	if k.dtype != Int64 || k.Rank() > 1 {
		return g.fail("Slice", fmt.Errorf("%w: the kept length must be an int64 scalar, got %v rank %d", ErrInvalidArg, k.dtype, k.Rank()))
	}
	shape := x.shape.Clone()
	shape[a] = Sym(sym)
	starts := g.Neg(g.Reshape(k, 1))
	inputs := []*Value{x, starts, g.ConstInt64s(SliceEnd), g.ConstInt64s(axis)}
	return g.node("Slice", inputs, nil, out{dt: x.dtype, shape: shape})[0]
}

// Squeeze removes the given size-1 axes of x.
func (g *Graph) Squeeze(x *Value, axes ...int64) *Value {
	if !g.begin("Squeeze", x) {
		return g.placeholder()
	}
	norm, err := normAxes(axes, x.Rank())
	if err != nil || len(axes) == 0 {
		return g.fail("Squeeze", fmt.Errorf("%w: axes %v for rank %d", ErrInvalidArg, axes, x.Rank()))
	}
	drop := map[int]bool{}
	for _, a := range norm {
		if x.shape[a].Fixed() && x.shape[a].Size != 1 {
			return g.fail("Squeeze", fmt.Errorf("%w: axis %d has size %v", ErrShape, a, x.shape[a]))
		}
		drop[a] = true
	}
	var shape Shape
	for i, d := range x.shape {
		if !drop[i] {
			shape = append(shape, d)
		}
	}
	return g.node("Squeeze", []*Value{x, g.ConstInt64s(axes...)}, nil, out{dt: x.dtype, shape: shape})[0]
}

// Unsqueeze inserts size-1 axes at the given positions of the output.
func (g *Graph) Unsqueeze(x *Value, axes ...int64) *Value {
	if !g.begin("Unsqueeze", x) {
		return g.placeholder()
	}
	rank := x.Rank() + len(axes)
	norm, err := normAxes(axes, rank)
	if err != nil || len(axes) == 0 {
		return g.fail("Unsqueeze", fmt.Errorf("%w: axes %v for output rank %d", ErrInvalidArg, axes, rank))
	}
	ins := map[int]bool{}
	for _, a := range norm {
		ins[a] = true
	}
	shape := make(Shape, 0, rank)
	j := 0
	for i := range rank {
		if ins[i] {
			shape = append(shape, D(1))
		} else {
			shape = append(shape, x.shape[j])
			j++
		}
	}
	return g.node("Unsqueeze", []*Value{x, g.ConstInt64s(axes...)}, nil, out{dt: x.dtype, shape: shape})[0]
}

// Gather takes slices of x along axis at the int64 (or int32) indices idx;
// the output shape is x.shape[:axis] + idx.shape + x.shape[axis+1:].
func (g *Graph) Gather(x, idx *Value, axis int64) *Value {
	if !g.begin("Gather", x, idx) {
		return g.placeholder()
	}
	if idx.dtype != Int64 && idx.dtype != Int32 {
		return g.fail("Gather", fmt.Errorf("%w: indices must be int64 or int32, got %v", ErrDType, idx.dtype))
	}
	a, err := normAxis(axis, x.Rank())
	if err != nil {
		return g.fail("Gather", err)
	}
	shape := append(append(x.shape[:a].Clone(), idx.shape...), x.shape[a+1:]...)
	return g.node("Gather", []*Value{x, idx}, []Attr{{"axis", axis}}, out{dt: x.dtype, shape: shape})[0]
}

// GatherElements picks x's elements along axis at idx; idx has x's rank and
// the output has idx's shape.
func (g *Graph) GatherElements(x, idx *Value, axis int64) *Value {
	if !g.begin("GatherElements", x, idx) {
		return g.placeholder()
	}
	if idx.dtype != Int64 && idx.dtype != Int32 {
		return g.fail("GatherElements", fmt.Errorf("%w: indices must be int64 or int32, got %v", ErrDType, idx.dtype))
	}
	if idx.Rank() != x.Rank() {
		return g.fail("GatherElements", fmt.Errorf("%w: indices rank %d vs data rank %d", ErrShape, idx.Rank(), x.Rank()))
	}
	if _, err := normAxis(axis, x.Rank()); err != nil {
		return g.fail("GatherElements", err)
	}
	return g.node("GatherElements", []*Value{x, idx}, []Attr{{"axis", axis}}, out{dt: x.dtype, shape: idx.shape})[0]
}

// Expand broadcasts x to the constant shape dims (numpy rules; a 1 in dims
// keeps x's dim).
func (g *Graph) Expand(x *Value, dims ...int64) *Value {
	if !g.begin("Expand", x) {
		return g.placeholder()
	}
	shape, err := broadcastShapes(x.shape, Dims(dims...))
	if err != nil {
		return g.fail("Expand", err)
	}
	return g.node("Expand", []*Value{x, g.ConstInt64s(dims...)}, nil, out{dt: x.dtype, shape: shape})[0]
}

// ShapeOf returns the run-time shape of x as a 1-D int64 tensor (ONNX Shape).
func (g *Graph) ShapeOf(x *Value) *Value {
	if !g.begin("Shape", x) {
		return g.placeholder()
	}
	return g.node("Shape", []*Value{x}, nil, out{dt: Int64, shape: Dims(int64(x.Rank()))})[0]
}

// Range returns [start, start+delta, …) below limit; the three are scalars of
// one dtype. n is the caller's statement of the output length (a fixed
// size, a symbol, or Unknown), since it depends on run-time values.
func (g *Graph) Range(start, limit, delta *Value, n Dim) *Value {
	if !g.begin("Range", start, limit, delta) {
		return g.placeholder()
	}
	for _, v := range []*Value{start, limit, delta} {
		if v.Rank() != 0 || v.dtype != start.dtype {
			return g.fail("Range", fmt.Errorf("%w: Range needs three scalars of one dtype, got %v", ErrInvalidArg, v))
		}
	}
	return g.node("Range", []*Value{start, limit, delta}, nil, out{dt: start.dtype, shape: Shape{n}})[0]
}

// Trilu keeps the lower (upper=false) or upper triangle of the last two
// axes of x, offset by diagonal k; the rest is zero. A causal mask is
// Trilu(ones, false, 0).
func (g *Graph) Trilu(x *Value, upper bool, k int64) *Value {
	if !g.begin("Trilu", x) {
		return g.placeholder()
	}
	if x.Rank() < 2 {
		return g.fail("Trilu", fmt.Errorf("%w: Trilu needs rank ≥ 2, got %v", ErrShape, x.shape))
	}
	return g.node("Trilu", []*Value{x, g.ScalarInt64(k)}, []Attr{{"upper", b2i(upper)}}, out{dt: x.dtype, shape: x.shape})[0]
}
