package train

import (
	"fmt"
	"math"

	"github.com/medgr2/medgr2/graph"
)

func (lc LossConfig) validate() error {
	bad := func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) || x < 0 }
	switch {
	case bad(lc.Temperature):
		return fmt.Errorf("%w: temperature %g must be ≥ 0", ErrConfig, lc.Temperature)
	case bad(lc.EpsLow) || lc.EpsLow >= 1:
		return fmt.Errorf("%w: epsilon_low %g must be in [0, 1)", ErrConfig, lc.EpsLow)
	case bad(lc.EpsHigh):
		return fmt.Errorf("%w: epsilon_high %g must be ≥ 0", ErrConfig, lc.EpsHigh)
	case bad(lc.Beta):
		return fmt.Errorf("%w: beta %g must be ≥ 0", ErrConfig, lc.Beta)
	case bad(lc.LogRatioClamp):
		return fmt.Errorf("%w: log-ratio clamp %g must be ≥ 0", ErrConfig, lc.LogRatioClamp)
	}
	return nil
}

// grpoLoss adds the GRPO objective (TRL's GRPOTrainer arithmetic, float32
// throughout):
//
//	ratio   = exp(clamp(logp − old_logp, ±c))
//	per_tok = −min(ratio·A, clip(ratio, 1−ε_low, 1+ε_high)·A) + β·k3
//	k3      = exp(d) − d − 1, d = clamp(ref_logp − logp, ±c)   (only when β > 0)
//	loss    = Σ w·per_tok   (w: completion tokens, summing to 1: token mean)
//
// With one update per rollout old_logp equals logp, so ratio is 1 and the
// loss is −Σ w·A ≈ 0 for normalised advantages, while its gradient
// Σ w·A·∇logp is not zero: a loss near 0 is expected.
func (f *forward) grpoLoss(lc LossConfig) {
	g := f.g
	B, S := int64(f.b.Batch), int64(f.b.Length)
	c := lc.LogRatioClamp
	if c == 0 {
		c = 20
	}
	lo, hi := g.ScalarFloat32(float32(-c)), g.ScalarFloat32(float32(c))
	lp := f.labelLogp(lc.Temperature)
	old := g.Input(InOldLogp, graph.Float32, graph.Dims(B, S))
	adv := g.Input(InAdvantages, graph.Float32, graph.Dims(B, 1))
	w := g.Input(InLabelWeights, graph.Float32, graph.Dims(B, S))
	ratio := g.Exp(g.Clip(g.Sub(lp, old), lo, hi))
	rLo, rHi := g.ScalarFloat32(float32(1-lc.EpsLow)), g.ScalarFloat32(float32(1+lc.EpsHigh))
	s1 := g.Mul(ratio, adv)
	s2 := g.Mul(g.Clip(ratio, rLo, rHi), adv)
	perTok := g.Neg(g.Min(s1, s2))
	wsum := func(x *graph.Value) *graph.Value { return g.ReduceSum(g.Mul(x, w), nil, false) }
	var kl *graph.Value
	if lc.Beta > 0 {
		ref := g.Input(InRefLogp, graph.Float32, graph.Dims(B, S))
		d := g.Clip(g.Sub(ref, lp), lo, hi)
		k3 := g.Sub(g.Sub(g.Exp(d), d), g.ScalarFloat32(1))
		perTok = g.Add(perTok, g.Mul(k3, g.ScalarFloat32(float32(lc.Beta))))
		kl = wsum(k3)
	} else {
		kl = g.ScalarFloat32(0)
	}
	g.Output(OutLoss, wsum(perTok))
	g.Output(OutKL, g.Identity(kl))
	zero := g.ScalarFloat32(0)
	low := g.And(g.Less(ratio, rLo), g.Less(adv, zero))
	high := g.And(g.Greater(ratio, rHi), g.Greater(adv, zero))
	frac := func(m *graph.Value) *graph.Value { return wsum(g.Cast(m, graph.Float32)) }
	g.Output(OutClipLow, frac(low))
	g.Output(OutClipHigh, frac(high))
	g.Output(OutClipRegion, frac(g.Or(low, high)))
}
