package models_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// TestKVCacheMatchesFullRecompute decodes 64 steps for a left-padded batch
// of 3 rows of different lengths with the KV cache, and checks at every step
// that the last-position logits equal a full re-run of the whole sequence
// without cache (within 1e-4).
func TestKVCacheMatchesFullRecompute(t *testing.T) {
	steps := 64
	if testing.Short() {
		steps = 8
	}
	b := exportBundle(t, nil, 11)
	cfg := b.Manifest.Architecture
	ctx := context.Background()
	embed := openSession(t, b.EmbedTokensPath(), []string{models.InputIDs}, []string{models.InputsEmbeds})
	ins, outs := decoderNames(cfg, false)
	dec := openSession(t, b.DecoderPath(), ins, outs)
	rng := rand.New(rand.NewPCG(3, 4))
	lengths := []int{5, 9, 3}
	B, P, V := len(lengths), 9, cfg.VocabSize
	ids := randomIDs(rng, B, P, V)
	mask, pos := leftPadded(lengths, P)
	// prefill
	feeds := map[string]*graph.Tensor{models.AttentionMask: mustI64(t, []int64{int64(B), int64(P)}, mask)}
	feeds[models.InputsEmbeds] = embedIDs(t, embed, ids)
	feeds[models.PositionIDs] = mustI64(t, []int64{3, int64(B), int64(P)}, pos)
	addEmptyPast(t, feeds, cfg, B)
	out, err := dec.Run(ctx, feeds)
	if err != nil {
		t.Fatal(err)
	}
	next := make([]int64, B) // next position per row
	for bi, n := range lengths {
		next[bi] = int64(n)
	}
	worst := 0.0
	for step := range steps {
		tok := make([][]int64, B)
		for bi := range tok {
			tok[bi] = []int64{int64(rng.IntN(V))}
			ids[bi] = append(ids[bi], tok[bi][0])
			mask = insertCol(mask, bi, len(ids[0])-1)
		}
		T := len(ids[0])
		stepPos := make([]int64, 3*B)
		for r := range 3 {
			for bi := range B {
				stepPos[r*B+bi] = next[bi]
			}
		}
		cached := map[string]*graph.Tensor{
			models.InputsEmbeds:  embedIDs(t, embed, tok),
			models.AttentionMask: mustI64(t, []int64{int64(B), int64(T)}, mask),
			models.PositionIDs:   mustI64(t, []int64{3, int64(B), 1}, stepPos),
		}
		for i := range cfg.NumLayers {
			keepAll(t, cached)
			cached[models.PastKey(i)] = out[models.PresentKey(i)]
			cached[models.PastValue(i)] = out[models.PresentValue(i)]
		}
		if out, err = dec.Run(ctx, cached); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		full := fullRun(t, dec, embed, cfg, ids, lengths)
		for bi := range B {
			got := out[models.Logits].F32[bi*V : (bi+1)*V]
			want := full.F32[(bi*T+T-1)*V : (bi*T+T)*V]
			d := maxAbsDiff(got, want)
			if d > 1e-4 {
				t.Fatalf("step %d row %d: cached vs full logits differ by %g", step, bi, d)
			}
			worst = max(worst, d)
			next[bi]++
		}
	}
	t.Logf("%d steps: max |cached - full| = %.3g", steps, worst)
}

// insertCol returns the B×T mask grown to B×(T+1) with a 1 in the new
// column; called once per row per step, it grows on row 0.
func insertCol(mask []int64, row, col int) []int64 {
	B := 3
	if row != 0 {
		mask[row*(col+1)+col] = 1
		return mask
	}
	T := col
	grown := make([]int64, B*(T+1))
	for b := range B {
		copy(grown[b*(T+1):], mask[b*T:(b+1)*T])
	}
	grown[col] = 1
	return grown
}

// fullRun recomputes the whole left-padded sequence without cache.
func fullRun(t *testing.T, dec interface {
	Run(context.Context, map[string]*graph.Tensor) (map[string]*graph.Tensor, error)
}, embed interface {
	Run(context.Context, map[string]*graph.Tensor) (map[string]*graph.Tensor, error)
}, cfg models.ArchConfig, ids [][]int64, lengths []int) *graph.Tensor {
	t.Helper()
	B, T := len(ids), len(ids[0])
	grown := make([]int, B)
	for bi, n := range lengths {
		grown[bi] = n + T - 9
	}
	mask, pos := leftPadded(grown, T)
	feeds := map[string]*graph.Tensor{
		models.InputsEmbeds:  embedIDs(t, embed, ids),
		models.AttentionMask: mustI64(t, []int64{int64(B), int64(T)}, mask),
		models.PositionIDs:   mustI64(t, []int64{3, int64(B), int64(T)}, pos),
	}
	addEmptyPast(t, feeds, cfg, B)
	out, err := dec.Run(context.Background(), feeds)
	if err != nil {
		t.Fatal(err)
	}
	return out[models.Logits]
}

func embedIDs(t testing.TB, embed interface {
	Run(context.Context, map[string]*graph.Tensor) (map[string]*graph.Tensor, error)
}, ids [][]int64) *graph.Tensor {
	t.Helper()
	var flat []int64
	for _, row := range ids {
		flat = append(flat, row...)
	}
	out, err := embed.Run(context.Background(), map[string]*graph.Tensor{
		models.InputIDs: mustI64(t, []int64{int64(len(ids)), int64(len(ids[0]))}, flat),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out[models.InputsEmbeds]
}
