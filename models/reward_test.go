package models_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// TestRewardScoresAtLastRealToken checks the reward decoder's scores [B]
// against the reference read at each row's last real token, and that a
// row scores the same left-padded, right-padded and alone.
func TestRewardScoresAtLastRealToken(t *testing.T) {
	b := exportBundle(t, []models.Role{models.RoleReward}, 21)
	cfg := b.Manifest.Architecture
	rng := rand.New(rand.NewPCG(5, 6))
	lengths := []int{6, 2, 4}
	ids := randomIDs(rng, len(lengths), 6, cfg.VocabSize)
	res, ref, embeds, mask, pos := runPrefill(t, b, ids, lengths, true)
	hidden := ref.decode(embeds, mask, pos)
	got := res[models.Scores]
	if len(got.Dims) != 1 || got.Dims[0] != 3 {
		t.Fatalf("scores shape %v, want [3]", got.Dims)
	}
	for bi := range lengths {
		want := ref.linear(hidden[bi][5], "score.weight", "score.bias")[0]
		if d := maxAbsDiff(got.F32[bi:bi+1], []float32{want}); d > 1e-4 {
			t.Fatalf("row %d: score %g, reference %g", bi, got.F32[bi], want)
		}
	}
	// right padding: row 1's two real tokens first, then pads
	rowIDs := ids[1][4:]
	right := scoreRightPadded(t, b, ref, rowIDs, 6)
	if d := maxAbsDiff([]float32{right}, got.F32[1:2]); d > 1e-4 {
		t.Fatalf("right-padded score %g, left-padded %g", right, got.F32[1])
	}
}

func scoreRightPadded(t *testing.T, b *models.Bundle, ref refModel, ids []int64, T int) float32 {
	t.Helper()
	cfg := b.Manifest.Architecture
	H := cfg.HiddenSize
	mask := make([]int64, T)
	pos := make([]int64, 3*T)
	var flat []float32
	for s := range T {
		id := int64(0)
		if s < len(ids) {
			id, mask[s] = ids[s], 1
		}
		flat = append(flat, ref.embed(id)...)
		for r := range 3 {
			pos[r*T+s] = int64(s)
		}
	}
	ins, outs := decoderNames(cfg, true)
	s := openSession(t, b.DecoderPath(), ins, outs)
	feeds := map[string]*graph.Tensor{
		models.InputsEmbeds:  mustF32(t, []int64{1, int64(T), int64(H)}, flat),
		models.AttentionMask: mustI64(t, []int64{1, int64(T)}, mask),
		models.PositionIDs:   mustI64(t, []int64{3, 1, int64(T)}, pos),
	}
	addEmptyPast(t, feeds, cfg, 1)
	out, err := s.Run(context.Background(), feeds)
	if err != nil {
		t.Fatal(err)
	}
	return out[models.Scores].F32[0]
}

func TestRewardResponse(t *testing.T) {
	opts := []string{"normal", "benign", "malignant"}
	for _, tt := range []struct{ name, in, want string }{
		{"letter", "<think>It is benign.</think><answer>B</answer>", "<think>It is benign.</think><answer>B. benign</answer>"},
		{"spaces", "<think>x</think><answer> C </answer>", "<think>x</think><answer>C. malignant</answer>"},
		{"letter past the options", "<think>x</think><answer>D</answer>", "<think>x</think><answer>D</answer>"},
		{"lower case", "<think>x</think><answer>b</answer>", "<think>x</think><answer>b</answer>"},
		{"not a letter", "<think>x</think><answer>benign</answer>", "<think>x</think><answer>benign</answer>"},
		{"no answer", "benign answer B so", "benign answer B so"},
		{"unclosed", "<answer>B", "<answer>B"},
		{"two answers", "<answer>A</answer><answer>B</answer>", "<answer>A</answer><answer>B</answer>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := models.RewardResponse(opts, tt.in); got != tt.want {
				t.Errorf("RewardResponse(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
