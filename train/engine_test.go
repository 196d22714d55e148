package train

import (
	"context"
	"testing"
)

// TestSFTStepLearns runs SFT steps on a fixed learnable batch and checks
// the loss falls and the token accuracy rises.
func TestSFTStepLearns(t *testing.T) {
	ctx := context.Background()
	env := openEnv(t)
	cfg := tinyArch(64)
	st := randomState(t, cfg, false, 1)
	eng, err := NewEngine(env, EngineConfig{Objective: SFT, Arch: cfg}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	b := Bucket{Batch: 4, Length: 12}
	batch, err := MakeBatch(SFT, Tokens{Pad: 0, ImagePad: 5, Hidden: cfg.HiddenSize, Merge: 2}, syntheticRows(4, 10, 64, 3), b, false)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Close()
	var first, last StepResult
	for i := range 30 {
		r, err := eng.Step(ctx, b, batch.Tensors, 1e-2)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = r
		}
		last = r
	}
	t.Logf("loss %.4f → %.4f, acc %.2f → %.2f, grad norm %.3f", first.Loss, last.Loss,
		first.Metrics[OutAccuracy], last.Metrics[OutAccuracy], last.GradNorm)
	if !(last.Loss < first.Loss/4) || last.Metrics[OutAccuracy] < 0.99 {
		t.Fatalf("SFT did not fit the batch: loss %.4f → %.4f, accuracy %.2f", first.Loss, last.Loss, last.Metrics[OutAccuracy])
	}
	if st.Step != 30 {
		t.Fatalf("state step %d, want 30", st.Step)
	}
}

// TestRewardStepLearns fits the reward head to per-row targets of a fixed
// batch.
func TestRewardStepLearns(t *testing.T) {
	ctx := context.Background()
	cfg := tinyArch(64)
	st := randomState(t, cfg, true, 1)
	eng, err := NewEngine(openEnv(t), EngineConfig{Objective: Reward, Arch: cfg}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	b := Bucket{Batch: 4, Length: 12}
	rows := syntheticRows(4, 10, 64, 3)
	for i := range rows {
		rows[i].Target = []float32{10, 6, 0, -6}[i]
	}
	batch, err := MakeBatch(Reward, Tokens{Pad: 0, ImagePad: 5, Hidden: cfg.HiddenSize, Merge: 2}, rows, b, false)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Close()
	var first, last StepResult
	for i := range 60 {
		r, err := eng.Step(ctx, b, batch.Tensors, 1e-2)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = r
		}
		last = r
	}
	t.Logf("loss %.4f → %.4f, scores %v", first.Loss, last.Loss, last.Vectors[OutScores])
	if !(last.Loss < first.Loss/10) {
		t.Fatalf("reward head did not fit the batch: loss %.4f → %.4f", first.Loss, last.Loss)
	}
}
