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
	norm, _, err := globalNorm(g, grads)
	return norm, err
}

// globalNorm returns the norm and each gradient's elementwise square (so a
// fused optimizer can reuse gᵢ² for the second moment). The per-gradient
// sums are added by one variadic Sum node.
func globalNorm(g *Graph, grads []*Value) (*Value, []*Value, error) {
	if len(grads) == 0 {
		return nil, nil, fmt.Errorf("%w: global norm of no gradients", ErrInvalidArg)
	}
	if err := g.check("GlobalNorm", grads...); err != nil {
		return nil, nil, fmt.Errorf("graph: global norm: %w", err)
	}
	dt := grads[0].dtype
	sqs := make([]*Value, len(grads))
	parts := make([]*Value, len(grads))
	for i, gr := range grads {
		if !gr.dtype.IsFloat() {
			return nil, nil, fmt.Errorf("%w: gradient %s has dtype %v", ErrDType, gr.name, gr.dtype)
		}
		sqs[i] = g.Mul(gr, gr)
		part := sqs[i]
		if part.Rank() > 0 {
			part = g.ReduceSum(part, nil, false)
		}
		if part.dtype != dt {
			part = g.Cast(part, dt)
		}
		parts[i] = part
	}
	total := parts[0]
	if len(parts) > 1 {
		total = g.AddNode("Sum", parts, nil, OutType{DType: dt, Shape: Shape{}})[0]
	}
	return g.Sqrt(total), sqs, g.Err()
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
// each parameter's dtype. The last line is computed in the equivalent form
// p − (lr·√(1−β2ᵗ)/(1−β1ᵗ)) · m / (√v + ε·√(1−β2ᵗ)), which folds the bias
// corrections into scalars and saves one full pass over each parameter.
func AdamW(g *Graph, slots []AdamWSlot, step, lr *Value, cfg AdamWConfig) ([]AdamWUpdate, error) {
	return adamW(g, slots, nil, nil, step, lr, cfg)
}

// ClipAdamW is ClipByGlobalNorm followed by AdamW, fused: the slots hold
// the unclipped gradients, the clipping coefficient min(1,
// MaxGradNorm/(norm+1e-6)) is folded into AdamW's moment scalars instead of
// scaling every gradient, and each gradient's square is computed once for
// both the norm and the second moment. It returns the updates and the
// global norm before clipping (rank 0, the first gradient's dtype). A
// MaxGradNorm of 0 only measures the norm. Vector parameters (norm
// weights, biases) of one dtype and decay setting are updated as one
// concatenated vector and split back. BuildTrainStep uses it.
func ClipAdamW(g *Graph, slots []AdamWSlot, step, lr *Value, cfg AdamWConfig) ([]AdamWUpdate, *Value, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	for _, s := range slots {
		if err := checkSlot(g, s); err != nil {
			return nil, nil, err
		}
	}
	packed, members := packSlots(g, slots)
	grads := make([]*Value, len(packed))
	for i, s := range packed {
		grads[i] = s.Grad
	}
	norm, sqs, err := globalNorm(g, grads)
	if err != nil {
		return nil, nil, err
	}
	var coef *Value
	if cfg.MaxGradNorm > 0 {
		coef = g.Div(constOf(g, norm.dtype, cfg.MaxGradNorm), g.Add(norm, constOf(g, norm.dtype, 1e-6)))
		coef = g.Min(coef, constOf(g, norm.dtype, 1))
	}
	ups, err := adamW(g, packed, sqs, coef, step, lr, cfg)
	if err != nil {
		return nil, nil, err
	}
	return unpackUpdates(g, slots, ups, members), norm, g.Err()
}

// packSlots concatenates the vector slots (rank 1: norm weights, biases)
// of one dtype and decay setting into one slot, so their update is a dozen
// operators in all rather than a dozen each; matrices stay as they are.
// members[i] lists the original slots behind packed[i].
func packSlots(g *Graph, slots []AdamWSlot) (packed []AdamWSlot, members [][]int) {
	type key struct {
		dt    DType
		decay bool
	}
	groups := map[key][]int{}
	var order []key
	for i, s := range slots {
		if s.Param.Rank() != 1 || !s.Param.shape.Fixed() {
			packed, members = append(packed, s), append(members, []int{i})
			continue
		}
		k := key{s.Param.dtype, s.Decay}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		idx := groups[k]
		if len(idx) == 1 {
			packed, members = append(packed, slots[idx[0]]), append(members, idx)
			continue
		}
		cat := func(pick func(AdamWSlot) *Value) *Value {
			vs := make([]*Value, len(idx))
			for j, i := range idx {
				vs[j] = pick(slots[i])
			}
			return g.Concat(0, vs...)
		}
		packed = append(packed, AdamWSlot{Decay: k.decay,
			Param: cat(func(s AdamWSlot) *Value { return s.Param }), Grad: cat(func(s AdamWSlot) *Value { return s.Grad }),
			M: cat(func(s AdamWSlot) *Value { return s.M }), V: cat(func(s AdamWSlot) *Value { return s.V })})
		members = append(members, idx)
	}
	return packed, members
}

// unpackUpdates splits packed updates back into one per original slot.
func unpackUpdates(g *Graph, slots []AdamWSlot, ups []AdamWUpdate, members [][]int) []AdamWUpdate {
	out := make([]AdamWUpdate, len(slots))
	for j, idx := range members {
		if len(idx) == 1 {
			out[idx[0]] = ups[j]
			continue
		}
		sizes := make([]int64, len(idx))
		for k, i := range idx {
			sizes[k] = slots[i].Param.shape[0].Size
		}
		ps, ms, vs := g.Split(ups[j].Param, 0, sizes...), g.Split(ups[j].M, 0, sizes...), g.Split(ups[j].V, 0, sizes...)
		for k, i := range idx {
			out[i] = AdamWUpdate{Param: ps[k], M: ms[k], V: vs[k]}
		}
	}
	return out
}

// adamW appends the updates; sqs (optional) holds each gradient's square
// and coef (optional) scales every gradient.
func adamW(g *Graph, slots []AdamWSlot, sqs []*Value, coef, step, lr *Value, cfg AdamWConfig) ([]AdamWUpdate, error) {
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
	scalars := map[DType]adamWScalars{}
	out := make([]AdamWUpdate, len(slots))
	for i, s := range slots {
		if err := checkSlot(g, s); err != nil {
			return nil, err
		}
		sc, ok := scalars[s.Param.dtype]
		if !ok {
			sc = newAdamWScalars(g, s.Param.dtype, step, lr, coef, cfg)
			scalars[s.Param.dtype] = sc
		}
		var sq *Value
		if sqs != nil {
			sq = sqs[i]
		}
		out[i] = adamWOne(g, s, sq, sc)
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

// adamWScalars are the rank-0 factors of one dtype's updates, computed once
// per graph rather than once per parameter.
type adamWScalars struct {
	b1, b2   *Value // β1, β2
	a1, a2   *Value // (1−β1)·c and (1−β2)·c², c the clipping coefficient (1 without clipping)
	epsHat   *Value // ε·√(1−β2ᵗ)
	stepSize *Value // lr·√(1−β2ᵗ)/(1−β1ᵗ)
	decay    *Value // 1 − lr·wd, nil without weight decay
}

func newAdamWScalars(g *Graph, dt DType, step, lr, coef *Value, cfg AdamWConfig) adamWScalars {
	c := func(x float64) *Value { return constOf(g, dt, x) }
	t, l := asScalar(g, step, dt), asScalar(g, lr, dt)
	bc1 := g.Sub(c(1), g.Pow(c(cfg.Beta1), t))
	sbc2 := g.Sqrt(g.Sub(c(1), g.Pow(c(cfg.Beta2), t)))
	sc := adamWScalars{
		b1: c(cfg.Beta1), b2: c(cfg.Beta2), a1: c(1 - cfg.Beta1), a2: c(1 - cfg.Beta2),
		epsHat:   g.Mul(c(cfg.Eps), sbc2),
		stepSize: g.Div(g.Mul(l, sbc2), bc1),
	}
	if coef != nil {
		k := asScalar(g, coef, dt)
		sc.a1, sc.a2 = g.Mul(sc.a1, k), g.Mul(sc.a2, g.Mul(k, k))
	}
	if cfg.WeightDecay > 0 {
		sc.decay = g.Sub(c(1), g.Mul(l, c(cfg.WeightDecay)))
	}
	return sc
}

// adamWOne updates one parameter in 11 elementwise passes (one more with
// weight decay, one more when sq, the gradient's square, is nil).
func adamWOne(g *Graph, s AdamWSlot, sq *Value, sc adamWScalars) AdamWUpdate {
	p := s.Param
	if s.Decay && sc.decay != nil {
		p = g.Mul(p, sc.decay)
	}
	if sq == nil {
		sq = g.Mul(s.Grad, s.Grad)
	}
	m := g.Add(g.Mul(s.M, sc.b1), g.Mul(s.Grad, sc.a1))
	v := g.Add(g.Mul(s.V, sc.b2), g.Mul(sq, sc.a2))
	denom := g.Add(g.Sqrt(v), sc.epsHat)
	p = g.Sub(p, g.Mul(g.Div(m, denom), sc.stepSize))
	return AdamWUpdate{Param: p, M: m, V: v}
}
