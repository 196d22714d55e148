package models_test

import (
	"context"
	"fmt"
	"os"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
)

// ExampleVLM_Answer opens a random bundle and scores the options of a
// text-only question from one forward pass (the fast mode).
func ExampleVLM_Answer() {
	dir, err := os.MkdirTemp("", "vlm")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	if _, err := models.Export(ctx, dir, models.DefaultConfig(0), models.ExportOptions{Tokenizer: "testdata/vqa_tokenizer.json", Seed: 1}); err != nil {
		fmt.Println(err)
		return
	}
	v, err := models.Open(ctx, dir, models.VLMOptions{Device: runtime.CPU})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()
	ans, err := v.Answer(ctx, []models.VQARequest{{Question: "Which imaging modality is used?", Options: []string{"CT", "MRI", "X-ray"}}}, models.ReasonOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	sum := 0.0
	for _, p := range ans[0].Probs {
		sum += p
	}
	fmt.Printf("%d options, probabilities sum to %.3f\n", len(ans[0].Probs), sum)
	// Output: 3 options, probabilities sum to 1.000
}
