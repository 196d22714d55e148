package models_test

import (
	"context"
	"testing"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime/generate"
)

// BenchmarkDecodeDType times greedy decoding with the KV cache for each
// dtype variant of one exported bundle: a prefill of a one-image prompt,
// then 32 tokens; ms/token is the whole call divided by the new tokens.
//
//	go test -run '^$' -bench DecodeDType -benchtime 5x ./models/
func BenchmarkDecodeDType(b *testing.B) {
	const tokens = 32
	ctx := context.Background()
	dir := exportVariants(b, 61, models.DTypeFP16, models.DTypeQ4, models.DTypeQ4F16)
	for _, d := range []models.DType{models.DTypeFP32, models.DTypeFP16, models.DTypeQ4, models.DTypeQ4F16} {
		b.Run(string(d), func(b *testing.B) {
			v := openDType(b, dir, d)
			p := chatPrompt(b, v, "Is this image normal?", pixels(b, v, chestImage))
			opts := []generate.Options{{MaxNewTokens: tokens, Temperature: 0}}
			n := 0
			for b.Loop() {
				res, err := v.Generate(ctx, []models.Prompt{p}, opts, models.GenerateOptions{})
				if err != nil {
					b.Fatal(err)
				}
				n += len(res[0].Tokens)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(n), "ms/token")
		})
	}
}
