package graph

import "fmt"

// begin returns false (and the op should return a placeholder) when the
// graph already failed or an input is invalid.
func (g *Graph) begin(op string, vs ...*Value) bool {
	if g.err != nil {
		return false
	}
	if err := g.check(op, vs...); err != nil {
		g.fail(op, err)
		return false
	}
	return true
}

// unary appends an elementwise op with one input and an unchanged type.
func (g *Graph) unary(op string, x *Value, floatOnly bool) *Value {
	if !g.begin(op, x) {
		return g.placeholder()
	}
	if floatOnly && !x.dtype.IsFloat() {
		return g.fail(op, fmt.Errorf("%w: %s needs a float input, got %v", ErrDType, op, x.dtype))
	}
	return g.node(op, []*Value{x}, nil, out{dt: x.dtype, shape: x.shape})[0]
}

// binary appends a broadcasting op with two inputs of the same dtype; the
// result has dtype outDT (or the input dtype when outDT is 0).
func (g *Graph) binary(op string, a, b *Value, outDT DType) *Value {
	if !g.begin(op, a, b) {
		return g.placeholder()
	}
	if a.dtype != b.dtype {
		return g.fail(op, fmt.Errorf("%w: %v vs %v", ErrDType, a.dtype, b.dtype))
	}
	shape, err := broadcastShapes(a.shape, b.shape)
	if err != nil {
		return g.fail(op, err)
	}
	if outDT == 0 {
		outDT = a.dtype
	}
	return g.node(op, []*Value{a, b}, nil, out{dt: outDT, shape: shape})[0]
}

// Add returns a + b with numpy broadcasting.
func (g *Graph) Add(a, b *Value) *Value { return g.binary("Add", a, b, 0) }

// Sub returns a - b with numpy broadcasting.
func (g *Graph) Sub(a, b *Value) *Value { return g.binary("Sub", a, b, 0) }

// Mul returns a * b with numpy broadcasting.
func (g *Graph) Mul(a, b *Value) *Value { return g.binary("Mul", a, b, 0) }

// Div returns a / b with numpy broadcasting (integer division truncates).
func (g *Graph) Div(a, b *Value) *Value { return g.binary("Div", a, b, 0) }

// Pow returns a ** b with numpy broadcasting.
func (g *Graph) Pow(a, b *Value) *Value { return g.binary("Pow", a, b, 0) }

// Mod returns the integer remainder a mod b (sign of the divisor, fmod=0).
func (g *Graph) Mod(a, b *Value) *Value {
	if a != nil && a.dtype.IsFloat() {
		return g.fail("Mod", fmt.Errorf("%w: Mod is for integers here", ErrDType))
	}
	return g.binary("Mod", a, b, 0)
}

// Min returns the elementwise minimum of a and b.
func (g *Graph) Min(a, b *Value) *Value { return g.binary("Min", a, b, 0) }

// Max returns the elementwise maximum of a and b.
func (g *Graph) Max(a, b *Value) *Value { return g.binary("Max", a, b, 0) }

// Equal returns a bool tensor a == b.
func (g *Graph) Equal(a, b *Value) *Value { return g.binary("Equal", a, b, Bool) }

// Less returns a bool tensor a < b.
func (g *Graph) Less(a, b *Value) *Value { return g.binary("Less", a, b, Bool) }

// LessOrEqual returns a bool tensor a <= b.
func (g *Graph) LessOrEqual(a, b *Value) *Value { return g.binary("LessOrEqual", a, b, Bool) }

// Greater returns a bool tensor a > b.
func (g *Graph) Greater(a, b *Value) *Value { return g.binary("Greater", a, b, Bool) }

// GreaterOrEqual returns a bool tensor a >= b.
func (g *Graph) GreaterOrEqual(a, b *Value) *Value {
	return g.binary("GreaterOrEqual", a, b, Bool)
}

// And returns the logical and of two bool tensors.
func (g *Graph) And(a, b *Value) *Value { return g.logical("And", a, b) }

