package train

import (
	"context"
	"slices"
	"testing"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/tokenizer"
)

// TestRewardRowsMatchServing checks that the reward model is trained on the
// tokens it is served with: each row equals models.VLM.RewardPrompt's ids
// for the same sample, ending at the answer's <|im_end|>.
func TestRewardRowsMatchServing(t *testing.T) {
	ctx := context.Background()
	src, err := RewardBundle(ctx, testBundle(t, smallArch(), 2), t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	vlm := openVLM(t, src.Dir)
	prep := NewPrep(vlm)
	items := benchmarkItems(t, "test")
	samples, err := GradedSamples(items[:3], 5)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := prep.RewardRows(ctx, samples)
	if err != nil {
		t.Fatal(err)
	}
	imEnd, ok := vlm.Tokenizer().TokenID(tokenizer.ImEnd)
	if !ok {
		t.Fatal("tokenizer has no <|im_end|>")
	}
	for i, s := range samples {
		var req models.RewardRequest
		req.Question, req.Options, req.Response = s.Question, s.Options, s.Answer
		if s.ImagePath != "" {
			im, err := prep.Image(ctx, s.ImagePath)
			if err != nil {
				t.Fatal(err)
			}
			req.Pixels = im.Pixels
		}
		want, err := vlm.RewardPrompt(req)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rows[i].IDs, want.IDs) {
			t.Fatalf("sample %d (%s): trained on %d tokens, served with %d (last %d vs %d)", i, s.Kind,
				len(rows[i].IDs), len(want.IDs), rows[i].IDs[len(rows[i].IDs)-1], want.IDs[len(want.IDs)-1])
		}
		if last := rows[i].IDs[len(rows[i].IDs)-1]; last != imEnd {
			t.Errorf("sample %d ends with token %d, want <|im_end|> %d", i, last, imEnd)
		}
	}
}
