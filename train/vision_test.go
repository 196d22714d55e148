package train

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
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

// TestFreezeModules checks the module names of EngineConfig.Freeze, the
// TrainVision switch and the tied-embedding rule.
func TestFreezeModules(t *testing.T) {
	tied := tinyArch(40) // DefaultConfig ties the LM head to the embeddings
	untied := tied
	untied.TieWordEmbeddings = false
	vision, dec := len(VisionParams(tied)), len(DecoderParams(tied, false))
	cases := []struct {
		name     string
		cfg      EngineConfig
		want     int    // trained parameters
		without  string // a prefix no trained name may start with ("" skips)
		with     string // a name that must be trained ("" skips)
		visionIn bool   // VisionTrained
		err      string // validateFreeze error ("" none)
	}{
		{"default-vision-frozen", EngineConfig{Objective: SFT, Arch: tied}, dec, "visual.", "model.embed_tokens.weight", false, ""},
		{"train-vision", EngineConfig{Objective: SFT, Arch: tied, TrainVision: true}, vision + dec, "", "visual.patch_embed.proj.weight", true, ""},
		{"decoder-only", EngineConfig{Objective: SFT, Arch: tied, TrainVision: true, Freeze: []string{ModuleVision}}, dec, "visual.", "model.norm.weight", false, ""},
		{"vision-only", EngineConfig{Objective: SFT, Arch: tied, TrainVision: true,
			Freeze: []string{ModuleDecoder, ModuleEmbeddings, ModuleHead}}, vision, "model.", "visual.merger.mlp.2.weight", true, ""},
		{"part-of-vision", EngineConfig{Objective: SFT, Arch: tied, TrainVision: true, Freeze: []string{"visual.blocks."}},
			dec + vision - 12*tied.Vision.Depth, "visual.blocks.", "visual.merger.ln_q.weight", true, ""},
		{"decoder", EngineConfig{Objective: SFT, Arch: tied, Freeze: []string{ModuleDecoder}}, 1, "model.layers.", "model.embed_tokens.weight", false, ""},
		{"untied-head", EngineConfig{Objective: SFT, Arch: untied, Freeze: []string{ModuleHead}}, len(DecoderParams(untied, false)) - 1,
			"lm_head.", "model.embed_tokens.weight", false, ""},
		{"untied-embeddings", EngineConfig{Objective: SFT, Arch: untied, Freeze: []string{ModuleEmbeddings}}, len(DecoderParams(untied, false)) - 1,
			"model.embed_tokens.", "lm_head.weight", false, ""},
		{"tied-both", EngineConfig{Objective: SFT, Arch: tied, Freeze: []string{ModuleEmbeddings, ModuleHead}}, dec - 1,
			"model.embed_tokens.", "model.norm.weight", false, ""},
		{"tied-head-only", EngineConfig{Objective: SFT, Arch: tied, Freeze: []string{ModuleHead}}, dec - 1, "", "", false, "tie_word_embeddings"},
		{"tied-embeddings-only", EngineConfig{Objective: GRPO, Arch: tied, Freeze: []string{ModuleEmbeddings}}, dec - 1, "", "", false, "tie_word_embeddings"},
		{"reward-head", EngineConfig{Objective: Reward, Arch: tied, Freeze: []string{ModuleHead}}, len(DecoderParams(tied, true)) - 2,
			"score.", "model.embed_tokens.weight", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validateFreeze(tc.cfg)
			if tc.err != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := TrainedParams(tc.cfg)
			if len(got) != tc.want {
				t.Fatalf("%d parameters, want %d", len(got), tc.want)
			}
			for _, p := range got {
				if tc.without != "" && strings.HasPrefix(p, tc.without) {
					t.Errorf("%s is trained", p)
				}
			}
			if tc.with != "" && !slices.Contains(got, tc.with) {
				t.Errorf("%s is not trained", tc.with)
			}
			if v := VisionTrained(tc.cfg); v != tc.visionIn {
				t.Errorf("VisionTrained = %v, want %v", v, tc.visionIn)
			}
		})
	}
}