// Or returns the logical or of two bool tensors.
func (g *Graph) Or(a, b *Value) *Value { return g.logical("Or", a, b) }

func (g *Graph) logical(op string, a, b *Value) *Value {
	if a != nil && a.dtype != Bool {
		return g.fail(op, fmt.Errorf("%w: %s needs bool inputs, got %v", ErrDType, op, a.dtype))
	}
	return g.binary(op, a, b, 0)
}

// Not returns the logical negation of a bool tensor.
func (g *Graph) Not(x *Value) *Value {
	if x != nil && x.dtype != Bool {
		return g.fail("Not", fmt.Errorf("%w: Not needs bool, got %v", ErrDType, x.dtype))
	}
	return g.unary("Not", x, false)
}

// Neg returns -x.
func (g *Graph) Neg(x *Value) *Value { return g.unary("Neg", x, false) }

// Abs returns |x|.
func (g *Graph) Abs(x *Value) *Value { return g.unary("Abs", x, false) }

// Sqrt returns the square root of x.
func (g *Graph) Sqrt(x *Value) *Value { return g.unary("Sqrt", x, true) }

// Exp returns e**x.
func (g *Graph) Exp(x *Value) *Value { return g.unary("Exp", x, true) }

// Log returns the natural logarithm of x.
func (g *Graph) Log(x *Value) *Value { return g.unary("Log", x, true) }

// Reciprocal returns 1/x.
func (g *Graph) Reciprocal(x *Value) *Value { return g.unary("Reciprocal", x, true) }

// Sigmoid returns 1/(1+e**-x).
func (g *Graph) Sigmoid(x *Value) *Value { return g.unary("Sigmoid", x, true) }

// Tanh returns tanh(x).
func (g *Graph) Tanh(x *Value) *Value { return g.unary("Tanh", x, true) }

// Erf returns the Gauss error function of x.
func (g *Graph) Erf(x *Value) *Value { return g.unary("Erf", x, true) }

// Relu returns max(x, 0).
func (g *Graph) Relu(x *Value) *Value { return g.unary("Relu", x, true) }

// Sin returns sin(x).
func (g *Graph) Sin(x *Value) *Value { return g.unary("Sin", x, true) }

// Cos returns cos(x).
func (g *Graph) Cos(x *Value) *Value { return g.unary("Cos", x, true) }

// Identity returns a copy of x.
func (g *Graph) Identity(x *Value) *Value { return g.unary("Identity", x, false) }

// Softmax returns the softmax of x along axis.
func (g *Graph) Softmax(x *Value, axis int64) *Value { return g.softmax("Softmax", x, axis) }

// LogSoftmax returns the log-softmax of x along axis.
func (g *Graph) LogSoftmax(x *Value, axis int64) *Value { return g.softmax("LogSoftmax", x, axis) }

func (g *Graph) softmax(op string, x *Value, axis int64) *Value {
	if !g.begin(op, x) {
		return g.placeholder()
	}
	if !x.dtype.IsFloat() {
		return g.fail(op, fmt.Errorf("%w: %v", ErrDType, x.dtype))
	}
	if _, err := normAxis(axis, x.Rank()); err != nil {
		return g.fail(op, err)
	}
	return g.node(op, []*Value{x}, []Attr{{"axis", axis}}, out{dt: x.dtype, shape: x.shape})[0]
}

// MatMul returns the numpy-style matrix product of a and b (rank ≥ 1,
// batch dims broadcast).
func (g *Graph) MatMul(a, b *Value) *Value {
	if !g.begin("MatMul", a, b) {
		return g.placeholder()
	}
	if a.dtype != b.dtype || !a.dtype.IsFloat() {
		return g.fail("MatMul", fmt.Errorf("%w: %v x %v", ErrDType, a.dtype, b.dtype))
	}
	shape, err := matmulShape(a.shape, b.shape)
	if err != nil {
		return g.fail("MatMul", err)
	}
	return g.node("MatMul", []*Value{a, b}, nil, out{dt: a.dtype, shape: shape})[0]
}

