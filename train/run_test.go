package train

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cancelAt is a progress writer that cancels a context once the bar shows
// the given step: a kill in the middle of a run.
type cancelAt struct {
	mark   string
	cancel context.CancelFunc
}

func (c cancelAt) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.mark) {
		c.cancel()
	}
	return len(p), nil
}

// supervisedRun trains 8 SFT updates of a tiny model, checkpointing every
// 2, in dir. With vision the vision encoder trains too (rows with images,
// some text-only).
func supervisedRun(t *testing.T, dir string, vision, resume bool, progress io.Writer, ctx context.Context) (*State, error) {
	t.Helper()
	cfg := EngineConfig{Objective: SFT, Arch: tinyArch(64)}
	st := randomState(t, cfg.Arch, false, 7)
	tok := Tokens{Pad: 0, ImagePad: 5, Hidden: cfg.Arch.HiddenSize, Merge: 2}
	rows := append(syntheticRows(10, 10, 64, 1), syntheticRows(5, 14, 64, 2)...)
	lengths := []int{12, 16}
	if vision {
		cfg.TrainVision = true
		st = visionState(t, cfg, 7)
		tok = visionTokens(cfg.Arch)
		rows, lengths = visionRows(12, cfg.Arch.VocabSize, [3]int64{1, 4, 4}, 3, 1), []int{12}
	}
	eng, err := NewEngine(openEnv(t), cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	rc := RunConfig{Steps: 8, Schedule: Schedule{LR: 5e-3, Warmup: 2, Decay: "cosine"},
		Buckets: Buckets{Batch: 4, Lengths: lengths}, Seed: 3, OutDir: dir, CheckpointEvery: 2,
		Resume: resume, Progress: progress}
	_, err = Supervised(ctx, eng, tok, rows, rc)
	return st, err
}

// TestResumeBitForBit kills a run after 3 of 8 updates, resumes it from its
// checkpoint, and compares every parameter and moment with an
// uninterrupted run, bit for bit: for the decoder alone, and with the
// vision encoder trained (its weights and moments are in the checkpoint).
func TestResumeBitForBit(t *testing.T) {
	for _, c := range []struct {
		name   string
		vision bool
	}{{"decoder", false}, {"vision", true}} {
		t.Run(c.name, func(t *testing.T) {
			whole, err := supervisedRun(t, t.TempDir(), c.vision, false, nil, context.Background())
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			killed, err := supervisedRun(t, dir, c.vision, false, cancelAt{"step 3/", cancel}, ctx)
			if !errors.Is(err, context.Canceled) || killed.Step != 3 {
				t.Fatalf("killed run: step %d, err %v; want step 3 and context.Canceled", killed.Step, err)
			}
			resumed, err := supervisedRun(t, dir, c.vision, true, nil, context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if resumed.Step != 8 || whole.Step != 8 {
				t.Fatalf("steps %d and %d, want 8", resumed.Step, whole.Step)
			}
			want, got := whole.Weights(), resumed.Weights()
			for k, v := range whole.Moments() {
				want[k] = v
			}
			for k, v := range resumed.Moments() {
				got[k] = v
			}
			if c.vision && (want["visual.patch_embed.proj.weight.m"] == nil || got["visual.patch_embed.proj.weight.m"] == nil) {
				t.Fatal("the vision encoder's moments are not in the state")
			}
			for name, w := range want {
				if !slices.Equal(w.F32, got[name].F32) {
					t.Fatalf("%s differs after resume", name)
				}
			}
			recs := readRecords(filepath.Join(dir, FileMetrics), 1<<30)
			if len(recs) != 8 {
				t.Fatalf("metrics.jsonl has %d records after resume, want 8", len(recs))
			}
			if st, err := os.Stat(filepath.Join(dir, FileCurves)); err != nil || st.Size() == 0 {
				t.Fatalf("curves.png: %v", err)
			}
		})
	}
}

// TestResumeMissingCheckpoint: resuming without a checkpoint names the
// problem.
func TestResumeMissingCheckpoint(t *testing.T) {
	_, err := supervisedRun(t, t.TempDir(), false, true, nil, context.Background())
	if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "no checkpoint") {
		t.Fatalf("err = %v, want ErrCheckpoint naming the missing checkpoint", err)
	}
}