// TestNewTrainerRejectsHalfTiedFreeze: NewTrainer refuses freezing only
// the head of a tied model.
func TestNewTrainerRejectsHalfTiedFreeze(t *testing.T) {
	src := testBundle(t, tinyArch(0), 1)
	tr, err := NewTrainer(openEnv(t), src, EngineConfig{Objective: SFT, Freeze: []string{ModuleHead}})
	if !errors.Is(err, ErrConfig) {
		_ = tr.Close()
		t.Fatalf("err = %v, want ErrConfig", err)
	}
}

// TestDecoderOnlyGraphHasNoVision: with the vision encoder frozen (the
// default, or TrainVision with Freeze "vision") the train step is today's
// graph: image_embeds in, no vision weight or pixel input. With
// TrainVision a text-only bucket declares the vision weights (zero
// gradient) and an image bucket inlines the encoder.
func TestDecoderOnlyGraphHasNoVision(t *testing.T) {
	arch := tinyArch(40)
	text, img := Bucket{Batch: 2, Length: 16}, Bucket{Batch: 2, Length: 16, Grid: [3]int64{1, 4, 4}}
	cases := []struct {
		name   string
		cfg    EngineConfig
		b      Bucket
		vision bool // vision weights are inputs
		pixels bool // pixel_values is an input (else image_embeds)
		err    bool
	}{
		{"default", EngineConfig{Objective: SFT, Arch: arch}, text, false, false, false},
		{"freeze-vision", EngineConfig{Objective: SFT, Arch: arch, TrainVision: true, Freeze: []string{ModuleVision}}, text, false, false, false},
		{"train-vision-text-bucket", EngineConfig{Objective: SFT, Arch: arch, TrainVision: true}, text, true, false, false},
		{"train-vision-image-bucket", EngineConfig{Objective: Reward, Arch: arch, TrainVision: true}, img, true, true, false},
		{"frozen-vision-image-bucket", EngineConfig{Objective: SFT, Arch: arch}, img, false, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, ts, err := BuildTrainStep(tc.cfg, graphParams(tc.cfg), tc.b)
			if tc.err {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var vis, px, embeds bool
			for _, in := range g.Inputs() {
				vis = vis || isVision(in.Name())
				px = px || in.Name() == InPixelValues
				embeds = embeds || in.Name() == InImageEmbeds
			}
			if vis != tc.vision || px != tc.pixels || embeds == tc.pixels {
				t.Fatalf("vision weights %v, pixel_values %v, image_embeds %v; want %v, %v, %v", vis, px, embeds, tc.vision, tc.pixels, !tc.pixels)
			}
			var trained []string
			for _, p := range ts.Params {
				trained = append(trained, p.Name)
			}
			if !slices.Equal(trained, TrainedParams(tc.cfg)) {
				t.Fatalf("the step trains %d parameters, TrainedParams %d", len(trained), len(TrainedParams(tc.cfg)))
			}
		})
	}
}

// TestVisionBatchErrors checks the bad-input paths of batching pixels.
func TestVisionBatchErrors(t *testing.T) {
	arch := tinyArch(40)
	tok := visionTokens(arch)
	grid := [3]int64{1, 4, 4}
	b := Bucket{Batch: 4, Length: 32, Grid: grid}
	good := visionRows(2, arch.VocabSize, grid, 0, 1)
	other := visionRows(1, arch.VocabSize, [3]int64{1, 8, 8}, 0, 2)
	withFeatures := good[0]
	withFeatures.Pixels, withFeatures.Features = nil, make([]float32, 4*arch.HiddenSize)
	short := good[0]
	short.Pixels = short.Pixels[:100]
	cases := []struct {
		name string
		rows []Row
		b    Bucket
		want string
	}{
		{"pixels-without-grid", good, Bucket{Batch: 4, Length: 16}, "no image grid"},
		{"features-with-grid", []Row{withFeatures}, b, "cached image features"},
		{"other-grid", []Row{good[0], other[0]}, b, "one image size per run"},
		{"short-pixels", []Row{short}, b, "pixel values"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			batch, err := MakeBatch(SFT, tok, tc.rows, tc.b, false)
			if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), tc.want) {
				_ = batch.Close()
				t.Fatalf("err = %v, want ErrData mentioning %q", err, tc.want)
			}
		})
	}
	// The loader names both sizes when a run mixes them.
	_, err := NewLoader(append(slices.Clone(good), other...), Buckets{Batch: 4, Lengths: []int{16, 32}}, 1)
	if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "[1 4 4]") || !strings.Contains(err.Error(), "[1 8 8]") {
		t.Fatalf("loader err = %v, want ErrData naming both grids", err)
	}
}

