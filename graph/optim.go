package graph

import (
	"fmt"
	"math"
)

// AdamWConfig holds the AdamW hyper-parameters baked into a train-step
// graph as constants. The learning rate is not here: it is a graph input so
// schedules need no rebuild.
type AdamWConfig struct {
	Beta1       float64 // first-moment decay; DefaultAdamW uses 0.9
	Beta2       float64 // second-moment decay; 0.999
	Eps         float64 // added to √v̂; 1e-8
	WeightDecay float64 // decoupled decay per unit of learning rate; 0.01
	MaxGradNorm float64 // global L2 norm gradients are clipped to; 0 disables clipping; 1.0
}

// DefaultAdamW returns β1 0.9, β2 0.999, ε 1e-8, weight decay 0.01 and
// clipping at a global norm of 1.0 (the Hugging Face Trainer defaults).
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, MaxGradNorm: 1.0}
}

// Validate returns an error wrapping ErrInvalidArg for out-of-range values.
func (c AdamWConfig) Validate() error {
	switch {
	case !(c.Beta1 >= 0 && c.Beta1 < 1), !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("%w: AdamW betas (%g, %g) must be in [0, 1)", ErrInvalidArg, c.Beta1, c.Beta2)
	case !(c.Eps > 0):
		return fmt.Errorf("%w: AdamW eps %g must be > 0", ErrInvalidArg, c.Eps)
	case !(c.WeightDecay >= 0), !(c.MaxGradNorm >= 0), math.IsInf(c.MaxGradNorm, 0):
		return fmt.Errorf("%w: AdamW weight decay %g and max grad norm %g must be finite and ≥ 0", ErrInvalidArg, c.WeightDecay, c.MaxGradNorm)
	}
	return nil
}

// GlobalNorm returns √(Σᵢ Σ gᵢ²) over all grads as a rank-0 value of the
// first gradient's dtype.
func GlobalNorm(g *Graph, grads []*Value) (*Value, error) {
	if len(grads) == 0 {
		return nil, fmt.Errorf("%w: global norm of no gradients", ErrInvalidArg)
	}
	if err := g.check("GlobalNorm", grads...); err != nil {
		return nil, fmt.Errorf("graph: global norm: %w", err)
	}
	dt := grads[0].dtype
	var total *Value
	for _, gr := range grads {
		if !gr.dtype.IsFloat() {
			return nil, fmt.Errorf("%w: gradient %s has dtype %v", ErrDType, gr.name, gr.dtype)
		}
		sq := g.Mul(gr, gr)
		if sq.Rank() > 0 {
			sq = g.ReduceSum(sq, nil, false)
		}
		if sq.dtype != dt {
			sq = g.Cast(sq, dt)
		}
		if total == nil {
			total = sq
		} else {
			total = g.Add(total, sq)
		}
	}
	return g.Sqrt(total), g.Err()
}

// ClipByGlobalNorm scales every gradient by min(1, maxNorm/(norm+1e-6))
// where norm is their GlobalNorm (as torch.nn.utils.clip_grad_norm_ does)
// and returns the scaled gradients and the norm before clipping. A maxNorm
// of 0 leaves the gradients unchanged and only measures the norm.
func ClipByGlobalNorm(g *Graph, grads []*Value, maxNorm float64) ([]*Value, *Value, error) {
	if maxNorm < 0 || math.IsNaN(maxNorm) || math.IsInf(maxNorm, 0) {
		return nil, nil, fmt.Errorf("%w: max grad norm %g", ErrInvalidArg, maxNorm)
	}
	norm, err := GlobalNorm(g, grads)
	if err != nil {
		return nil, nil, err
	}
	if maxNorm == 0 {
		return append([]*Value(nil), grads...), norm, nil
	}
	coef := g.Div(constOf(g, norm.dtype, maxNorm), g.Add(norm, constOf(g, norm.dtype, 1e-6)))
	coef = g.Min(coef, constOf(g, norm.dtype, 1))
	out := make([]*Value, len(grads))
	for i, gr := range grads {
		c := coef
		if c.dtype != gr.dtype {
			c = g.Cast(c, gr.dtype)
		}
		out[i] = g.Mul(gr, c)
	}
	return out, norm, g.Err()
}

