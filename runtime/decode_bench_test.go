package runtime_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/runtime/generate"
	"github.com/medgr2/medgr2/tokenizer"
)

// The decode benchmarks run a random bundle of the default architecture
// (models.DefaultConfig with the 1024-id test tokenizer) on the CPU with
// ORT's default threads. Compare the sub-benchmarks' ms/token:
//
//	go test ./runtime -run '^$' -bench 'Decode' -benchtime 3x
//
// BenchmarkDecode128: KV-cache decode vs a full re-run per token, 128
// greedy tokens after a text prompt (goal ≥ 5× faster).
// BenchmarkDecodeBatch: one batch of 8 rows vs 8 batch-1 runs, 64 tokens
// each (goal ≥ 3× the throughput).

// benchVLM exports and opens the bundle once per benchmark.
func benchVLM(b *testing.B) *models.VLM {
	b.Helper()
	dir := b.TempDir()
	tok := filepath.Join("..", "models", "testdata", "vqa_tokenizer.json")
	if _, err := models.Export(context.Background(), dir, models.DefaultConfig(0),
		models.ExportOptions{Tokenizer: tok, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	v, err := models.Open(context.Background(), dir, models.VLMOptions{Device: runtime.CPU, IntraOpThreads: 1})
	if err != nil {
		b.Fatalf("open bundle (ONNX Runtime is required): %v", err)
	}
	b.Cleanup(func() { v.Close() })
	return v
}

// benchPrompts returns n text prompts of different lengths.
func benchPrompts(b *testing.B, v *models.VLM, n int) []models.Prompt {
	b.Helper()
	out := make([]models.Prompt, n)
	for i := range out {
		q := fmt.Sprintf("Question %d: which imaging modality shows this lesion in the left lung?", i)
		for range i % 3 {
			q += " Consider the image carefully."
		}
		enc, err := v.Tokenizer().EncodePrompt(tokenizer.VQAPrompt{Question: q, Options: []string{"CT", "MRI", "X-ray", "ultrasound"}})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = models.Prompt{IDs: enc.IDs}
	}
	return out
}

// greedy returns n options decoding exactly tokens tokens (no stop token).
func greedy(n, tokens int) []generate.Options {
	o := make([]generate.Options, n)
	for i := range o {
		o[i] = generate.Options{MaxNewTokens: tokens}
	}
	return o
}

// runGenerate generates and reports ms per generated token.
func runGenerate(b *testing.B, v *models.VLM, batches [][]models.Prompt, tokens int, g models.GenerateOptions) {
	b.ReportAllocs()
	ctx := context.Background()
	var total time.Duration
	generated := 0
	for b.Loop() {
		start := time.Now()
		for _, ps := range batches {
			res, err := v.Generate(ctx, ps, greedy(len(ps), tokens), g)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				generated += len(r.Tokens)
			}
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total)/1e6/float64(generated), "ms/token")
	b.ReportMetric(float64(generated)/total.Seconds(), "tokens/s")
}

func BenchmarkDecode128(b *testing.B) {
	v := benchVLM(b)
	ps := [][]models.Prompt{benchPrompts(b, v, 1)}
	b.Run("kv-cache", func(b *testing.B) { runGenerate(b, v, ps, 128, models.GenerateOptions{}) })
	b.Run("full-rerun", func(b *testing.B) { runGenerate(b, v, ps, 128, models.GenerateOptions{NoKVCache: true}) })
}

func BenchmarkDecodeBatch(b *testing.B) {
	v := benchVLM(b)
	ps := benchPrompts(b, v, 8)
	singles := make([][]models.Prompt, len(ps))
	for i, p := range ps {
		singles[i] = []models.Prompt{p}
	}
	b.Run("batch-8", func(b *testing.B) { runGenerate(b, v, [][]models.Prompt{ps}, 64, models.GenerateOptions{}) })
	b.Run("8x-batch-1", func(b *testing.B) { runGenerate(b, v, singles, 64, models.GenerateOptions{}) })
}
