package train

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// meanOf returns the mean of key over records [from, to).
func meanOf(rec *Recorder, key string, from, to int) float64 {
	var s float64
	for _, r := range rec.History[from:to] {
		s += r[key]
	}
	return s / float64(to-from)
}

// TestSFTRealData fine-tunes a small random model on a benchmark built from
// the real collections and checks the training loss falls, then writes the
// trained weights into a bundle that loads and differs from the start.
func TestSFTRealData(t *testing.T) {
	ctx := context.Background()
	steps, bar := 60, 0.6
	if testing.Short() {
		steps, bar = 20, 0.75 // 20 steps (5 of warm-up) reach about 0.62×
	}
	items := benchmarkItems(t, "train")
	arch := smallArch()
	src := testBundle(t, arch, 1)
	arch = src.Manifest.Architecture
	prep := NewPrep(openVLM(t, src.Dir))
	rows, err := prep.SFTRows(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := BundleWeights(src)
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewState(ws, DecoderParams(arch, false))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := NewEngine(openEnv(t), EngineConfig{Objective: SFT, Arch: arch}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	out := t.TempDir()
	rec, err := Supervised(ctx, eng, prep.Tokens(), rows, RunConfig{Steps: steps,
		Schedule: Schedule{LR: 3e-3, Warmup: 5, Decay: "cosine"}, Buckets: Buckets{Batch: 8, Lengths: []int{96, 128, 160, 192}},
		Seed: 1, OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	first, last := meanOf(rec, "loss", 0, 5), meanOf(rec, "loss", steps-5, steps)
	t.Logf("%d rows, %d steps: loss %.3f → %.3f, token accuracy %.2f → %.2f", len(rows), steps, first, last,
		meanOf(rec, OutAccuracy, 0, 5), meanOf(rec, OutAccuracy, steps-5, steps))
	if !(last < bar*first) {
		t.Fatalf("SFT loss did not fall: %.3f → %.3f", first, last)
	}
	b, err := WriteBundle(ctx, src, filepath.Join(out, DirBundle), st.Weights())
	if err != nil {
		t.Fatal(err)
	}
	got, err := BundleWeights(b)
	if err != nil {
		t.Fatal(err)
	}
	name := "model.layers.0.mlp.up_proj.weight"
	if slices.Equal(got[name].F32, ws[name].F32) {
		t.Fatalf("%s unchanged in the written bundle", name)
	}
	openVLM(t, b.Dir) // the server's loader accepts it
}