// AdamWSlot is one parameter's state for AdamW: the parameter, its
// (clipped) gradient, the first and second moments, and whether weight
// decay applies to it.
type AdamWSlot struct {
	Param, Grad, M, V *Value
	Decay             bool
}

// AdamWUpdate is the new state of one parameter.
type AdamWUpdate struct {
	Param, M, V *Value
}

// AdamW appends one AdamW step (Loshchilov & Hutter, decoupled weight
// decay, bias correction; torch.optim.AdamW's arithmetic) for each slot:
//
//	p ← p·(1 − lr·wd)            (only when Decay)
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
//
// step is t, the 1-based number of this update, and lr the learning rate:
// float scalars (rank 0 or shape [1]) fed at run time. Arithmetic is in
// each parameter's dtype.
func AdamW(g *Graph, slots []AdamWSlot, step, lr *Value, cfg AdamWConfig) ([]AdamWUpdate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := g.check("AdamW", step, lr); err != nil {
		return nil, fmt.Errorf("graph: AdamW: %w", err)
	}
	for _, s := range []*Value{step, lr} {
		if !s.dtype.IsFloat() || s.shape.NumElements() != 1 {
			return nil, fmt.Errorf("%w: AdamW %s must be a one-element float, got %v", ErrInvalidArg, s.name, s)
		}
	}
	scalars := map[DType][2]*Value{}
	out := make([]AdamWUpdate, len(slots))
	for i, s := range slots {
		if err := checkSlot(g, s); err != nil {
			return nil, err
		}
		sc, ok := scalars[s.Param.dtype]
		if !ok {
			sc = [2]*Value{asScalar(g, step, s.Param.dtype), asScalar(g, lr, s.Param.dtype)}
			scalars[s.Param.dtype] = sc
		}
		out[i] = adamWOne(g, s, sc[0], sc[1], cfg)
	}
	return out, g.Err()
}

func checkSlot(g *Graph, s AdamWSlot) error {
	if err := g.check("AdamW", s.Param, s.Grad, s.M, s.V); err != nil {
		return fmt.Errorf("graph: AdamW: %w", err)
	}
	for _, v := range []*Value{s.Grad, s.M, s.V} {
		if v.dtype != s.Param.dtype || !v.shape.Equal(s.Param.shape) {
			return fmt.Errorf("%w: AdamW state %s is %v%v, parameter %s is %v%v", ErrShape, v.name, v.dtype, v.shape, s.Param.name, s.Param.dtype, s.Param.shape)
		}
	}
	if !s.Param.dtype.IsFloat() {
		return fmt.Errorf("%w: AdamW parameter %s has dtype %v", ErrDType, s.Param.name, s.Param.dtype)
	}
	return nil
}

// asScalar reshapes a one-element value to rank 0 and casts it to dt.
func asScalar(g *Graph, v *Value, dt DType) *Value {
	if v.Rank() > 0 {
		v = g.Reshape(v)
	}
	if v.dtype != dt {
		v = g.Cast(v, dt)
	}
	return v
}

func adamWOne(g *Graph, s AdamWSlot, t, lr *Value, cfg AdamWConfig) AdamWUpdate {
	dt := s.Param.dtype
	c := func(x float64) *Value { return constOf(g, dt, x) }
	p := s.Param
	if s.Decay && cfg.WeightDecay > 0 {
		p = g.Mul(p, g.Sub(c(1), g.Mul(lr, c(cfg.WeightDecay))))
	}
	m := g.Add(g.Mul(c(cfg.Beta1), s.M), g.Mul(c(1-cfg.Beta1), s.Grad))
	v := g.Add(g.Mul(c(cfg.Beta2), s.V), g.Mul(c(1-cfg.Beta2), g.Mul(s.Grad, s.Grad)))
	bc1 := g.Sub(c(1), g.Pow(c(cfg.Beta1), t))
	bc2 := g.Sub(c(1), g.Pow(c(cfg.Beta2), t))
	denom := g.Add(g.Div(g.Sqrt(v), g.Sqrt(bc2)), c(cfg.Eps))
	p = g.Sub(p, g.Mul(g.Div(lr, bc1), g.Div(m, denom)))
	return AdamWUpdate{Param: p, M: m, V: v}
}
