package models_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/graph/onnxpb"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/runtime/generate"
)

// exportVariants writes a random bundle (the exportVLM architecture) with
// the given dtype variants beside its fp32 graphs.
func exportVariants(t testing.TB, seed uint64, dtypes ...models.DType) string {
	t.Helper()
	return exportRoleVariants(t, nil, seed, dtypes...)
}

// exportRoleVariants is exportVariants for a bundle with roles.
func exportRoleVariants(t testing.TB, roles []models.Role, seed uint64, dtypes ...models.DType) string {
	t.Helper()
	dir := t.TempDir()
	cfg := models.DefaultConfig(0)
	cfg.InitStd = 0.2
	if _, err := models.Export(context.Background(), dir, cfg,
		models.ExportOptions{Tokenizer: vqaTokenizer, Roles: roles, Seed: seed, DTypes: dtypes}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func openDType(t testing.TB, dir string, d models.DType) *models.VLM {
	t.Helper()
	v, err := models.Open(context.Background(), dir, models.VLMOptions{Device: runtime.CPU, DType: d})
	if err != nil {
		t.Fatalf("open %s (ONNX Runtime is required): %v", d, err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	})
	return v
}

// fp16LogitsTol is how far float16 logits may be from float32 ones on
// the default architecture (|logits| up to about 10 with InitStd 0.2):
// fp16 against fp32, and q4f16 against q4 (the same 4-bit weights with
// float32 activations).
const fp16LogitsTol = 5e-2

// TestFloat16Variants runs the fp16 and q4f16 variants medgr2 exports:
// the graphs declare float16 activations (pixel_values stays float32),
// first-step logits agree with fp32 (q4f16: with q4) within
// fp16LogitsTol, greedy tokens
// with the float16 KV cache equal the no-cache rerun, and the fast VQA
// path picks the same letters as fp32 on real items.
func TestFloat16Variants(t *testing.T) {
	ctx := context.Background()
	dir := exportVariants(t, 51, models.DTypeFP16, models.DTypeQ4, models.DTypeQ4F16)
	f32 := openDType(t, dir, models.DTypeFP32)
	f16 := openDType(t, dir, models.DTypeFP16)
	q4 := openDType(t, dir, models.DTypeQ4)
	q4f16 := openDType(t, dir, models.DTypeQ4F16)
	want := models.HalfPorts{ImageFeatures: true, Embeds: true, Cache: true, Logits: true}
	for _, v := range []*models.VLM{f16, q4f16} {
		if got := v.Bundle().Names.Half; got != want {
			t.Fatalf("%s: half ports %+v, want %+v", v.Bundle().DecoderPath(), got, want)
		}
	}
	if f32.Bundle().Names.Half.Any() {
		t.Fatalf("fp32 bundle has float16 ports %+v", f32.Bundle().Names.Half)
	}
	prompt := chatPrompt(t, f32, "Is this image normal?", pixels(t, f32, chestImage))
	logits := map[*models.VLM][]float32{}
	for _, v := range []*models.VLM{f32, f16, q4, q4f16} {
		l, err := v.LastLogits(ctx, []models.Prompt{prompt})
		if err != nil {
			t.Fatal(err)
		}
		logits[v] = l.Data
	}
	for _, c := range [][2]*models.VLM{{f16, f32}, {q4f16, q4}, {q4, f32}} {
		d := maxDiff(logits[c[0]], logits[c[1]])
		t.Logf("max |logits(%s) - logits(%s)| = %.4g", filepath.Base(c[0].Bundle().DecoderPath()), filepath.Base(c[1].Bundle().DecoderPath()), d)
		if c[0] == q4 {
			continue // 4-bit weights change the model: logged, not bounded
		}
		if d > fp16LogitsTol || math.IsNaN(d) {
			t.Errorf("%s: logits differ by %g, want ≤ %g", c[0].Bundle().DecoderPath(), d, fp16LogitsTol)
		}
	}
	greedy := []generate.Options{{MaxNewTokens: 16, Temperature: 0}}
	var runs [3][]int
	for i, c := range []struct {
		v *models.VLM
		g models.GenerateOptions
	}{{f16, models.GenerateOptions{}}, {f16, models.GenerateOptions{NoKVCache: true}}, {f32, models.GenerateOptions{}}} {
		res, err := c.v.Generate(ctx, []models.Prompt{prompt}, greedy, c.g)
		if err != nil {
			t.Fatal(err)
		}
		runs[i] = res[0].Tokens
	}
	if !slices.Equal(runs[0], runs[1]) {
		t.Errorf("fp16 greedy tokens with the float16 KV cache %v, without %v", runs[0], runs[1])
	}
	t.Logf("16 greedy tokens: fp16 %v, fp32 %v (equal: %v)", runs[0], runs[2], slices.Equal(runs[0], runs[2]))
	answerLetters(t, f32, f16)
}

// answerLetters answers real items with both VLMs on the fast path and
// requires the same letter, logging the largest option-probability gap.
func answerLetters(t *testing.T, ref, v *models.VLM) {
	t.Helper()
	items, err := data.Load("../../shared/data/omnimedvqa-real/omnimedvqa_real.json")
	if err != nil {
		t.Fatal(err)
	}
	items = items[:8]
	var answers [2][]models.VQAAnswer
	for k, m := range []*models.VLM{ref, v} {
		reqs := make([]models.VQARequest, len(items))
		for i, it := range items {
			reqs[i] = models.VQARequest{Pixels: pixels(t, m, it.ImageFile()), Question: it.Question, Options: it.Options()}
		}
		if answers[k], err = m.Answer(context.Background(), reqs, models.ReasonOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var gap float64
	for i := range items {
		a, b := answers[0][i], answers[1][i]
		if a.Letter != b.Letter {
			t.Errorf("item %s: fp32 answers %s (%.4f), fp16 %s (%.4f)", items[i].QuestionID, a.Letter, a.Prob, b.Letter, b.Prob)
		}
		for j := range a.Probs {
			gap = max(gap, math.Abs(a.Probs[j]-b.Probs[j]))
		}
	}
	t.Logf("%d real items: same letters; max option-probability difference fp16 vs fp32 %.2g", len(items), gap)
}

// TestFloat16Reward: the fp16 reward decoder's float16 scores are read
// and widened; they agree with fp32 within fp16LogitsTol.
func TestFloat16Reward(t *testing.T) {
	dir := exportRoleVariants(t, []models.Role{models.RoleReward}, 54, models.DTypeFP16)
	var scores [2][]float32
	for i, d := range []models.DType{models.DTypeFP32, models.DTypeFP16} {
		v := openDType(t, dir, d)
		req := models.RewardRequest{Pixels: pixels(t, v, chestImage), Question: "Is this image normal?",
			Options: []string{"normal", "pneumonia"}, Response: "<think>clear lungs</think><answer>A</answer>"}
		var err error
		if scores[i], err = v.Score(context.Background(), []models.RewardRequest{req, {Question: "Which modality?", Options: []string{"CT", "MRI"}, Response: "<answer>B</answer>"}}); err != nil {
			t.Fatal(err)
		}
	}
	if d := maxDiff(scores[0], scores[1]); d > fp16LogitsTol || math.IsNaN(d) {
		t.Errorf("fp16 scores %v, fp32 %v", scores[1], scores[0])
	}
	t.Logf("reward scores fp32 %v, fp16 %v", scores[0], scores[1])
}

// TestFloat16VariantErrors: broken float16 and 4-bit variants give one
// clear error naming the file and the mismatch.
func TestFloat16VariantErrors(t *testing.T) {
	src, err := models.Load(context.Background(), exportVariants(t, 52, models.DTypeFP16, models.DTypeQ4))
	if err != nil {
		t.Fatal(err)
	}
	dropScales := func(drop func(n *onnxpb.NodeProto, g *onnxpb.GraphProto)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			editONNX(t, filepath.Join(dir, "onnx", "decoder_model_merged_q4.onnx"), func(g *onnxpb.GraphProto) {
				for _, n := range g.GetNode() {
					if n.GetOpType() == "MatMulNBits" {
						drop(n, g)
						return
					}
				}
				t.Fatal("no MatMulNBits node")
			})
		}
	}
	cases := []struct {
		name     string
		break_   func(t *testing.T, dir string)
		dtype    models.DType
		want     error
		file, in string
	}{
		{"fp16 kv heads contradict config.json", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, models.HFConfigName), `"num_key_value_heads": 2`, `"num_key_value_heads": 1`)
			rm(t, filepath.Join(dir, models.ManifestName))
		}, models.DTypeFP16, models.ErrSignature, "onnx/decoder_model_merged_fp16.onnx", "float16 \"past_key_values.0.key\" dim 1 is 2, config.json says 1"},
		{"q4 MatMulNBits without its scales input", dropScales(func(n *onnxpb.NodeProto, _ *onnxpb.GraphProto) { n.Input = n.Input[:2] }),
			models.DTypeQ4, models.ErrBadONNX, "onnx/decoder_model_merged_q4.onnx", "has no scales input"},
		{"q4 scales initializer missing", dropScales(func(n *onnxpb.NodeProto, g *onnxpb.GraphProto) {
			g.Initializer = slices.DeleteFunc(g.Initializer, func(x *onnxpb.TensorProto) bool { return x.GetName() == n.Input[2] })
		}), models.DTypeQ4, models.ErrBadONNX, "onnx/decoder_model_merged_q4.onnx", "is not an initializer"},
		{"q4 scales of the wrong size", dropScales(func(n *onnxpb.NodeProto, g *onnxpb.GraphProto) {
			for _, x := range g.Initializer {
				if x.GetName() == n.Input[2] {
					x.Dims = []int64{x.Dims[0] / 2}
				}
			}
		}), models.DTypeQ4, models.ErrBadONNX, "onnx/decoder_model_merged_q4.onnx", "need"},
		{"fp16 cache mixed with a float32 layer", func(t *testing.T, dir string) {
			editONNX(t, filepath.Join(dir, "onnx", "decoder_model_merged_fp16.onnx"), func(g *onnxpb.GraphProto) {
				for _, in := range g.Input {
					if in.GetName() == models.PastValue(1) {
						in.GetType().GetTensorType().ElemType = proto.Int32(int32(onnxpb.TensorProto_FLOAT))
					}
				}
			})
		}, models.DTypeFP16, models.ErrSignature, "onnx/decoder_model_merged_fp16.onnx", "the cache must have one dtype"},
		{"fp16 decoder beside an fp32 embedding", func(t *testing.T, dir string) {
			cp(t, filepath.Join(dir, "onnx", "embed_tokens.onnx"), filepath.Join(dir, "onnx", "embed_tokens_fp16.onnx"))
		}, models.DTypeFP16, models.ErrSignature, "onnx/decoder_model_merged_fp16.onnx", "embed_tokens outputs float32 inputs_embeds, the decoder takes float16"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyBundle(t, src).Dir
			c.break_(t, dir)
			_, err := models.LoadDType(context.Background(), dir, c.dtype)
			var be *models.BundleError
			if !errors.Is(err, c.want) || !errors.As(err, &be) || be.File != c.file || !strings.Contains(err.Error(), c.in) {
				t.Fatalf("LoadDType = %v, want %v naming %s and %q", err, c.want, c.file, c.in)
			}
		})
	}
	if err := models.ExportVariants(context.Background(), src, []models.DType{models.DTypeInt8}); !errors.Is(err, models.ErrDType) {
		t.Errorf("ExportVariants(int8) = %v, want ErrDType", err)
	}
}

// TestAutoDTypeByDevice: auto picks fp32 for the CPU and fp16 for an
// explicit CUDA device when both are present (no session is opened).
func TestAutoDTypeByDevice(t *testing.T) {
	dir := exportVariants(t, 53, models.DTypeFP16)
	for _, c := range []struct {
		dev  runtime.Device
		want string
	}{{runtime.CPU, "decoder_model_merged.onnx"}, {runtime.Device{Kind: runtime.DeviceAuto}, "decoder_model_merged.onnx"},
		{runtime.Device{Kind: runtime.DeviceCUDA}, "decoder_model_merged_fp16.onnx"}} {
		b, err := models.LoadDevice(context.Background(), dir, models.DTypeAuto, c.dev)
		if err != nil {
			t.Fatal(err)
		}
		if got := filepath.Base(b.DecoderPath()); got != c.want {
			t.Errorf("%v: auto took %s, want %s", c.dev, got, c.want)
		}
	}
}

// cp copies the file src over dst.
func cp(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dst, string(data))
}
