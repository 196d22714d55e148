package models_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/draw"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime/generate"
	"github.com/medgr2/medgr2/tokenizer"
)

// The transformers.js reference (scripts/fetch-fixtures.sh installs it).
const (
	vlmScript       = "../scripts/tokenizer-parity/vlm.cjs"
	transformersPkg = "../third_party/tokenizer-parity/node_modules/@huggingface/transformers/package.json"
	defaultVQA      = "default/vqa"
	smearJPEG       = "../../shared/data/bccd/images/BloodImage_00000.jpg"
	chestDICOM      = "../preprocessing/testdata/cr_chest_monochrome1.dcm"
	parityTokens    = 16
)

// jsRequest and jsResult are vlm.cjs's wire format.
type jsRequest struct {
	ImagePath    string    `json:"image_path,omitempty"`
	Suffix       string    `json:"assistant_suffix,omitempty"`
	System       string    `json:"system"`
	Question     string    `json:"question"`
	ImageTokens  int       `json:"image_tokens"`
	PixelValues  []float32 `json:"pixel_values,omitempty"`
	Patches      int       `json:"patches"`
	ImageGridTHW []int64   `json:"image_grid_thw,omitempty"`
	MaxNewTokens int       `json:"max_new_tokens"`
}

type jsResult struct {
	PromptIDs   []int     `json:"prompt_ids"`
	FirstLogits []float32 `json:"first_logits"`
	Tokens      []int     `json:"tokens"`
	ImageTokens int       `json:"image_tokens"`
}

// TestTransformersJSParity loads bundles exactly as medgr2 writes them in
// Hugging Face transformers.js (Qwen2VLForConditionalGeneration, no added
// file) and checks, on real images (PNG, JPEG, DICOM) with identical
// pixel_values: the folder's chat template gives medgr2's prompt ids, the
// first-step logits agree within 1e-4 (fp32; 2e-2 for the fp16 and q4f16
// variants, both sides running the same float16 graphs), and greedy
// decoding gives the same 16 tokens. It runs on the committed default VQA
// bundle and on a freshly exported one with its fp16 and q4f16 variants
// (transformers.js's dtype option).
func TestTransformersJSParity(t *testing.T) {
	for _, path := range []string{vlmScript, transformersPkg} {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("fixture %s missing (run `make fixtures`): %v", path, err)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required for the transformers.js parity test: %v", err)
	}
	fresh := exportVariants(t, 21, models.DTypeFP16, models.DTypeQ4F16)
	cases := []struct {
		name, dir string
		dtype     models.DType
		tol       float64
	}{
		{"default vqa", defaultVQA, models.DTypeFP32, 1e-4}, {"fresh export", fresh, models.DTypeFP32, 1e-4},
		{"fresh export fp16", fresh, models.DTypeFP16, 2e-2}, {"fresh export q4f16", fresh, models.DTypeQ4F16, 2e-2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := openDType(t, c.dir, c.dtype)
			images := []string{chestImage, smearJPEG, chestDICOM}
			var reqs []jsRequest
			var prompts []models.Prompt
			for _, img := range images {
				px := pixels(t, v, img)
				p := tokenizer.VQAPrompt{System: v.Manifest().Prompt.System, Question: "Which imaging modality is shown?",
					Options: []string{"CT", "X-ray", "Microscopy", "MRI"}, ImageTokens: px.ImageTokens()}
				enc, err := v.Tokenizer().EncodePrompt(p)
				if err != nil {
					t.Fatal(err)
				}
				prompts = append(prompts, models.Prompt{IDs: enc.IDs, Images: []*preprocessing.Pixels{px}})
				reqs = append(reqs, jsRequest{System: p.System, Question: p.UserText(), ImageTokens: p.ImageTokens,
					PixelValues: px.Values, Patches: px.NumPatches, ImageGridTHW: px.GridTHW[:], MaxNewTokens: parityTokens})
			}
			ref := runVLMReference(t, c.dir, c.dtype, reqs)
			ctx := context.Background()
			for i, p := range prompts {
				r := ref[i]
				if !slices.Equal(r.PromptIDs, p.IDs) {
					t.Errorf("%s: chat template ids differ:\n  transformers.js %v\n  medgr2          %v", images[i], r.PromptIDs, p.IDs)
					continue
				}
				logits, err := v.LastLogits(ctx, []models.Prompt{p})
				if err != nil {
					t.Fatal(err)
				}
				d := maxDiff(logits.Row(0), r.FirstLogits)
				if d > c.tol || len(r.FirstLogits) != len(logits.Row(0)) {
					t.Errorf("%s: first-step logits differ by %g (%d vs %d values)", images[i], d, len(r.FirstLogits), len(logits.Row(0)))
				}
				res, err := v.Generate(ctx, []models.Prompt{p}, []generate.Options{{MaxNewTokens: parityTokens,
					StopTokens: v.Manifest().SpecialTokens.EOS}}, models.GenerateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(res[0].Tokens, r.Tokens) {
					t.Errorf("%s: greedy tokens differ:\n  transformers.js %v\n  medgr2          %v", images[i], r.Tokens, res[0].Tokens)
				}
				t.Logf("%s: %d prompt ids (%d image tokens), first-step logits within %.2g, %d greedy tokens equal",
					images[i], len(p.IDs), p.Images[0].ImageTokens(), d, len(r.Tokens))
			}
		})
	}
}

