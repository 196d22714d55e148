package train

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// visionRows returns rows whose answer token is decided by the image: each
// row holds grid's image (random pixels, brighter for class 1) as
// <|image_pad|> tokens after a fixed prefix, and the answer token is 20 +
// class. Every textEvery-th row (when > 0) is text-only.
func visionRows(n, vocab int, grid [3]int64, textEvery int, seed uint64) []Row {
	rng := rand.New(rand.NewPCG(seed, 3))
	const pd = 1176
	P := int(grid[0] * grid[1] * grid[2])
	rows := make([]Row, n)
	for i := range rows {
		class := i % 2
		ids := []int{11, 12}
		r := Row{}
		if textEvery == 0 || i%textEvery != textEvery-1 {
			for range P / 4 {
				ids = append(ids, 5) // Tokens.ImagePad below
			}
			px := make([]float32, P*pd)
			for j := range px {
				px[j] = float32(rng.NormFloat64()*0.3) + float32(class)*0.8 - 0.4
			}
			r.Pixels, r.Grids = px, [][3]int64{grid}
		}
		ids = append(ids, 13, 20+class, 14)
		r.IDs, r.AnswerStart, r.AnswerEnd = ids, len(ids)-2, len(ids)-1
		_ = vocab
		rows[i] = r
	}
	return rows
}

func visionTokens(arch models.ArchConfig) Tokens {
	return Tokens{Pad: 0, ImagePad: 5, Hidden: arch.HiddenSize, Merge: 2, PatchDim: arch.Vision.PatchDim()}
}

// visionState returns a random state training what cfg trains.
func visionState(t testing.TB, cfg EngineConfig, seed uint64) *State {
	t.Helper()
	openEnv(t)
	ws := map[string]*graph.Tensor{}
	for _, nt := range models.RandomWeights(models.WeightSpecs(cfg.Arch, cfg.Objective == Reward), seed, cfg.Arch.InitStd) {
		ws[nt.Name] = nt.Tensor
	}
	s, err := NewState(ws, TrainedParams(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestVisionTrainStep trains the whole tiny model (vision included) on
// rows whose answer only the image decides: the vision weights change
// after one step, and the loss falls over a few steps. Text-only rows
// share the batches (their zero images are masked out).
func TestVisionTrainStep(t *testing.T) {
	ctx := context.Background()
	arch := tinyArch(40)
	cfg := EngineConfig{Objective: SFT, Arch: arch, TrainVision: true}
	st := visionState(t, cfg, 1)
	if !slices.Contains(st.Params, "visual.patch_embed.proj.weight") {
		t.Fatal("the state does not train the vision encoder")
	}
	eng, err := NewEngine(openEnv(t), cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	grid := [3]int64{1, 4, 4}
	rows := visionRows(8, arch.VocabSize, grid, 4, 1)
	l, err := NewLoader(rows, Buckets{Batch: 8, Lengths: []int{16}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	batchRows, b := l.Next()
	if b.Grid != grid {
		t.Fatalf("loader bucket grid %v, want %v", b.Grid, grid)
	}
	batch, err := MakeBatch(SFT, visionTokens(arch), batchRows, b, false)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Close()
	watch := []string{"visual.patch_embed.proj.weight", "visual.blocks.0.attn.qkv.weight", "visual.merger.mlp.2.weight"}
	before := map[string][]float32{}
	for _, n := range watch {
		d, _, _ := st.Tensor(n)
		before[n] = slices.Clone(d)
	}
	var losses []float64
	for i := range 30 {
		res, err := eng.Step(ctx, b, batch.Tensors, 3e-3)
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, res.Loss)
		if i == 0 {
			for _, n := range watch {
				if d, _, _ := st.Tensor(n); slices.Equal(d, before[n]) {
					t.Errorf("%s did not change after one step", n)
				}
			}
		}
	}
	t.Logf("loss %.4f → %.4f", losses[0], losses[len(losses)-1])
	if !(losses[len(losses)-1] < 0.5*losses[0]) {
		t.Fatalf("loss %v did not halve", losses)
	}
	fwd, err := eng.Forward(ctx, b, batch.Tensors)
	if err != nil {
		t.Fatal(err)
	}
	if !(fwd.Loss < losses[0]) {
		t.Fatalf("forward loss %g after training, first step %g", fwd.Loss, losses[0])
	}
}

// grpoVisionSetup is grpoSetup with the vision encoder trained.
func grpoVisionSetup(t testing.TB, b *models.Bundle, cfg GRPOConfig) (*Engine, *Prep) {
	t.Helper()
	env := openEnv(t)
	ws, err := BundleWeights(b)
	if err != nil {
		t.Fatal(err)
	}
	ec := EngineConfig{Objective: GRPO, Arch: b.Manifest.Architecture, Loss: cfg.Loss(), Session: oneThread, TrainVision: true}
	st, err := NewState(ws, TrainedParams(ec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	eng, err := NewEngine(env, ec, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng, NewPrepFor(openVLM(t, b.Dir), ec)
}

// TestGRPOVision runs GRPO with a trainable encoder on real images: the
// train graph (encoder inlined, pixels batched) gives the rollout's
// log-probs (the bundle's own encoder), the reference model runs the
// encoder too (β > 0), and after the updates the rollout bundle on disk
// holds vision weights that differ from the source's.
func TestGRPOVision(t *testing.T) {
	ctx := context.Background()
	b := testBundle(t, smallArch(), 11)
	out := t.TempDir()
	cfg := grpoTiny(out, 2, 1, 0.05)
	eng, prep := grpoVisionSetup(t, b, cfg)
	items := modalityTask(t, 8)
	r, err := newGRPORun(ctx, eng, b, prep, items, cfg.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	ro, err := r.rollout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ro.Bucket.Grid == [3]int64{} {
		t.Fatal("the rollout's bucket has no image grid")
	}
	rows, err := r.rows(ctx, ro)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Pixels == nil || rows[0].Features != nil {
		t.Fatal("rows should carry pixels and no cached features")
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
			worst = max(worst, float64(got[i][j]-ro.OldLogp[i][j]), float64(ro.OldLogp[i][j]-got[i][j]))
		}
	}
	t.Logf("max |train logp − rollout logp| = %.2g", worst)
	if worst > 1e-4 {
		t.Fatalf("train-graph log-probs (vision inlined) differ from the rollout's by %g", worst)
	}
	if _, err := RunGRPO(ctx, eng, b, prep, items, cfg); err != nil {
		t.Fatal(err)
	}
	src, err := BundleWeights(b)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := models.Load(ctx, filepath.Join(out, DirRolloutBundle))
	if err != nil {
		t.Fatal(err)
	}
	disk, err := BundleWeights(rb)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"visual.patch_embed.proj.weight", "visual.merger.mlp.2.weight"} {
		if slices.Equal(src[n].F32, disk[n].F32) {
			t.Errorf("%s in the rollout bundle is the source's: trained vision weights do not reach the rollouts", n)
		}
	}
}
