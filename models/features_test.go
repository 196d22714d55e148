package models

import (
	"context"
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
)

// TestImageFeaturesEqualConcatenated checks that ImageFeatures, which runs
// the vision encoder once per image, returns what one concatenated call
// over all images returns (the encoder attends within each image only),
// prompt by prompt and with a text-only prompt between.
func TestImageFeaturesEqualConcatenated(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := DefaultConfig(0)
	cfg.InitStd = 0.2
	if _, err := Export(ctx, dir, cfg, ExportOptions{Tokenizer: "testdata/vqa_tokenizer.json", Seed: 4}); err != nil {
		t.Fatal(err)
	}
	v, err := Open(ctx, dir, VLMOptions{Device: runtime.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var pxs []*preprocessing.Pixels
	for i, size := range []image.Point{{56, 56}, {84, 56}, {56, 112}} {
		img := image.NewGray(image.Rect(0, 0, size.X, size.Y))
		for k := range img.Pix {
			img.Pix[k] = uint8(k*(i+3) + i*17)
		}
		img.Set(0, 0, color.Gray{Y: 255})
		px, err := v.ProcessImage(img)
		if err != nil {
			t.Fatal(err)
		}
		pxs = append(pxs, px)
	}
	prompts := []Prompt{{Images: pxs[:1]}, {}, {Images: pxs[1:]}}
	f, err := v.ImageFeatures(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := v.encodeImages(ctx, pxs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.flat(len(prompts))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(f.rows[1]) != 0 {
		t.Fatalf("%d feature values, concatenated call %d; text-only prompt has %d", len(got), len(want), len(f.rows[1]))
	}
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
	}
	if worst > 1e-4 {
		t.Fatalf("per-image features differ from the concatenated call by %g", worst)
	}
	if _, err := f.flat(2); err == nil {
		t.Fatal("features of 3 prompts accepted for a batch of 2")
	}
}
