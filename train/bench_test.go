package train

import (
	"context"
	"testing"

	"github.com/medgr2/medgr2/models"
)

// benchEngine returns an SFT engine for the default architecture and one
// batch of its bucket.
func benchEngine(b *testing.B) (*Engine, *Batch) {
	cfg := models.DefaultConfig(1014)
	st := randomState(b, cfg, false, 1)
	eng, err := NewEngine(openEnv(b), EngineConfig{Objective: SFT, Arch: cfg}, st)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Close() })
	bk := Bucket{Batch: 8, Length: 128}
	batch, err := MakeBatch(SFT, Tokens{Pad: 0, ImagePad: 5, Hidden: cfg.HiddenSize, Merge: 2}, syntheticRows(8, 120, 1014, 1), bk, false)
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
