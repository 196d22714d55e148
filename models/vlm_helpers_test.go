package models_test

import (
	"context"
	"math"
	"testing"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/tokenizer"
)

// vqaTokenizer is a byte-level BPE tokenizer (1024 ids, Qwen2-VL chat and
// MedGR² answer tokens) trained with `medgr2 tokenize train --vocab 1024`
// on ../shared/data/omnimedvqa-text and omnimedvqa-real.
const vqaTokenizer = "testdata/vqa_tokenizer.json"

// Real images from ../shared/data (see its README).
const (
	kneeImage  = "../../shared/data/omnimedvqa-real/images/knee/val/3/9246518R.png"
	kneeImage2 = "../../shared/data/omnimedvqa-real/images/knee/val/3/9928272R.png"
	chestImage = "../../shared/data/pneumoniamnist/test/pneumoniamnist_test_00001.png"
)

// exportVLM writes a random bundle of the default architecture into a
// temporary folder. Weights use a larger init than training so logits and
// attention are far from uniform.
func exportVLM(t testing.TB, roles []models.Role, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	cfg := models.DefaultConfig(0)
	cfg.InitStd = 0.2
	if _, err := models.Export(context.Background(), dir, cfg,
		models.ExportOptions{Tokenizer: vqaTokenizer, Roles: roles, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openVLM opens dir on the CPU and fails loudly when ORT is missing.
func openVLM(t testing.TB, dir string) *models.VLM {
	t.Helper()
	v, err := models.Open(context.Background(), dir, models.VLMOptions{Device: runtime.CPU})
	if err != nil {
		t.Fatalf("open bundle (ONNX Runtime is required): %v", err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	})
	return v
}

// pixels decodes and processes a real image for v.
func pixels(t testing.TB, v *models.VLM, path string) *preprocessing.Pixels {
	t.Helper()
	img, _, err := preprocessing.DecodeFile(path, preprocessing.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.ImageConfig().Process(img)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// chatPrompt encodes a VQA chat prompt with the image's pad tokens.
func chatPrompt(t testing.TB, v *models.VLM, question string, img *preprocessing.Pixels) models.Prompt {
	t.Helper()
	p := tokenizer.VQAPrompt{Question: question, Options: []string{"normal", "pneumonia"}}
	var imgs []*preprocessing.Pixels
	if img != nil {
		p.ImageTokens = img.ImageTokens()
		imgs = append(imgs, img)
	}
	enc, err := v.Tokenizer().EncodePrompt(p)
	if err != nil {
		t.Fatal(err)
	}
	return models.Prompt{IDs: enc.IDs, Images: imgs}
}

// maxDiff returns the largest |a[i]-b[i]|, or +Inf when lengths differ.
func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}
