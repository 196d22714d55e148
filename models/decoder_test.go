package models_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// runPrefill runs the decoder over full left-padded rows (past length 0) and
// returns the ORT outputs plus the reference inputs.
func runPrefill(t *testing.T, b *models.Bundle, ids [][]int64, lengths []int, reward bool) (map[string]*graph.Tensor, refModel, [][][]float32, [][]int64, [3][][]int64) {
	t.Helper()
	cfg := b.Manifest.Architecture
	ref := refModel{cfg: cfg, w: readWeights(t, b)}
	B, T, H := len(ids), len(ids[0]), cfg.HiddenSize
	maskFlat, posFlat := leftPadded(lengths, T)
	embeds := make([][][]float32, B)
	mask := make([][]int64, B)
	var pos [3][][]int64
	flat := make([]float32, 0, B*T*H)
	for bi := range B {
		mask[bi] = maskFlat[bi*T : (bi+1)*T]
		for s := range T {
			e := ref.embed(ids[bi][s])
			embeds[bi] = append(embeds[bi], e)
			flat = append(flat, e...)
		}
	}
	for r := range 3 {
		for bi := range B {
			pos[r] = append(pos[r], posFlat[r*B*T+bi*T:r*B*T+(bi+1)*T])
		}
	}
	ins, outs := decoderNames(cfg, reward)
	s := openSession(t, b.DecoderPath(), ins, outs)
	feeds := map[string]*graph.Tensor{
		models.InputsEmbeds:  mustF32(t, []int64{int64(B), int64(T), int64(H)}, flat),
		models.AttentionMask: mustI64(t, []int64{int64(B), int64(T)}, maskFlat),
		models.PositionIDs:   mustI64(t, []int64{3, int64(B), int64(T)}, posFlat),
	}
	addEmptyPast(t, feeds, cfg, B)
	res, err := s.Run(context.Background(), feeds)
	if err != nil {
		t.Fatal(err)
	}
	return res, ref, embeds, mask, pos
}

func addEmptyPast(t testing.TB, feeds map[string]*graph.Tensor, cfg models.ArchConfig, B int) {
	dims := []int64{int64(B), int64(cfg.NumKVHeads), 0, int64(cfg.HeadDim())}
	for i := range cfg.NumLayers {
		feeds[models.PastKey(i)] = mustF32(t, dims, nil)
		feeds[models.PastValue(i)] = mustF32(t, dims, nil)
	}
	keepAll(t, feeds)
}

// keepAll feeds num_logits_to_keep = 0: logits for every position (the
// graphtest session ignores an input a reward graph does not declare).
func keepAll(t testing.TB, feeds map[string]*graph.Tensor) {
	feeds[models.NumLogitsToKeep] = mustI64(t, []int64{1}, []int64{0})
}

func randomIDs(rng *rand.Rand, B, T, vocab int) [][]int64 {
	ids := make([][]int64, B)
	for b := range ids {
		for range T {
			ids[b] = append(ids[b], int64(rng.IntN(vocab)))
		}
	}
	return ids
}

// TestDecoderMatchesReference compares ORT's logits with the plain-loop Go
// reference on a random bundle, left-padded batch, within 1e-4.
func TestDecoderMatchesReference(t *testing.T) {
	tests := []struct {
		name    string
		lengths []int
		T       int
	}{
		{"single", []int{6}, 6},
		{"padded-batch", []int{7, 3, 5}, 7},
	}
	b := exportBundle(t, nil, 7)
	cfg := b.Manifest.Architecture
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			ids := randomIDs(rng, len(tc.lengths), tc.T, cfg.VocabSize)
			res, ref, embeds, mask, pos := runPrefill(t, b, ids, tc.lengths, false)
			hidden := ref.decode(embeds, mask, pos)
			got := res[models.Logits]
			V := cfg.VocabSize
			if want := []int64{int64(len(ids)), int64(tc.T), int64(V)}; !graph.Dims(got.Dims...).Equal(graph.Dims(want...)) {
				t.Fatalf("logits shape %v, want %v", got.Dims, want)
			}
			worst := 0.0
			for bi := range ids {
				for s := tc.T - tc.lengths[bi]; s < tc.T; s++ {
					off := (bi*tc.T + s) * V
					d := maxAbsDiff(got.F32[off:off+V], ref.logits(hidden[bi][s]))
					if d > 1e-4 {
						t.Fatalf("row %d pos %d: max |ORT - reference| = %g > 1e-4", bi, s, d)
					}
					worst = max(worst, d)
				}
			}
			t.Logf("max |ORT - reference| over real tokens = %.3g", worst)
		})
	}
}
