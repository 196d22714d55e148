package train

import (
	"context"
	"testing"
)

// rewardRhoBar is the held-out Spearman ρ TestRewardModelRanksLevels
// requires.
const rewardRhoBar = 0.4

// TestRewardModelRanksLevels trains the reward head on graded samples of
// the train split and checks held-out samples (test split) are ranked by
// level: Spearman ρ between scores and levels well above 0.
func TestRewardModelRanksLevels(t *testing.T) {
	ctx := context.Background()
	// 800 steps (about 15 s). With MSE alone held-out ρ was 0.09 at 240
	// steps, 0.13 at 480, 0.22 at 800 (only "incoherent" separated). The
	// pairwise ranking term (RankWeight 5) over item-grouped batches
	// (RewardRows sets Row.Group) also separates "irrelevant": ρ 0.83 here
	// (seed 1, twice), 0.50–0.83 over data-order seeds 1–6, where MSE alone
	// reached > 0.4 for 2 of 6 (docs/2026-11-25-reward-rank-weight.md lists
	// the four combinations).
	steps := 800
	loss := LossConfig{RankWeight: DefaultRewardRankWeight}
	arch := smallArch()
	vqa := testBundle(t, arch, 2)
	src, err := RewardBundle(ctx, vqa, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	arch = src.Manifest.Architecture
	prep := NewPrep(openVLM(t, src.Dir))
	mk := func(split string, n int) []Row {
		items := benchmarkItems(t, split)
		samples, err := GradedSamples(items[:min(n, len(items))], 5)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := prep.RewardRows(ctx, samples)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	train, test := mk("train", 200), mk("test", 40)
	ws, err := BundleWeights(src)
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewState(ws, DecoderParams(arch, true))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := NewEngine(openEnv(t), EngineConfig{Objective: Reward, Arch: arch, Loss: loss}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	buckets := Buckets{Batch: 8, Lengths: []int{96, 128, 160, 192}}
	rec, err := Supervised(ctx, eng, prep.Tokens(), train, RunConfig{Steps: steps,
		Schedule: Schedule{LR: 1e-3, Warmup: 10, Decay: "cosine"}, Buckets: buckets, Seed: 1, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rho, err := EvalReward(ctx, eng, prep.Tokens(), test, buckets)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d train / %d held-out samples, %d steps, rank weight %g: loss %.2f → %.2f (mse %.2f → %.2f, rank %.3f → %.3f), held-out Spearman ρ = %.3f",
		len(train), len(test), steps, loss.RankWeight, meanOf(rec, "loss", 0, 5), meanOf(rec, "loss", steps-5, steps),
		meanOf(rec, OutMSE, 0, 5), meanOf(rec, OutMSE, steps-5, steps),
		meanOf(rec, OutRankLoss, 0, 5), meanOf(rec, OutRankLoss, steps-5, steps), rho)
	if !(rho > rewardRhoBar) {
		t.Fatalf("held-out Spearman ρ = %.3f, want > %g", rho, rewardRhoBar)
	}
}
