package graph

import "fmt"

// gradRule returns the gradients of node n's inputs given the gradients dy
// of its outputs (zeros stand in for outputs nothing reads). need[i] says
// whether input i wants a gradient; the entry for an input that does not is
// ignored (nil is fine). Builder failures surface through the graph's Err.
type gradRule func(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error)

// gradRules is the rule table: one line per differentiable op.
var gradRules = map[string]gradRule{
	"Add":                gradAdd,
	"Sub":                gradSub,
	"Mul":                gradMul,
	"Div":                gradDiv,
	"Pow":                gradPow,
	"Min":                gradMinMax,
	"Max":                gradMinMax,
	"Neg":                gradNeg,
	"Abs":                gradAbs,
	"Sqrt":               gradSqrt,
	"Exp":                gradExp,
	"Log":                gradLog,
	"Reciprocal":         gradReciprocal,
	"Sigmoid":            gradSigmoid,
	"Tanh":               gradTanh,
	"Relu":               gradRelu,
	"Erf":                gradErf,
	"Sin":                gradSin,
	"Cos":                gradCos,
	"Identity":           gradIdentity,
	"Cast":               gradCast,
	"Where":              gradWhere,
	"Clip":               gradClip,
	"Softmax":            gradSoftmax,
	"LogSoftmax":         gradLogSoftmax,
	"MatMul":             gradMatMul,
	"Gemm":               gradGemm,
	"ReduceSum":          gradReduceSum,
	"ReduceMean":         gradReduceMean,
	"ReduceMax":          gradReduceMinMax,
	"ReduceMin":          gradReduceMinMax,
	"CumSum":             gradCumSum,
	"LayerNormalization": gradLayerNorm,
	"Reshape":            gradReshape,
	"Squeeze":            gradReshape,
	"Unsqueeze":          gradReshape,
	"Flatten":            gradReshape,
	"Expand":             gradExpand,
	"Transpose":          gradTranspose,
	"Concat":             gradConcat,
	"Split":              gradSplit,
	"Slice":              gradSlice,
	"Trilu":              gradTrilu,
	"Gather":             gradGather,
	"GatherElements":     gradGatherElements,
}

func gradAdd(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	a, b, d := n.inputs[0], n.inputs[1], dy[0]
	return []*Value{
		pick(need[0], func() *Value { return r.unbroadcast(d, a) }),
		pick(need[1], func() *Value { return r.unbroadcast(d, b) }),
	}, nil
}

func gradSub(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	a, b, d := n.inputs[0], n.inputs[1], dy[0]
	return []*Value{
		pick(need[0], func() *Value { return r.unbroadcast(d, a) }),
		pick(need[1], func() *Value { return r.unbroadcast(r.g.Neg(d), b) }),
	}, nil
}

// gradMul: da = d·b, db = d·a. For a square (a = b) the one product d·a is
// returned for both inputs, so accumulation adds it to itself.
func gradMul(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, a, b, d := r.g, n.inputs[0], n.inputs[1], dy[0]
	if a == b {
		t := g.Mul(d, a)
		return []*Value{t, t}, nil
	}
	for i, s := range []*Value{b, a} { // SiLU: x·σ(x) or σ(x)·x
		if dx := r.siluGrad(n.inputs[i], s, n.outputs[0], d); dx != nil {
			out := []*Value{nil, nil}
			out[i] = dx
			return out, nil
		}
	}
	return []*Value{
		pick(need[0], func() *Value { return r.unbroadcast(g.Mul(d, b), a) }),
		pick(need[1], func() *Value { return r.unbroadcast(g.Mul(d, a), b) }),
	}, nil
}

// siluGrad is the fused rule for y = x·σ(x) when σ(x) has no other reader:
// dx = d·(σ + y·(1 − σ)), four passes instead of six. It returns nil when
// s is not such a σ(x) (then nothing is marked).
func (r *rev) siluGrad(x, s, y, d *Value) *Value {
	p := r.fusedProducer(s, "Sigmoid")
	if p == nil || p.inputs[0] != x || !x.shape.Equal(y.shape) || !s.shape.Equal(y.shape) {
		return nil
	}
	g := r.g
	r.fused[p] = true
	return g.Mul(d, g.Add(s, g.Mul(y, g.Sub(r.constLike(s, 1), s))))
}

// gradDiv: y = a/b; da = d/b, db = -d·y/b.
func gradDiv(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, a, b, y, d := r.g, n.inputs[0], n.inputs[1], n.outputs[0], dy[0]
	return []*Value{
		pick(need[0], func() *Value { return r.unbroadcast(g.Div(d, b), a) }),
		pick(need[1], func() *Value { return r.unbroadcast(g.Neg(g.Div(g.Mul(d, y), b)), b) }),
	}, nil
}

// gradPow: y = a^b; da = d·b·a^(b-1), db = d·y·ln a (0 where a ≤ 0).
func gradPow(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, a, b, y, d := r.g, n.inputs[0], n.inputs[1], n.outputs[0], dy[0]
	if a.dtype != b.dtype {
		return nil, fmt.Errorf("%w: Pow with exponent dtype %v differs from base %v", ErrUnsupported, b.dtype, a.dtype)
	}
	return []*Value{
		pick(need[0], func() *Value {
			return r.unbroadcast(g.Mul(d, g.Mul(b, g.Pow(a, g.Sub(b, r.constLike(b, 1))))), a)
		}),
		pick(need[1], func() *Value {
			pos := g.Greater(a, r.constLike(a, 0))
			safe := g.Where(pos, a, r.constLike(a, 1))
			return r.unbroadcast(g.Mul(d, g.Where(pos, g.Mul(y, g.Log(safe)), r.constLike(a, 0))), b)
		}),
	}, nil
}

