package train

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/medgr2/medgr2/models"
)

// benchEngine returns an SFT engine for the default architecture and one
// batch of its bucket.
func benchEngine(b *testing.B) (*Engine, *Batch) { return benchEngineGrid(b, [3]int64{}) }

// benchEngineGrid is benchEngine with, for a non-zero grid, the vision
// encoder trained and an image of that patch grid in every row (its
// <|image_pad|> tokens replace prompt tokens after the first two).
func benchEngineGrid(b *testing.B, grid [3]int64) (*Engine, *Batch) {
	cfg := models.DefaultConfig(1014)
	ec := EngineConfig{Objective: SFT, Arch: cfg, TrainVision: grid != [3]int64{}}
	st := visionState(b, ec, 1)
	eng, err := NewEngine(openEnv(b), ec, st)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Close() })
	rows := syntheticRows(8, 120, 1014, 1)
	if ec.TrainVision {
		img := visionRows(len(rows), cfg.VocabSize, grid, 0, 2)
		for i := range rows {
			P := len(img[i].Pixels) / cfg.Vision.PatchDim()
			for j := range P / 4 {
				rows[i].IDs[2+j] = 5
			}
			rows[i].Pixels, rows[i].Grids = img[i].Pixels, img[i].Grids
		}
	}
	bk := Bucket{Batch: 8, Length: 128, Grid: grid}
	batch, err := MakeBatch(SFT, Tokens{Pad: 0, ImagePad: 5, Hidden: cfg.HiddenSize, Merge: 2, PatchDim: cfg.Vision.PatchDim()}, rows, bk, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = batch.Close() })
	return eng, batch
}

// BenchmarkTrainStep is one SFT update (forward, backward, clipping,
// AdamW) of the default model on an 8×128 batch.
func BenchmarkTrainStep(b *testing.B) {
	eng, batch := benchEngine(b)
	ctx := context.Background()
	if _, err := eng.Step(ctx, batch.Bucket, batch.Tensors, 1e-4); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := eng.Step(ctx, batch.Bucket, batch.Tensors, 1e-4); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkForward is the same batch's forward pass (loss only): the
// baseline of the step-cost ratio.
func BenchmarkForward(b *testing.B) {
	eng, batch := benchEngine(b)
	ctx := context.Background()
	if _, err := eng.Forward(ctx, batch.Bucket, batch.Tensors); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := eng.Forward(ctx, batch.Bucket, batch.Tensors); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStepOverForward alternates one update and one forward pass of
// the same batch on one engine and reports their median times and the
// step-cost ratio ("x-step/fwd"); alternating keeps a shared machine's
// changing load from favouring either side. Run it with -benchtime 20x
// or more.
func BenchmarkStepOverForward(b *testing.B) { stepOverForward(b, [3]int64{}) }

// BenchmarkStepOverForwardVision is BenchmarkStepOverForward of the whole
// model: the vision encoder trains and every row holds an image, 56 px
// (4×4 patches) or 112 px (8×8 patches). The forward pass runs the same
// encoder, so the ratio is the whole model's step over its forward pass.
func BenchmarkStepOverForwardVision(b *testing.B) {
	for _, px := range []int64{56, 112} {
		b.Run(fmt.Sprintf("%dpx", px), func(b *testing.B) { stepOverForward(b, [3]int64{1, px / 14, px / 14}) })
	}
}

func stepOverForward(b *testing.B, grid [3]int64) {
	eng, batch := benchEngineGrid(b, grid)
	ctx := context.Background()
	if _, err := eng.Step(ctx, batch.Bucket, batch.Tensors, 1e-4); err != nil {
		b.Fatal(err)
	}
	if _, err := eng.Forward(ctx, batch.Bucket, batch.Tensors); err != nil {
		b.Fatal(err)
	}
	steps, fwds := make([]float64, 0, b.N), make([]float64, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := eng.Step(ctx, batch.Bucket, batch.Tensors, 1e-4); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := eng.Forward(ctx, batch.Bucket, batch.Tensors); err != nil {
			b.Fatal(err)
		}
		steps, fwds = append(steps, float64(t1.Sub(t0).Microseconds())/1e3), append(fwds, float64(time.Since(t1).Microseconds())/1e3)
	}
	s, f := median(steps), median(fwds)
	b.ReportMetric(s, "ms-step")
	b.ReportMetric(f, "ms-fwd")
	b.ReportMetric(s/f, "x-step/fwd")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
