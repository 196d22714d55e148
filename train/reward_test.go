package train

import (
	"context"
	"testing"
)

// TestRewardModelRanksLevels trains the reward head on graded samples of
// the train split and checks held-out samples (test split) are ranked by
// level: Spearman ρ between scores and levels well above 0.
func TestRewardModelRanksLevels(t *testing.T) {
	ctx := context.Background()
	// 800 steps (about 15 s): at 240 steps held-out ρ was 0.09, at 480
	// 0.13, at 800 0.22, with the score read at <|im_end|> as served.
	steps := 800
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
	eng, err := NewEngine(openEnv(t), EngineConfig{Objective: Reward, Arch: arch}, st)
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
	t.Logf("%d train / %d held-out samples, %d steps: loss %.2f → %.2f, held-out Spearman ρ = %.3f",
		len(train), len(test), steps, meanOf(rec, "loss", 0, 5), meanOf(rec, "loss", steps-5, steps), rho)
	if !(rho > 0.1) {
		t.Fatalf("held-out Spearman ρ = %.3f, want > 0.1", rho)
	}
}
