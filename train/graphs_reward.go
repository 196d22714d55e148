package train

import (
	"fmt"
	"math"

	"github.com/medgr2/medgr2/graph"
)

// Metric outputs of the reward graph when LossConfig.RankWeight > 0.
const (
	OutMSE      = "mse"       // Σ w·(score − target)², the regression term
	OutRankLoss = "rank_loss" // the pairwise ranking term, before RankWeight
)

// DefaultRewardRankWeight is the LossConfig.RankWeight to train reward
// models with (LossConfig's zero value keeps pure MSE). Use it with
// item-grouped batches (RewardRows sets Row.Group).
// docs/2026-11-25-reward-rank-weight.md records the measurement that chose
// it; TestRewardModelRanksLevels holds the held-out ranking it gives.
const DefaultRewardRankWeight = 5

// validateRank checks the reward objective's ranking settings.
func (lc LossConfig) validateRank() error {
	switch {
	case math.IsNaN(lc.RankWeight) || math.IsInf(lc.RankWeight, 0) || lc.RankWeight < 0:
		return fmt.Errorf("%w: rank weight %g must be finite and ≥ 0", ErrConfig, lc.RankWeight)
	case math.IsNaN(lc.RankScale) || math.IsInf(lc.RankScale, 0) || lc.RankScale < 0:
		return fmt.Errorf("%w: rank scale %g must be finite and ≥ 0 (0 means 1)", ErrConfig, lc.RankScale)
	}
	return nil
}

// rewardLoss declares the reward inputs and outputs the reward objective
// (see rewardObjective); scores are a metric, and so are the two terms
// when the ranking term is on.
func (f *forward) rewardLoss(lc LossConfig) {
	g := f.g
	B := int64(f.b.Batch)
	t := g.Input(InTargets, graph.Float32, graph.Dims(B))
	w := g.Input(InRowWeights, graph.Float32, graph.Dims(B))
	loss, mse, rank := rewardObjective(g, f.head, t, w, lc)
	g.Output(OutLoss, loss)
	g.Output(OutScores, g.Identity(f.head))
	if rank != nil {
		g.Output(OutMSE, g.Identity(mse))
		g.Output(OutRankLoss, rank)
	}
}

// rewardObjective returns the reward loss for scores s, targets t and row
// weights w (all float32 [B]; padding rows have weight 0):
//
//	mse  = Σ_i w_i·(s_i − t_i)²
//	rank = Σ_ij M_ij·softplus(−(s_i − s_j)/scale) / max(Σ_ij M_ij, 1)
//	loss = mse + RankWeight·rank
//
// with M_ij = [t_i > t_j]·[w_i > 0]·[w_j > 0] (RankNet's pairwise logistic
// loss over every ordered pair of real rows). With RankWeight 0 the loss is
// the MSE alone, node for node the graph before the term existed, and rank
// is nil.
func rewardObjective(g *graph.Graph, s, t, w *graph.Value, lc LossConfig) (loss, mse, rank *graph.Value) {
	d := g.Sub(s, t)
	mse = g.ReduceSum(g.Mul(g.Mul(d, d), w), nil, false)
	if lc.RankWeight == 0 {
		return mse, mse, nil
	}
	scale := lc.RankScale
	if scale == 0 {
		scale = 1
	}
	f32 := func(b *graph.Value) *graph.Value { return g.Cast(b, graph.Float32) }
	row := func(v *graph.Value) *graph.Value { return g.Unsqueeze(v, 1) } // [B, 1]: indexed by i
	col := func(v *graph.Value) *graph.Value { return g.Unsqueeze(v, 0) } // [1, B]: indexed by j
	isReal := f32(g.Greater(w, g.ScalarFloat32(0)))
	mask := g.Mul(f32(g.Greater(row(t), col(t))), g.Mul(row(isReal), col(isReal))) // [B, B]
	x := g.Mul(g.Sub(row(s), col(s)), g.ScalarFloat32(float32(-1/scale)))          // −(s_i − s_j)/scale
	pairs := g.ReduceSum(mask, nil, false)
	rank = g.Div(g.ReduceSum(g.Mul(softplus(g, x), mask), nil, false), g.Max(pairs, g.ScalarFloat32(1)))
	return g.Add(mse, g.Mul(rank, g.ScalarFloat32(float32(lc.RankWeight)))), mse, rank
}

// softplus returns log(1 + eˣ) as max(x, 0) + log(1 + e^−|x|): no overflow
// for large |x|, and Max's tie rule gives the exact slope ½ at x = 0.
func softplus(g *graph.Graph, x *graph.Value) *graph.Value {
	return g.Add(g.Max(x, g.ScalarFloat32(0)), g.Log(g.Add(g.ScalarFloat32(1), g.Exp(g.Neg(g.Abs(x))))))
}