func matmulShape(a, b Shape) (Shape, error) {
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("%w: MatMul of a scalar", ErrShape)
	}
	as, bs := a, b
	if len(as) == 1 {
		as = Shape{D(1), a[0]}
	}
	if len(bs) == 1 {
		bs = Shape{b[0], D(1)}
	}
	k1, k2 := as[len(as)-1], bs[len(bs)-2]
	if k1.Fixed() && k2.Fixed() && k1 != k2 {
		return nil, fmt.Errorf("%w: MatMul %v x %v: inner dims %v and %v", ErrShape, a, b, k1, k2)
	}
	batch, err := broadcastShapes(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, err
	}
	if len(a) == 1 && len(b) == 1 {
		return Shape{}, nil // vector · vector is a scalar
	}
	shape := append(batch, as[len(as)-2], bs[len(bs)-1])
	if len(b) == 1 {
		shape = shape[:len(shape)-1]
	}
	if len(a) == 1 {
		shape = append(shape[:len(shape)-2], shape[len(shape)-1:]...)
	}
	return shape, nil
}

// Gemm returns alpha·op(a)·op(b) + beta·c for 2-D a and b, where op
// transposes when transA/transB is set; c may be nil.
func (g *Graph) Gemm(a, b, c *Value, alpha, beta float32, transA, transB bool) *Value {
	if !g.begin("Gemm", a, b) {
		return g.placeholder()
	}
	if a.Rank() != 2 || b.Rank() != 2 {
		return g.fail("Gemm", fmt.Errorf("%w: Gemm needs 2-D inputs, got %v and %v", ErrShape, a.shape, b.shape))
	}
	m, k1 := a.shape[0], a.shape[1]
	if transA {
		m, k1 = k1, m
	}
	k2, n := b.shape[0], b.shape[1]
	if transB {
		k2, n = n, k2
	}
	if k1.Fixed() && k2.Fixed() && k1 != k2 {
		return g.fail("Gemm", fmt.Errorf("%w: inner dims %v and %v", ErrShape, k1, k2))
	}
	inputs := []*Value{a, b}
	if c != nil {
		if err := g.check("Gemm", c); err != nil {
			return g.fail("Gemm", err)
		}
		if _, err := broadcastShapes(Shape{m, n}, c.shape); err != nil {
			return g.fail("Gemm", err)
		}
		inputs = append(inputs, c)
	}
	attrs := []Attr{{"alpha", alpha}, {"beta", beta}, {"transA", b2i(transA)}, {"transB", b2i(transB)}}
	return g.node("Gemm", inputs, attrs, out{dt: a.dtype, shape: Shape{m, n}})[0]
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// ReduceSum sums x over axes (all axes when empty), keeping reduced dims
// as 1 when keepDims is set. Opset 17 takes ReduceSum's axes as an input.
func (g *Graph) ReduceSum(x *Value, axes []int64, keepDims bool) *Value {
	return g.reduce("ReduceSum", x, axes, keepDims)
}

// ReduceMean averages x over axes (all axes when empty).
func (g *Graph) ReduceMean(x *Value, axes []int64, keepDims bool) *Value {
	return g.reduce("ReduceMean", x, axes, keepDims)
}

// ReduceMax takes the maximum of x over axes (all axes when empty).
func (g *Graph) ReduceMax(x *Value, axes []int64, keepDims bool) *Value {
	return g.reduce("ReduceMax", x, axes, keepDims)
}

func (g *Graph) reduce(op string, x *Value, axes []int64, keepDims bool) *Value {
	if !g.begin(op, x) {
		return g.placeholder()
	}
	norm, err := normAxes(axes, x.Rank())
	if err != nil {
		return g.fail(op, err)
	}
	if len(axes) == 0 {
		for i := range x.Rank() {
			norm = append(norm, i)
		}
	}
	reduced := map[int]bool{}
	for _, a := range norm {
		reduced[a] = true
	}
	var shape Shape
	for i, d := range x.shape {
		switch {
		case !reduced[i]:
			shape = append(shape, d)
		case keepDims:
			shape = append(shape, D(1))
		}
	}
	attrs := []Attr{{"keepdims", b2i(keepDims)}}
	inputs := []*Value{x}
	if op == "ReduceSum" {
		if len(axes) > 0 {
			inputs = append(inputs, g.ConstInt64s(axes...))
		}
	} else if len(axes) > 0 {
		attrs = append(attrs, Attr{"axes", append([]int64(nil), axes...)})
	}
	return g.node(op, inputs, attrs, out{dt: x.dtype, shape: shape})[0]
}

// ArgMax returns the int64 index of the maximum of x along axis.
func (g *Graph) ArgMax(x *Value, axis int64, keepDims bool) *Value {
	if !g.begin("ArgMax", x) {
		return g.placeholder()
	}
	a, err := normAxis(axis, x.Rank())
	if err != nil {
		return g.fail("ArgMax", err)
	}
	shape := x.shape.Clone()
	if keepDims {
		shape[a] = D(1)
	} else {
		shape = append(shape[:a], shape[a+1:]...)
	}
	attrs := []Attr{{"axis", axis}, {"keepdims", b2i(keepDims)}}
	return g.node("ArgMax", []*Value{x}, attrs, out{dt: Int64, shape: shape})[0]
}

// CumSum returns the inclusive cumulative sum of x along axis.
func (g *Graph) CumSum(x *Value, axis int64) *Value {
	if !g.begin("CumSum", x) {
		return g.placeholder()
	}
	if _, err := normAxis(axis, x.Rank()); err != nil {
		return g.fail("CumSum", err)
	}
	return g.node("CumSum", []*Value{x, g.ScalarInt64(axis)}, nil, out{dt: x.dtype, shape: x.shape})[0]
}

// Clip limits x to [lo, hi]; either bound may be nil. Bounds are scalars of
// x's dtype.
func (g *Graph) Clip(x, lo, hi *Value) *Value {
	if !g.begin("Clip", x) {
		return g.placeholder()
	}
	for _, b := range []*Value{lo, hi} {
		if b == nil {
			continue
		}
		if err := g.check("Clip", b); err != nil {
			return g.fail("Clip", err)
		}
		if b.Rank() != 0 || b.dtype != x.dtype {
			return g.fail("Clip", fmt.Errorf("%w: bound must be a %v scalar, got %v", ErrInvalidArg, x.dtype, b))
		}
	}
	return g.node("Clip", []*Value{x, lo, hi}, nil, out{dt: x.dtype, shape: x.shape})[0]
}

// Where returns cond ? a : b with broadcasting; cond is bool.
func (g *Graph) Where(cond, a, b *Value) *Value {
	if !g.begin("Where", cond, a, b) {
		return g.placeholder()
	}
	if cond.dtype != Bool || a.dtype != b.dtype {
		return g.fail("Where", fmt.Errorf("%w: Where(%v, %v, %v)", ErrDType, cond.dtype, a.dtype, b.dtype))
	}
	shape, err := broadcastShapes(cond.shape, a.shape)
	if err == nil {
		shape, err = broadcastShapes(shape, b.shape)
	}
	if err != nil {
		return g.fail("Where", err)
	}
	return g.node("Where", []*Value{cond, a, b}, nil, out{dt: a.dtype, shape: shape})[0]
}

// Cast converts x to dtype to.
func (g *Graph) Cast(x *Value, to DType) *Value {
	if !g.begin("Cast", x) {
		return g.placeholder()
	}
	if !to.Valid() {
		return g.fail("Cast", fmt.Errorf("%w: cast to %v", ErrDType, to))
	}
	return g.node("Cast", []*Value{x}, []Attr{{"to", int64(to)}}, out{dt: to, shape: x.shape})[0]
}