// TestPrepFor: a Prep for a vision-training config keeps pixels and runs
// no encoder; the default Prep caches features as before.
func TestPrepFor(t *testing.T) {
	ctx := context.Background()
	b := testBundle(t, smallArch(), 11)
	v := openVLM(t, b.Dir)
	it := modalityTask(t, 1)[0]
	for _, tc := range []struct {
		name   string
		prep   *Prep
		pixels bool
	}{
		{"frozen", NewPrep(v), false},
		{"frozen-for", NewPrepFor(v, EngineConfig{Objective: SFT, TrainVision: true, Freeze: []string{ModuleVision}}), false},
		{"trainable", NewPrepFor(v, EngineConfig{Objective: SFT, TrainVision: true}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row, im, err := tc.prep.Row(ctx, it.Question, it.Options(), it.ImageFile(), "")
			if err != nil {
				t.Fatal(err)
			}
			if (row.Pixels != nil) != tc.pixels || (row.Features != nil) == tc.pixels || (im.Features != nil) == tc.pixels {
				t.Fatalf("pixels %v, features %v (image features %v); want pixels %v",
					row.Pixels != nil, row.Features != nil, im.Features != nil, tc.pixels)
			}
		})
	}
}

// TestNewTrainerVisionWriteBundle trains one SFT step with the encoder
// trainable through NewTrainer and checks that the written bundle's vision
// weights changed on disk and the frozen ones did not.
func TestNewTrainerVisionWriteBundle(t *testing.T) {
	ctx := context.Background()
	src := testBundle(t, tinyArch(0), 3)
	arch := src.Manifest.Architecture
	tr, err := NewTrainer(openEnv(t), src, EngineConfig{Objective: SFT, TrainVision: true, Freeze: []string{ModuleDecoder}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	grid := [3]int64{1, 4, 4}
	tok := TokensOf(src.Manifest)
	rows := visionRows(4, arch.VocabSize, grid, 0, 1)
	for i := range rows {
		for j, id := range rows[i].IDs {
			if id == 5 {
				rows[i].IDs[j] = tok.ImagePad
			}
		}
	}
	if _, err := Supervised(ctx, tr.Engine, tok, rows, RunConfig{Steps: 1, Schedule: Schedule{LR: 1e-2, Decay: "constant"},
		Buckets: Buckets{Batch: 4, Lengths: []int{16}}, Seed: 1, OutDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	out, err := tr.WriteBundle(ctx, filepath.Join(t.TempDir(), "bundle"))
	if err != nil {
		t.Fatal(err)
	}
	before, err := BundleWeights(src)
	if err != nil {
		t.Fatal(err)
	}
	after, err := BundleWeights(out)
	if err != nil {
		t.Fatal(err)
	}
	visionChanged := 0
	for name, w := range before {
		same := slices.Equal(w.F32, after[name].F32)
		switch {
		case strings.HasPrefix(name, "model.layers.") && !same:
			t.Errorf("frozen %s changed", name)
		case isVision(name) && !same:
			visionChanged++
		}
	}
	if visionChanged == 0 {
		t.Fatal("no vision weight changed on disk")
	}
	t.Logf("%d of %d vision weights changed", visionChanged, len(VisionParams(arch)))
}

// TestVisionRewardEval trains the reward model with the encoder and
// evaluates it (forward only) on rows with pixels: EvalReward gives each
// batch its image grid.
func TestVisionRewardEval(t *testing.T) {
	ctx := context.Background()
	arch := tinyArch(40)
	cfg := EngineConfig{Objective: Reward, Arch: arch, TrainVision: true}
	eng, err := NewEngine(openEnv(t), cfg, visionState(t, cfg, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	rows := visionRows(6, arch.VocabSize, [3]int64{1, 4, 4}, 3, 1)
	for i := range rows {
		rows[i].Target = float32(i % 2 * 10)
	}
	bs := Buckets{Batch: 4, Lengths: []int{16}}
	if _, err := Supervised(ctx, eng, visionTokens(arch), rows, RunConfig{Steps: 2, Schedule: Schedule{LR: 1e-3},
		Buckets: bs, Seed: 1, OutDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	rho, err := EvalReward(ctx, eng, visionTokens(arch), rows, bs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("spearman %.3f", rho)
}
