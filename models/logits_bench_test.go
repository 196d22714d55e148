package models

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/medgr2/medgr2/runtime"
)

// BenchmarkLastLogitsOnly runs one prefill of the decoder over a batch of
// long prompts with num_logits_to_keep = 0 (logits for every position, as
// before the input existed) and = 1 (the last position only, what the
// runner feeds), on the same session, so their ratio is the saving. It
// runs the default architecture with the test tokenizer's 1,024 ids and
// with a 32,768-id head (nearer a real model's; Qwen2-VL's has 151,936):
//
//	go test ./models -run '^$' -bench LastLogitsOnly -benchtime 10x
func BenchmarkLastLogitsOnly(b *testing.B) {
	for _, vocab := range []int{0, 32768} {
		b.Run(fmt.Sprintf("vocab=%d", vocab), func(b *testing.B) { benchKeep(b, vocab) })
	}
}

func benchKeep(b *testing.B, vocab int) {
	ctx := context.Background()
	dir := b.TempDir()
	if _, err := Export(ctx, dir, DefaultConfig(vocab), ExportOptions{Tokenizer: "testdata/vqa_tokenizer.json", Seed: 1}); err != nil {
		b.Fatal(err)
	}
	v, err := Open(ctx, dir, VLMOptions{Device: runtime.CPU, IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	const rows, length = 8, 300
	prompts := make([]Prompt, rows)
	for i := range prompts {
		prompts[i].IDs = make([]int, length)
		for k := range prompts[i].IDs {
			prompts[i].IDs[k] = (i*31 + k*7) % 900
		}
	}
	f, err := v.ImageFeatures(ctx, prompts)
	if err != nil {
		b.Fatal(err)
	}
	bt, embeds, err := v.prepare(ctx, prompts, f)
	if err != nil {
		b.Fatal(err)
	}
	for _, keep := range []int64{0, 1} {
		b.Run(fmt.Sprintf("keep=%d", keep), func(b *testing.B) {
			L := length
			if keep == 1 {
				L = 1
			}
			if err := runKeep(ctx, v, bt, embeds, keep, L); err != nil { // warm-up and check
				b.Fatal(err)
			}
			for b.Loop() {
				if err := runKeep(ctx, v, bt, embeds, keep, L); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// runKeep runs the decoder once with num_logits_to_keep = keep, reading
// logits for L positions.
func runKeep(ctx context.Context, v *VLM, bt *batch, embeds floatBuf, keep int64, L int) (err error) {
	ins, err := v.prefillInputs(bt, embeds, bt.mask)
	if err != nil {
		return err
	}
	kt, err := runtime.NewTensor([]int64{1}, []int64{keep})
	if err != nil {
		return errors.Join(err, closeNamed(ins))
	}
	ins = append(ins, runtime.NamedTensor{Name: NumLogitsToKeep, Tensor: kt})
	defer func() { err = errors.Join(err, closeNamed(ins)) }()
	out, err := runtime.NewTensor([]int64{int64(bt.rows), int64(L), int64(v.cfg.VocabSize)}, make([]float32, bt.rows*L*v.cfg.VocabSize))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	return v.decoder.RunInto(ctx, ins, []runtime.NamedTensor{{Name: Logits, Tensor: out}})
}
