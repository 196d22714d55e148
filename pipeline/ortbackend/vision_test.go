package ortbackend

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/pipeline"
)

func readBundleWeights(t *testing.T, dir string) map[string]*graph.Tensor {
	t.Helper()
	bd, err := models.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	w, _, err := graph.ReadWeights(bd.WeightsPath())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestVisionPretrainTransplantProbe pretrains a tiny encoder a few steps
// on real images, moves it into a reward bundle (vision weights from the
// pretrained one, the rest unchanged), and probes a real collection.
func TestVisionPretrainTransplantProbe(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	ex := realExamples(t, 8)
	vqa := setup(t, b, pipeline.RoleVQA, ex)
	var images []string
	for _, e := range ex {
		images = append(images, e.Item.ImageFile())
	}
	pre := filepath.Join(t.TempDir(), "vision")
	st, err := b.PretrainVision(ctx, vqa, pre, images, pipeline.VisionOptions{
		VisionPretrainConfig: pipeline.VisionPretrainConfig{Steps: 3, Pairs: 4}, ImageSize: 56, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st.Steps != 3 || len(st.Curve) != 3 || st.Metrics["images"] != 8 {
		t.Errorf("stats %+v", st)
	}
	// A reward bundle of the same tokenizer, seeded differently.
	reward := filepath.Join(t.TempDir(), "reward")
	if err := b.NewBundle(ctx, reward, pipeline.RoleReward, filepath.Join(filepath.Dir(vqa), "tokenizer.json"), 2); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "reward-vision")
	if err := b.WithVision(ctx, reward, pre, out); err != nil {
		t.Fatal(err)
	}
	got, from, old := readBundleWeights(t, out), readBundleWeights(t, pre), readBundleWeights(t, reward)
	for name, w := range got {
		want := old[name]
		if strings.HasPrefix(name, visionPrefix) {
			want = from[name]
		}
		if !reflect.DeepEqual(w.F32, want.F32) {
			t.Errorf("%s is not the expected bundle's", name)
		}
	}
	rows, err := b.Probe(ctx, pre, []string{filepath.Join(shared, "mednist-ct"), filepath.Join(shared, "mednist-mr")},
		pipeline.ProbeOptions{Limit: 12, ImageSize: 56, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Collection != "mednist-ct" || rows[0].Task != "CT region" || rows[0].Classes != 3 || rows[0].Val == 0 {
		t.Errorf("probe rows %+v, want one CT row (mednist-mr has no task)", rows)
	}
}

func TestWithVisionErrors(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	vqa := setup(t, b, pipeline.RoleVQA, realExamples(t, 2))
	if err := b.WithVision(ctx, vqa, filepath.Join(t.TempDir(), "missing"), filepath.Join(t.TempDir(), "o")); err == nil {
		t.Error("a missing vision bundle gave no error")
	}
	big, err := New(ctx, Options{Env: b.env, Arch: func(v int) models.ArchConfig {
		a := tinyArch(v)
		a.Vision.Depth++
		return a
	}})
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if err := big.NewBundle(ctx, other, pipeline.RoleVQA, filepath.Join(filepath.Dir(vqa), "tokenizer.json"), 1); err != nil {
		t.Fatal(err)
	}
	if err := b.WithVision(ctx, vqa, other, filepath.Join(t.TempDir(), "o")); err == nil || !strings.Contains(err.Error(), "vision encoders differ") {
		t.Errorf("mismatched encoders: %v", err)
	}
}

// TestTrainVisionReachesBundles trains with TrainOptions.TrainVision
// through SFT, reward training and GRPO: each writes a bundle whose
// vision weights moved, and without it they stay put.
func TestTrainVisionReachesBundles(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	ex := realExamples(t, 6)
	vqa := setup(t, b, pipeline.RoleVQA, ex)
	tok := filepath.Join(filepath.Dir(vqa), "tokenizer.json")
	rm := filepath.Join(t.TempDir(), "rm")
	if err := b.NewBundle(ctx, rm, pipeline.RoleReward, tok, 3); err != nil {
		t.Fatal(err)
	}
	moved := func(base, out string) bool {
		before, after := readBundleWeights(t, base), readBundleWeights(t, out)
		for name, w := range after {
			if strings.HasPrefix(name, visionPrefix) && !reflect.DeepEqual(w.F32, before[name].F32) {
				return true
			}
		}
		return false
	}
	graded := make([]pipeline.Graded, len(ex))
	for i, e := range ex {
		graded[i] = pipeline.Graded{Example: e, Level: float64(10 - 4*(i%3))}
	}
	for _, vision := range []bool{false, true} {
		o := pipeline.TrainOptions{Epochs: 1, BatchSize: 4, LearningRate: 1e-2, Seed: 1, TrainVision: vision}
		runs := map[string]func(out string) (string, error){
			"sft": func(out string) (string, error) {
				_, err := b.SFT(ctx, vqa, out, pipeline.RoleVQA, ex, o)
				return vqa, err
			},
			"reward": func(out string) (string, error) {
				_, err := b.TrainReward(ctx, rm, out, graded, o)
				return rm, err
			},
			"grpo": func(out string) (string, error) {
				items := []data.Item{ex[0].Item, ex[1].Item}
				_, err := b.GRPO(ctx, vqa, out, rm, items, pipeline.GRPOOptions{TrainOptions: o, Group: 4,
					RewardWeight: 0.8, MatchWeight: 0.2, Temperature: 1})
				return vqa, err
			},
		}
		for name, run := range runs {
			out := filepath.Join(t.TempDir(), name)
			base, err := run(out)
			if err != nil {
				t.Fatalf("%s (vision %v): %v", name, vision, err)
			}
			if got := moved(base, out); got != vision {
				t.Errorf("%s with TrainVision %v: vision weights moved = %v", name, vision, got)
			}
		}
	}
}
