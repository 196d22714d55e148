package train

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/builder"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
)

// modalityTask returns the modality-recognition items of the real
// benchmark with their options re-lettered so the correct letter is fixed
// per modality (X-ray, ultrasound, microscopy → one letter each): the
// answer is a function of the image, learnable by a tiny model.
func modalityTask(t testing.TB, n int) []data.Item {
	t.Helper()
	var mods []string
	var out []data.Item
	for _, it := range benchmarkItems(t, "train") {
		if it.QuestionType == builder.TypeModality && len(it.Options()) == 4 {
			out = append(out, it)
			if !slices.Contains(mods, it.ModalityType) {
				mods = append(mods, it.ModalityType)
			}
		}
	}
	sort.Strings(mods)
	for i, it := range out {
		idx, err := it.AnswerIndex()
		if err != nil {
			t.Fatal(err)
		}
		opts := it.Options()
		want := slices.Index(mods, it.ModalityType) % len(opts)
		opts[idx], opts[want] = opts[want], opts[idx]
		if err := out[i].SetOptions(opts); err != nil {
			t.Fatal(err)
		}
	}
	rand.New(rand.NewPCG(5, 5)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if len(out) < n {
		t.Fatalf("%d modality items in the benchmark, want %d", len(out), n)
	}
	return out[:n]
}

// formatWarmStart fine-tunes a random bundle for a few steps on
// "<answer>X</answer>" with X a random letter: it learns the answer
// format, while its letters stay at chance.
func formatWarmStart(t testing.TB, items []data.Item, steps int) *models.Bundle {
	t.Helper()
	ctx := context.Background()
	src := testBundle(t, smallArch(), 3)
	prep := NewPrep(openVLM(t, src.Dir))
	rng := rand.New(rand.NewPCG(9, 9))
	var rows []Row
	for _, it := range items {
		k := rng.IntN(len(it.Options()))
		r, _, err := prep.Row(ctx, it.Question, it.Options(), it.ImageFile(), "<answer>"+data.Letters[k:k+1]+"</answer>")
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	arch := src.Manifest.Architecture
	ws, err := BundleWeights(src)
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewState(ws, DecoderParams(arch, false))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := NewEngine(openEnv(t), EngineConfig{Objective: SFT, Arch: arch, Session: oneThread}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	out := t.TempDir()
	if _, err := Supervised(ctx, eng, prep.Tokens(), rows, RunConfig{Steps: steps, Schedule: Schedule{LR: 3e-3},
		Buckets: Buckets{Batch: 8, Lengths: []int{160}}, Seed: 2, OutDir: out}); err != nil {
		t.Fatal(err)
	}
	b, err := WriteBundle(ctx, src, filepath.Join(out, DirBundle), st.Weights())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oneThread runs the GRPO tests' sessions (and the rollout policy, which
// takes the engine's settings) on one intra-op thread: multi-threaded
// reductions change the last bits of the logits from run to run, which
// changes the sampled completions, so a run would not be reproducible.
var oneThread = runtime.SessionOptions{IntraOpThreads: 1}

// grpoSetup opens a policy bundle for GRPO: prep, state and engine.
func grpoSetup(t testing.TB, b *models.Bundle, cfg GRPOConfig) (*Engine, *Prep) {
	t.Helper()
	env := openEnv(t) // tensors need the ONNX Runtime library loaded
	arch := b.Manifest.Architecture
	ws, err := BundleWeights(b)
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewState(ws, DecoderParams(arch, false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	eng, err := NewEngine(env, EngineConfig{Objective: GRPO, Arch: arch, Loss: cfg.Loss(), Session: oneThread}, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng, NewPrep(openVLM(t, b.Dir))
}

// TestGRPORaisesReward runs GRPO with the exact-match reward on real
// images (modality recognition, letters tied to the modality) from a
// format-only warm start, and checks the mean reward of the last 20% of
// updates beats the first 20% by a clear margin.
func TestGRPORaisesReward(t *testing.T) {
	ctx := context.Background()
	steps := 40
	items := modalityTask(t, 48)
	b := formatWarmStart(t, items, 30)
	cfg := GRPOConfig{RunConfig: RunConfig{Steps: steps, Schedule: Schedule{LR: 3e-3},
		Buckets: Buckets{Batch: 32, Lengths: []int{160}}, Seed: 1, OutDir: t.TempDir()},
		Group: 8, Temperature: 1, MaxNewTokens: 4, Rewards: []WeightedReward{{Func: ExactMatch{}, Weight: 1}}}
	eng, prep := grpoSetup(t, b, cfg)
	rec, err := RunGRPO(ctx, eng, b, prep, items, cfg)
	if err != nil {
		t.Fatal(err)
	}
	k := steps / 5
	first, last := meanOf(rec, metricReward, 0, k), meanOf(rec, metricReward, steps-k, steps)
	for _, r := range rec.History {
		t.Logf("step %2.0f reward %.3f std %.3f zero-std %.2f len %.1f loss %+.4f grad %.3f sync %.3fs rollout %.3fs step %.3fs",
			r["step"], r[metricReward], r[metricRewardStd], r[metricZeroStd], r[metricMeanLength], r["loss"], r["grad_norm"],
			r["time/sync_s"], r["time/rollout_s"], r["time/step_s"])
	}
	t.Logf("mean reward: first %d updates %.3f, last %d updates %.3f", k, first, k, last)
	if !(last > first+0.15) {
		t.Fatalf("GRPO did not raise the reward: %.3f → %.3f", first, last)
	}
}