// runVLMReference runs reqs through vlm.cjs on the bundle in dir.
func runVLMReference(t *testing.T, dir string, dtype models.DType, reqs []jsRequest) []jsResult {
	t.Helper()
	in, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", vlmScript, dir, string(dtype))
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("transformers.js on %s: %v\n%s", dir, err, stderr.String())
	}
	var out []jsResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != len(reqs) {
		t.Fatalf("transformers.js output: %v (%d results for %d requests)", err, len(out), len(reqs))
	}
	return out
}

// renderPNG writes the DICOM at path as an 8-bit RGB PNG (medgr2's own
// rendering) so transformers.js, which reads no DICOM, sees the same
// picture (sharp and Go read 16-bit grey PNGs differently).
func renderPNG(t *testing.T, path string) string {
	t.Helper()
	img, _, err := preprocessing.DecodeFile(path, preprocessing.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "dicom.png")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rgb := image.NewRGBA(img.Bounds())
	draw.Draw(rgb, rgb.Bounds(), img, img.Bounds().Min, draw.Src)
	if err := png.Encode(f, rgb); err != nil {
		t.Fatal(err)
	}
	return out
}

// defaultWithVariants writes the committed default VQA bundle again into a
// temporary folder with the given dtype variants (export --from … --dtype).
func defaultWithVariants(t *testing.T, dtypes ...models.DType) string {
	t.Helper()
	ctx := context.Background()
	src, err := models.Load(ctx, defaultVQA)
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := graph.ReadWeights(src.WeightsPath())
	if err != nil {
		t.Fatal(err)
	}
	b, err := models.Rewrite(ctx, src, t.TempDir(), ws)
	if err != nil {
		t.Fatal(err)
	}
	if err := models.WriteVariants(ctx, b, dtypes); err != nil {
		t.Fatal(err)
	}
	return b.Dir
}

// TestTransformersJSOwnPreprocessing: with each side preprocessing the
// image itself (transformers.js resizes with sharp, medgr2 with its own
// Pillow-like resize), the VQA fast path picks the same answer letter, for
// fp32 and fp16, on a PNG, a JPEG and a DICOM rendered to PNG, with the
// committed default VQA bundle (trained weights; a random-weight model
// flips letters on resize differences). The option probabilities are
// logged, not bounded: the pixels differ.
func TestTransformersJSOwnPreprocessing(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required for the transformers.js parity test: %v", err)
	}
	dir := defaultWithVariants(t, models.DTypeFP16)
	images := []string{chestImage, smearJPEG, renderPNG(t, chestDICOM)}
	options := []string{"CT", "X-ray", "Microscopy", "MRI"}
	for _, dtype := range []models.DType{models.DTypeFP32, models.DTypeFP16} {
		t.Run(string(dtype), func(t *testing.T) {
			v := openDType(t, dir, dtype)
			letters, err := v.LetterTokens(len(options))
			if err != nil {
				t.Fatal(err)
			}
			var reqs []jsRequest
			var ours []models.VQARequest
			for _, img := range images {
				req := models.VQARequest{Pixels: pixels(t, v, img), Question: "Which imaging modality is shown?", Options: options}
				p := v.VQAPrompt(req, req.Pixels.ImageTokens())
				reqs = append(reqs, jsRequest{System: p.System, Question: p.UserText(), ImagePath: img,
					Suffix: models.FastAnswerPrefix, MaxNewTokens: 1})
				ours = append(ours, req)
			}
			ref := runVLMReference(t, dir, dtype, reqs)
			got, err := v.Answer(context.Background(), ours, models.ReasonOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range ref {
				probs := generate.OptionProbs(r.FirstLogits, letters)
				best := 0
				var gap float64
				for j, p := range probs {
					if p > probs[best] {
						best = j
					}
					gap = max(gap, math.Abs(p-got[i].Probs[j]))
				}
				if best != got[i].Index {
					t.Errorf("%s: transformers.js answers %c %v, medgr2 %s %v", images[i], 'A'+best, probs, got[i].Letter, got[i].Probs)
				}
				t.Logf("%s: both answer %s; image tokens transformers.js %d, medgr2 %d; max option-probability gap %.3g",
					filepath.Base(images[i]), got[i].Letter, r.ImageTokens, ours[i].Pixels.ImageTokens(), gap)
			}
		})
	}
}
