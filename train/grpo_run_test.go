package train

import (
	"context"
	"errors"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
)

// grpoTiny is a small GRPO config on a random bundle: two prompts of four
// completions per update, short completions.
func grpoTiny(out string, steps, iterations int, beta float64) GRPOConfig {
	return GRPOConfig{RunConfig: RunConfig{Steps: steps, Schedule: Schedule{LR: 3e-3},
		Buckets: Buckets{Batch: 8, Lengths: []int{160}}, Seed: 4, OutDir: out, CheckpointEvery: 1},
		Group: 4, Iterations: iterations, Temperature: 1.3, MaxNewTokens: 5, Beta: beta,
		Rewards: []WeightedReward{{Func: tokenReward{}, Weight: 1}, {Func: ExactMatch{}, Weight: 0.2}}}
}

// TestGRPORolloutLogpMatchesTrainGraph: the per-token log-probs the
// generation engine reports at temperature T equal the train graph's
// log-probs at T with the same weights, so the ratio of the first update on
// a rollout is 1 up to float rounding.
func TestGRPORolloutLogpMatchesTrainGraph(t *testing.T) {
	ctx := context.Background()
	b := testBundle(t, smallArch(), 11)
	cfg := grpoTiny(t.TempDir(), 1, 1, 0)
	eng, prep := grpoSetup(t, b, cfg)
	cfg = cfg.withDefaults()
	r, err := newGRPORun(ctx, eng, b, prep, modalityTask(t, 8), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	ro, err := r.rollout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := r.rows(ctx, ro)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := newLogpModel(eng, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lm.close()
	got, err := lm.logp(ctx, r.tok, rows, ro.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	for i := range got {
		for j := range got[i] {
			worst = math.Max(worst, math.Abs(float64(got[i][j]-ro.OldLogp[i][j])))
		}
	}
	t.Logf("%d completions, max |train logp − rollout logp| = %.2g", len(got), worst)
	if worst > 1e-4 {
		t.Fatalf("train-graph log-probs differ from the rollout's by %g", worst)
	}
}

// grpoRunTo runs tiny GRPO to completion (or until ctx ends) in dir.
func grpoRunTo(t *testing.T, ctx context.Context, b *models.Bundle, items []data.Item, dir string, resume bool, progress io.Writer) (*State, *Recorder, error) {
	t.Helper()
	cfg := grpoTiny(dir, 5, 2, 0.05)
	cfg.Resume, cfg.Progress = resume, progress
	eng, prep := grpoSetup(t, b, cfg)
	rec, err := RunGRPO(ctx, eng, b, prep, items, cfg)
	return eng.State(), rec, err
}

// TestGRPOResumeBitForBit kills a run (μ = 2, β > 0) after update 3, in
// the middle of its second rollout, resumes it, and compares every
// parameter, moment and logged metric with an uninterrupted run.
func TestGRPOResumeBitForBit(t *testing.T) {
	b := testBundle(t, smallArch(), 12)
	items := modalityTask(t, 8)
	whole, wrec, err := grpoRunTo(t, context.Background(), b, items, t.TempDir(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	killed, _, err := grpoRunTo(t, ctx, b, items, dir, false, cancelAt{"step 3/", cancel})
	if !errors.Is(err, context.Canceled) || killed.Step != 3 {
		t.Fatalf("killed run: step %d, err %v; want step 3 and context.Canceled", killed.Step, err)
	}
	resumed, rrec, err := grpoRunTo(t, context.Background(), b, items, dir, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, got := whole.Weights(), resumed.Weights()
	for k, v := range whole.Moments() {
		want[k] = v
	}
	for k, v := range resumed.Moments() {
		got[k] = v
	}
	for name, w := range want {
		if !slices.Equal(w.F32, got[name].F32) {
			t.Fatalf("%s differs after resume", name)
		}
	}
	if len(rrec.History) != 5 {
		t.Fatalf("resumed run has %d records, want 5", len(rrec.History))
	}
	for i, w := range wrec.History {
		for _, k := range []string{"loss", metricReward, OutKL, "grad_norm", OutClipRegion} {
			if w[k] != rrec.History[i][k] {
				t.Fatalf("step %d %s: %g uninterrupted, %g resumed", i+1, k, w[k], rrec.History[i][k])
			}
		}
	}
	first := wrec.History[0]
	if first[OutKL] > 1e-5 || !(wrec.History[4][OutKL] > first[OutKL]) {
		t.Fatalf("kl %g at update 1 (policy = reference) and %g at update 5; want ≈ 0 then larger", first[OutKL], wrec.History[4][OutKL])
	}
	for _, k := range []string{metricRewardStd, "rewards/first_token/mean", "rewards/exact_match/mean", metricZeroStd,
		metricMeanLength, OutClipRegion, "grad_norm", "loss", OutKL} {
		if _, ok := first[k]; !ok {
			t.Errorf("metric %q missing from %v", k, first)
		}
	}
}

// TestRunGRPOErrors: bad setups are named before any rollout.
func TestRunGRPOErrors(t *testing.T) {
	ctx := context.Background()
	b := testBundle(t, smallArch(), 13)
	items := modalityTask(t, 8)
	cfg := grpoTiny(t.TempDir(), 1, 1, 0)
	eng, prep := grpoSetup(t, b, cfg)
	sftEng, err := NewEngine(openEnv(t), EngineConfig{Objective: SFT, Arch: b.Manifest.Architecture}, eng.State())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		edit  func(*GRPOConfig)
		eng   *Engine
		items []data.Item
		want  error
		text  string
	}{
		{"engine trains sft", nil, sftEng, items, ErrConfig, "objective grpo"},
		{"engine loss differs", func(c *GRPOConfig) { c.Temperature = 0.5 }, eng, items, ErrConfig, "objective grpo"},
		{"too few items", nil, eng, items[:1], ErrData, "1 items for 2 prompts"},
		{"prompt too long", func(c *GRPOConfig) { c.Buckets.Lengths = []int{40} }, eng, items, ErrConfig, "largest bucket"},
		{"bad item", nil, eng, append([]data.Item{{QuestionID: "bad", Question: "q", GTAnswer: "none"}}, items...), ErrData, "bad"},
		{"resume without checkpoint", func(c *GRPOConfig) { c.Resume = true }, eng, items, ErrCheckpoint, "no checkpoint"},
		{"group 1", func(c *GRPOConfig) { c.Group = 1 }, eng, items, ErrConfig, "group 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.OutDir = t.TempDir()
			if tc.edit != nil {
				tc.edit(&c)
			}
			_, err := RunGRPO(ctx, tc.eng, b, prep, tc.items, c)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
	rb, err := RewardBundle(ctx, b, filepath.Join(t.TempDir(), "rm"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunGRPO(ctx, eng, rb, prep, items, cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "reward model") {
		t.Fatalf("reward bundle as policy: err = %v, want ErrConfig", err)
	}
}

// TestModelReward scores completions with a (random) reward bundle: every
// reward lies in [0, 1], an empty completion scores 0, and the scores are
// the bundle's own, normalised.
func TestModelReward(t *testing.T) {
	ctx := context.Background()
	b := testBundle(t, smallArch(), 14)
	rb, err := RewardBundle(ctx, b, filepath.Join(t.TempDir(), "rm"), 2)
	if err != nil {
		t.Fatal(err)
	}
	rm := openVLM(t, rb.Dir)
	it := modalityTask(t, 1)[0]
	im, err := NewPrep(openVLM(t, b.Dir)).Image(ctx, it.ImageFile())
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"<think>x</think><answer>A</answer>", "", "<think>y</think><answer>B</answer>"}
	var cs []Completion
	for _, s := range texts {
		cs = append(cs, Completion{Item: it, Pixels: im.Pixels, Text: s, Tokens: []int{1}})
	}
	got, err := ModelReward{VLM: rm, Batch: 1}.Rewards(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rm.Score(ctx, []models.RewardRequest{{Pixels: im.Pixels, Question: it.Question, Options: it.Options(), Response: texts[2]}})
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != 0 || got[2] != NormalizeRewardScore(float64(raw[0])) {
		t.Fatalf("rewards %v; want [_, 0, %g]", got, NormalizeRewardScore(float64(raw[0])))
	}
	for _, g := range got {
		if g < 0 || g > 1 {
			t.Fatalf("reward %g outside [0, 1]", g)
		}
	}
	if _, err := (ModelReward{VLM: openVLM(t, b.Dir)}).Rewards(ctx, cs); !errors.Is(err, models.ErrRole) {
		t.Fatalf("a policy bundle as reward model: err = %v, want models.ErrRole", err)
	}
}
