package models_test

import (
	"context"
	"math"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/graph/graphtest"
	"github.com/medgr2/medgr2/models"
)

const testTokenizer = "testdata/tokenizer.json"

// exportBundle writes a random bundle of the default architecture (vocab
// from the test tokenizer) into a temporary folder.
func exportBundle(t testing.TB, roles []models.Role, seed uint64) *models.Bundle {
	t.Helper()
	cfg := models.DefaultConfig(0)
	cfg.InitStd = 0.2 // larger than training's 0.02 so attention is far from uniform
	b, err := models.Export(context.Background(), t.TempDir(), cfg,
		models.ExportOptions{Tokenizer: testTokenizer, Roles: roles, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readWeights(t testing.TB, b *models.Bundle) map[string]*graph.Tensor {
	t.Helper()
	w, _, err := graph.ReadWeights(b.WeightsPath())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// decoderNames returns the decoder's input and output names.
func decoderNames(cfg models.ArchConfig, reward bool) (ins, outs []string) {
	ins = []string{models.InputsEmbeds, models.AttentionMask, models.PositionIDs}
	head := models.Logits
	if reward {
		head = models.Scores
	} else {
		ins = append(ins, models.NumLogitsToKeep)
	}
	outs = []string{head}
	for i := range cfg.NumLayers {
		ins = append(ins, models.PastKey(i), models.PastValue(i))
		outs = append(outs, models.PresentKey(i), models.PresentValue(i))
	}
	return ins, outs
}

func openSession(t testing.TB, path string, ins, outs []string) *graphtest.Session {
	t.Helper()
	s, err := graphtest.Open(context.Background(), path, ins, outs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func mustF32(t testing.TB, dims []int64, data []float32) *graph.Tensor {
	t.Helper()
	x, err := graph.NewFloat32(dims, data)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func mustI64(t testing.TB, dims []int64, data []int64) *graph.Tensor {
	t.Helper()
	x, err := graph.NewInt64(dims, data)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// maxAbsDiff returns the largest |a[i]-b[i]|, or +Inf when lengths differ.
func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// leftPadded returns attention_mask [B, T] and text position_ids [3, B, T]
// for rows of the given lengths, left-padded to T (HF style: positions
// count real tokens from 0, pads get 1).
func leftPadded(lengths []int, T int) (mask []int64, pos []int64) {
	B := len(lengths)
	mask = make([]int64, B*T)
	pos = make([]int64, 3*B*T)
	for b, n := range lengths {
		for s := range T {
			p := int64(1)
			if s >= T-n {
				mask[b*T+s] = 1
				p = int64(s - (T - n))
			}
			for r := range 3 {
				pos[r*B*T+b*T+s] = p
			}
		}
	}
	return mask, pos
}
