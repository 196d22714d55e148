package models_test

import (
	"context"
	"slices"
	"testing"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime/generate"
)

// TestImageFeaturesSelect checks that features computed once and selected
// per prompt (Features.Select) give the logits of features computed for
// exactly those prompts, and that features that do not match the batch are
// an error, not a silent re-encode.
func TestImageFeaturesSelect(t *testing.T) {
	v := openVLM(t, exportVLM(t, nil, 5))
	prompts := []models.Prompt{
		chatPrompt(t, v, "Is this a knee?", pixels(t, v, kneeImage)),
		chatPrompt(t, v, "Is there pneumonia in this chest X-ray?", pixels(t, v, chestImage)),
		chatPrompt(t, v, "Text only?", nil),
	}
	ctx := context.Background()
	reordered := []models.Prompt{prompts[2], prompts[0]}
	want, err := v.LastLogits(ctx, reordered)
	if err != nil {
		t.Fatal(err)
	}
	f, err := v.ImageFeatures(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.LastLogitsWith(ctx, reordered, f.Select([]int{2, 0}))
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(got.Data, want.Data); d > 1e-4 {
		t.Fatalf("selected features change the logits by %g", d)
	}
	for name, bad := range map[string]models.Features{"none": {}, "another prompt's": f.Select([]int{1})} {
		if _, err := v.LastLogitsWith(ctx, prompts[:1], bad); err == nil {
			t.Errorf("%s features for an image prompt: no error", name)
		}
	}
}

// TestGenerateStream checks the streamed tokens are exactly the results'
// tokens, row by row, and match Generate.
func TestGenerateStream(t *testing.T) {
	v := openVLM(t, exportVLM(t, nil, 6))
	prompts := []models.Prompt{
		chatPrompt(t, v, "Describe the knee.", pixels(t, v, kneeImage)),
		chatPrompt(t, v, "Describe the chest X-ray in a few words.", pixels(t, v, chestImage)),
	}
	opts := []generate.Options{{MaxNewTokens: 9}, {MaxNewTokens: 5, Temperature: 0.8, Seed: 3}}
	ctx := context.Background()
	want, err := v.Generate(ctx, prompts, opts, models.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	streamed := make([][]int, len(prompts))
	f, err := v.ImageFeatures(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.GenerateStream(ctx, prompts, opts, f, func(row int, toks []int) { streamed[row] = append(streamed[row], toks...) })
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if !slices.Equal(got[i].Tokens, want[i].Tokens) || !slices.Equal(streamed[i], got[i].Tokens) {
			t.Errorf("row %d: generate %v, stream result %v, streamed %v", i, want[i].Tokens, got[i].Tokens, streamed[i])
		}
	}
	if _, err := v.GenerateStream(ctx, prompts, opts[:1], f, nil); err == nil {
		t.Fatal("options for 1 of 2 prompts: no error")
	}
}
