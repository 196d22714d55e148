package models_test

import (
	"context"
	"slices"
	"testing"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime/generate"
)

// TestImageFeaturesPerImage checks that running the vision encoder once
// per image (ImageFeatures) gives the logits of the concatenated call.
func TestImageFeaturesPerImage(t *testing.T) {
	v := openVLM(t, exportVLM(t, nil, 5))
	prompts := []models.Prompt{
		chatPrompt(t, v, "Is this a knee?", pixels(t, v, kneeImage)),
		chatPrompt(t, v, "Is there pneumonia in this chest X-ray?", pixels(t, v, chestImage)),
		chatPrompt(t, v, "Text only?", nil),
	}
	ctx := context.Background()
	want, err := v.LastLogits(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := v.ImageFeatures(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.LastLogitsWith(ctx, prompts, f)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(got.Data, want.Data); d > 1e-4 {
		t.Fatalf("per-image features change the logits by %g", d)
	}
	if _, err := v.LastLogitsWith(ctx, prompts[:1], models.Features{}); err == nil {
		t.Fatal("missing features for an image prompt: no error")
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
	got, err := v.GenerateStream(ctx, prompts, opts, nil, func(row int, toks []int) { streamed[row] = append(streamed[row], toks...) })
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if !slices.Equal(got[i].Tokens, want[i].Tokens) || !slices.Equal(streamed[i], got[i].Tokens) {
			t.Errorf("row %d: generate %v, stream result %v, streamed %v", i, want[i].Tokens, got[i].Tokens, streamed[i])
		}
	}
	if _, err := v.GenerateStream(ctx, prompts, opts[:1], nil, nil); err == nil {
		t.Fatal("options for 1 of 2 prompts: no error")
	}
}