// gradMinMax routes d to the selected input; ties split it evenly.
func gradMinMax(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	if len(n.inputs) != 2 {
		return nil, fmt.Errorf("%w: %s with %d inputs", ErrUnsupported, n.op, len(n.inputs))
	}
	g, a, b, d := r.g, n.inputs[0], n.inputs[1], dy[0]
	wins := g.Greater(a, b)
	if n.op == "Min" {
		wins = g.Less(a, b)
	}
	half := g.Mul(g.Cast(g.Equal(a, b), d.dtype), r.constLike(d, 0.5))
	wa := g.Add(g.Cast(wins, d.dtype), half)
	return []*Value{
		pick(need[0], func() *Value { return r.unbroadcast(g.Mul(d, wa), a) }),
		pick(need[1], func() *Value { return r.unbroadcast(g.Mul(d, g.Sub(r.constLike(d, 1), wa)), b) }),
	}, nil
}

// unaryGrad builds the gradient of a one-input op from f(x, y, d).
func unaryGrad(f func(g *Graph, r *rev, x, y, d *Value) *Value) gradRule {
	return func(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
		return []*Value{f(r.g, r, n.inputs[0], n.outputs[0], dy[0])}, nil
	}
}

var (
	gradNeg = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value { return g.Neg(d) })
	gradAbs = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value {
		return g.Mul(d, g.AddNode("Sign", []*Value{x}, nil, OutType{x.dtype, x.shape})[0])
	})
	gradSqrt = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value {
		return g.Div(g.Mul(d, r.constLike(d, 0.5)), y)
	})
	gradExp        = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value { return g.Mul(d, y) })
	gradLog        = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value { return g.Div(d, x) })
	gradReciprocal = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value { return g.Neg(g.Mul(d, g.Mul(y, y))) })
	gradSigmoid    = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value {
		return g.Mul(d, g.Mul(y, g.Sub(r.constLike(y, 1), y)))
	})
	gradTanh = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value {
		return g.Mul(d, g.Sub(r.constLike(y, 1), g.Mul(y, y)))
	})
	gradRelu = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value {
		return g.Where(g.Greater(x, r.constLike(x, 0)), d, r.constLike(d, 0))
	})
	gradErf = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value {
		return g.Mul(d, g.Mul(r.constLike(x, twoOverSqrtPi), g.Exp(g.Neg(g.Mul(x, x)))))
	})
	gradSin      = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value { return g.Mul(d, g.Cos(x)) })
	gradCos      = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value { return g.Neg(g.Mul(d, g.Sin(x))) })
	gradIdentity = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value { return d })
	gradCast     = unaryGrad(func(g *Graph, r *rev, x, y, d *Value) *Value { return g.Cast(d, x.dtype) })
)

// gradWhere: y = c ? a : b.
func gradWhere(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, c, a, b, d := r.g, n.inputs[0], n.inputs[1], n.inputs[2], dy[0]
	zero := r.constLike(d, 0)
	return []*Value{
		nil,
		pick(need[1], func() *Value { return r.unbroadcast(g.Where(c, d, zero), a) }),
		pick(need[2], func() *Value { return r.unbroadcast(g.Where(c, zero, d), b) }),
	}, nil
}

// gradClip passes d where lo ≤ x ≤ hi; a bound gets the sum of d where it
// is the active limit.
func gradClip(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, x, d := r.g, n.inputs[0], dy[0]
	zero := r.constLike(d, 0)
	var lo, hi *Value
	if len(n.inputs) > 1 {
		lo = n.inputs[1]
	}
	if len(n.inputs) > 2 {
		hi = n.inputs[2]
	}
	var pass *Value
	and := func(m *Value) {
		if pass == nil {
			pass = m
		} else {
			pass = g.And(pass, m)
		}
	}
	if lo != nil {
		and(g.GreaterOrEqual(x, lo))
	}
	if hi != nil {
		and(g.LessOrEqual(x, hi))
	}
	bound := func(outside, b *Value) *Value {
		return r.unbroadcast(g.Where(outside, d, zero), b)
	}
	out := make([]*Value, len(n.inputs))
	out[0] = pick(need[0], func() *Value {
		if pass == nil {
			return d
		}
		return g.Where(pass, d, zero)
	})
	if lo != nil && need[1] {
		out[1] = bound(g.Less(x, lo), lo)
	}
	if hi != nil && need[2] {
		out[2] = bound(g.Greater(x, hi), hi)
	}
	return out, nil
}

// gradTrilu masks d like the forward op (Trilu is linear).
func gradTrilu(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	ins := append([]*Value{dy[0]}, n.inputs[1:]...)
	x := n.inputs[0]
	out := make([]*Value, len(n.inputs))
	out[0] = r.g.AddNode("Trilu", ins, n.attrs, OutType{x.dtype, x.shape})[0]
	return out, nil
}
