package tokenizer

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/dlclark/regexp2"
	sugar "github.com/sugarme/tokenizer"
	sugarbpe "github.com/sugarme/tokenizer/model/bpe"
	sugarpre "github.com/sugarme/tokenizer/pretokenizer"
)

// benchTexts is the medical part of the parity corpus plus chat prompts:
// the serving workload.
func benchTexts(b *testing.B) ([]string, int) {
	b.Helper()
	texts := loadCorpus(b)
	n := 0
	for _, s := range texts {
		n += len(s)
	}
	return texts, n
}

// runEncodeBench encodes every text once per iteration and reports MB/s
// (through SetBytes) and tokens/s.
func runEncodeBench(b *testing.B, encode func(string) (int, error)) {
	texts, n := benchTexts(b)
	for _, s := range texts { // warm the word cache as a serving process would be
		if _, err := encode(s); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(n))
	b.ResetTimer()
	tokens := 0
	for i := 0; i < b.N; i++ {
		for _, s := range texts {
			k, err := encode(s)
			if err != nil {
				b.Fatal(err)
			}
			tokens += k
		}
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkEncodeQwen3 is this package with the hand-written Qwen splitter.
func BenchmarkEncodeQwen3(b *testing.B) {
	tok := loadQwen3(b)
	buf := make([]int, 0, 4096)
	runEncodeBench(b, func(s string) (int, error) {
		ids, err := tok.AppendEncode(buf[:0], s)
		return len(ids), err
	})
}

// BenchmarkEncodeQwen3Regexp2 is the same tokenizer with the pattern run by
// regexp2 instead (the generic path for other look-around patterns).
func BenchmarkEncodeQwen3Regexp2(b *testing.B) {
	requireFile(b, qwen3JSON)
	tok, err := Load(qwen3JSON)
	if err != nil {
		b.Fatal(err)
	}
	p := tok.pipe.(*bpePipeline)
	p.steps[0].sp = regexpSplitter{re: regexp2.MustCompile(QwenPattern, regexp2.Unicode)}
	runEncodeBench(b, func(s string) (int, error) {
		ids, err := tok.Encode(s)
		return len(ids), err
	})
}

// BenchmarkEncodeSugarmeBPE is sugarme/tokenizer's own BPE with the Qwen3
// vocab and merges and its ByteLevel pre-tokenizer (a GPT-2 pattern without
// the look-ahead, which RE2 can compile): the baseline.
func BenchmarkEncodeSugarmeBPE(b *testing.B) {
	requireFile(b, qwen3JSON)
	data, err := os.ReadFile(qwen3JSON)
	if err != nil {
		b.Fatal(err)
	}
	var f struct{ Model bpeJSON }
	if err := json.Unmarshal(data, &f); err != nil {
		b.Fatal(err)
	}
	pairs, err := f.Model.mergePairs()
	if err != nil {
		b.Fatal(err)
	}
	merges := make([]string, len(pairs))
	for i, p := range pairs {
		merges[i] = p[0] + " " + p[1]
	}
	model, err := sugarbpe.New(f.Model.Vocab, merges, nil, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	tk := sugar.NewTokenizer(model)
	pre := sugarpre.NewByteLevel()
	pre.SetAddPrefixSpace(false)
	tk.WithPreTokenizer(pre)
	runEncodeBench(b, func(s string) (int, error) {
		enc, err := tk.EncodeSingle(s, false)
		if err != nil {
			return 0, err
		}
		return len(enc.Ids), nil
	})
}

// BenchmarkLoadQwen3 measures parsing the 11 MB Qwen3 tokenizer.json.
func BenchmarkLoadQwen3(b *testing.B) {
	requireFile(b, qwen3JSON)
	data, err := os.ReadFile(qwen3JSON)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := LoadBytes(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrainBPE trains the default 3000-id tokenizer on the bundled data.
func BenchmarkTrainBPE(b *testing.B) {
	texts := dataCorpus(b)
	for i := 0; i < b.N; i++ {
		if _, err := TrainBPE(b.Context(), texts, TrainOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
