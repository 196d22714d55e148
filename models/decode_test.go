package models_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime/generate"
)

// logitsTol is the invariance tolerance (STYLE #11): a row's logits alone
// or in a batch, with or without the KV cache, agree within it. Observed
// differences are float32 reordering noise, around 1e-6.
const logitsTol = 1e-4

// recorder wraps a generate.Session and keeps a copy of every step's logits.
type recorder struct {
	s     generate.Session
	steps [][]float32
}

func (r *recorder) Next(ctx context.Context, tokens []int) (generate.Logits, error) {
	l, err := r.s.Next(ctx, tokens)
	if err == nil {
		r.steps = append(r.steps, slices.Clone(l.Data))
	}
	return l, err
}

// generateRecorded runs greedy generation with the KV cache for n tokens
// per row (no stop tokens) and returns the results and the logits before
// each generated token: steps[k] is the batch's logits before token k.
func generateRecorded(t *testing.T, v *models.VLM, prompts []models.Prompt, n int) ([]generate.Result, [][]float32) {
	t.Helper()
	ctx := context.Background()
	first, d, err := v.Prefill(ctx, prompts, n)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rec := &recorder{s: d, steps: [][]float32{slices.Clone(first.Data)}}
	opts := make([]generate.Options, len(prompts))
	for i := range opts {
		opts[i] = generate.Options{MaxNewTokens: n}
	}
	res, err := generate.Run(ctx, rec, first, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res, rec.steps
}

// testPrompts returns three rows of different lengths: a knee X-ray, a
// text-only question and a small chest X-ray.
func testPrompts(t *testing.T, v *models.VLM) []models.Prompt {
	return []models.Prompt{
		chatPrompt(t, v, "What grade of osteoarthritis does this knee show?", pixels(t, v, kneeImage)),
		chatPrompt(t, v, "Is this normal?", nil),
		chatPrompt(t, v, "Which finding is visible in this chest x-ray image?", pixels(t, v, chestImage)),
	}
}

// TestKVCacheMatchesFullRerun decodes a batch of three prompts of different
// lengths for 64 steps with the KV cache and checks every step's logits
// against a full re-run of the left-padded sequences without a cache.
func TestKVCacheMatchesFullRerun(t *testing.T) {
	v := openVLM(t, exportVLM(t, nil, 7))
	prompts := testPrompts(t, v)
	steps := 64
	if testing.Short() {
		steps = 16
	}
	res, cached := generateRecorded(t, v, prompts, steps)
	if len(cached) != steps {
		t.Fatalf("recorded %d steps, want %d", len(cached), steps)
	}
	grown := slices.Clone(prompts)
	worst := 0.0
	for k := range steps {
		full, err := v.LastLogits(context.Background(), grown)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(full.Data, cached[k]); d > logitsTol {
			t.Fatalf("step %d: KV-cache logits differ from a full re-run by %g (tolerance %g)", k, d, logitsTol)
		} else {
			worst = max(worst, d)
		}
		for i := range grown {
			grown[i].IDs = append(slices.Clone(grown[i].IDs), res[i].Tokens[k])
		}
	}
	t.Logf("%d steps, batch %d: largest |cached - re-run| logit difference %.3g", steps, len(prompts), worst)
}

// TestRowAloneOrInBatch checks that each row gives the same logits and
// tokens alone and inside a left-padded batch, with the cache.
func TestRowAloneOrInBatch(t *testing.T) {
	v := openVLM(t, exportVLM(t, nil, 8))
	prompts := testPrompts(t, v)
	const n = 12
	batchRes, batchSteps := generateRecorded(t, v, prompts, n)
	vocab := v.Manifest().Architecture.VocabSize
	for i, p := range prompts {
		alone, aloneSteps := generateRecorded(t, v, []models.Prompt{p}, n)
		if !slices.Equal(alone[0].Tokens, batchRes[i].Tokens) {
			t.Errorf("row %d: tokens alone %v, in batch %v", i, alone[0].Tokens, batchRes[i].Tokens)
		}
		for k := range n {
			row := batchSteps[k][i*vocab : (i+1)*vocab]
			if d := maxDiff(aloneSteps[k], row); d > logitsTol {
				t.Fatalf("row %d step %d: logits alone and in batch differ by %g", i, k, d)
			}
		}
	}
}

// TestGenerateNoCacheEqualsCache compares whole generations, sampled with
// seeds, through Generate with and without the KV cache.
func TestGenerateNoCacheEqualsCache(t *testing.T) {
	v := openVLM(t, exportVLM(t, nil, 9))
	prompts := testPrompts(t, v)[1:]
	opts := []generate.Options{
		{MaxNewTokens: 10, Temperature: 0.8, TopK: 50, TopP: 0.95, Seed: 1},
		{MaxNewTokens: 6, Temperature: 1.2, Seed: 2},
	}
	ctx := context.Background()
	withCache, err := v.Generate(ctx, prompts, opts, models.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	noCache, err := v.Generate(ctx, prompts, opts, models.GenerateOptions{NoKVCache: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if !slices.Equal(withCache[i].Tokens, noCache[i].Tokens) {
			t.Errorf("row %d: tokens with cache %v, without %v", i, withCache[i].Tokens, noCache[i].Tokens)
		}
		if d := maxDiff(withCache[i].LogProbs, noCache[i].LogProbs); d > logitsTol {
			t.Errorf("row %d: log-probs differ by %g", i, d)
		}
		if len(withCache[i].Tokens) != opts[i].MaxNewTokens || len(withCache[i].LogProbs) != len(withCache[i].Tokens) {
			t.Errorf("row %d: %d tokens, %d log-probs; want %d", i, len(withCache[i].Tokens), len(withCache[i].LogProbs), opts[i].MaxNewTokens)
		}
	}
}

// TestDecoderErrors covers bad input to Prefill and Next.
func TestDecoderErrors(t *testing.T) {
	v := openVLM(t, exportVLM(t, nil, 10))
	ctx := context.Background()
	img := pixels(t, v, chestImage)
	good := chatPrompt(t, v, "Is this normal?", nil)
	withImg := chatPrompt(t, v, "Is this normal?", img)
	cases := []struct {
		name    string
		prompts []models.Prompt
		want    error
	}{
		{"empty batch", nil, models.ErrBadRequest},
		{"empty row", []models.Prompt{{}}, models.ErrBadRequest},
		{"id outside vocab", []models.Prompt{{IDs: []int{1, 99999}}}, models.ErrBadRequest},
		{"image without pads", []models.Prompt{{IDs: good.IDs, Images: withImg.Images}}, models.ErrImageTokens},
		{"pads without image", []models.Prompt{{IDs: withImg.IDs}}, models.ErrImageTokens},
		{"nil image", []models.Prompt{{IDs: withImg.IDs, Images: []*preprocessing.Pixels{nil}}}, models.ErrBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, d, err := v.Prefill(ctx, c.prompts, 4)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if d != nil {
				t.Error("a Decoder was returned with an error")
			}
		})
	}
	_, d, err := v.Prefill(ctx, []models.Prompt{good, good}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Next(ctx, []int{1}); !errors.Is(err, models.ErrBadRequest) {
		t.Errorf("wrong row count: %v", err)
	}
	if _, err := d.Next(ctx, []int{1, -3}); !errors.Is(err, models.ErrBadRequest) {
		t.Errorf("negative token: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Next(ctx, []int{1, 1}); !errors.Is(err, models.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
