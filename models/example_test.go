package models_test

import (
	"context"
	"fmt"
	"os"

	"github.com/medgr2/medgr2/models"
)

// Example exports a random bundle of the default architecture and loads it
// back.
func Example() {
	dir, err := os.MkdirTemp("", "bundle")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	if _, err := models.Export(ctx, dir, models.DefaultConfig(0), models.ExportOptions{Tokenizer: "testdata/tokenizer.json", Seed: 1}); err != nil {
		fmt.Println(err)
		return
	}
	b, err := models.Load(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	a := b.Manifest.Architecture
	fmt.Println(b.Manifest.Name, a.VocabSize, a.HiddenSize, a.NumLayers, b.Manifest.Files.Decoder)
	// Output: medgr2-tiny 256 128 4 onnx/decoder_model_merged.onnx
}
