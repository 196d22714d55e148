package train

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/models"
)

// TestTrainedParams checks which parameters each objective and freeze
// list trains.
func TestTrainedParams(t *testing.T) {
	arch := tinyArch(40)
	all := DecoderParams(arch, false)
	cases := []struct {
		name    string
		cfg     EngineConfig
		want    int
		without string // a prefix no trained name may start with
		with    string // a name that must be trained
	}{
		{"all", EngineConfig{Objective: SFT, Arch: arch}, len(all), "visual.", "model.embed_tokens.weight"},
		{"empty-prefix-ignored", EngineConfig{Objective: SFT, Arch: arch, Freeze: []string{""}}, len(all), "visual.", "model.norm.weight"},
		{"embed", EngineConfig{Objective: GRPO, Arch: arch, Freeze: []string{"model.embed_tokens."}}, len(all) - 1,
			"model.embed_tokens.", "model.norm.weight"},
		{"reward-head", EngineConfig{Objective: Reward, Arch: arch}, len(DecoderParams(arch, true)), "visual.", "score.weight"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := TrainedParams(tc.cfg)
			if len(got) != tc.want {
				t.Fatalf("%d parameters, want %d", len(got), tc.want)
			}
			for _, p := range got {
				if strings.HasPrefix(p, tc.without) {
					t.Errorf("%s is trained", p)
				}
			}
			if !slices.Contains(got, tc.with) {
				t.Errorf("%s is not trained", tc.with)
			}
		})
	}
}

// TestNewEngineRejectsUnfrozenState checks that a state built without the
// freeze list (a caller that forgot to filter) is refused up front.
func TestNewEngineRejectsUnfrozenState(t *testing.T) {
	arch := tinyArch(40)
	st := randomState(t, arch, false, 1) // trains every decoder parameter
	_, err := NewEngine(openEnv(t), EngineConfig{Objective: SFT, Arch: arch, Freeze: []string{"model.embed_tokens."}}, st)
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
}

// TestNewTrainerFreezes trains a few steps with part of the model frozen
// and checks that the written bundle keeps the frozen weights bit for bit
// and changes the others.
func TestNewTrainerFreezes(t *testing.T) {
	ctx := context.Background()
	src := testBundle(t, tinyArch(0), 3)
	arch := src.Manifest.Architecture
	freeze := []string{"model.embed_tokens.", "model.layers.0.self_attn."}
	tr, err := NewTrainer(openEnv(t), src, EngineConfig{Objective: SFT, Freeze: freeze})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if want := TrainedParams(EngineConfig{Objective: SFT, Arch: arch, Freeze: freeze}); !slices.Equal(tr.State.Params, want) {
		t.Fatalf("state trains %v, want %v", tr.State.Params, want)
	}
	if _, err := Supervised(ctx, tr.Engine, TokensOf(src.Manifest), syntheticRows(8, 16, arch.VocabSize, 1), RunConfig{Steps: 3,
		Schedule: Schedule{LR: 1e-2, Decay: "constant"}, Buckets: Buckets{Batch: 4, Lengths: []int{16}}, Seed: 1,
		OutDir: t.TempDir()}); err != nil {
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
	changed := 0
	for name, w := range before {
		same := slices.Equal(w.F32, after[name].F32)
		if frozen(name, freeze) && !same {
			t.Errorf("frozen %s changed", name)
		}
		if !same {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("no weight changed")
	}
}

// TestNewTrainerErrors checks the constructor's bad-input paths.
func TestNewTrainerErrors(t *testing.T) {
	src := testBundle(t, tinyArch(0), 1)
	env := openEnv(t)
	cases := []struct {
		name string
		src  *models.Bundle
		cfg  EngineConfig
	}{
		{"no-bundle", nil, EngineConfig{Objective: SFT}},
		{"reward-on-vqa-bundle", src, EngineConfig{Objective: Reward}},
		{"all-frozen", src, EngineConfig{Objective: SFT, Freeze: []string{"model.", "lm_head."}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTrainer(env, tc.src, tc.cfg)
			if !errors.Is(err, ErrConfig) {
				_ = tr.Close()
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}
