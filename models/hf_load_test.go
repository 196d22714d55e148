package models_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/medgr2/medgr2/graph/onnxpb"
	"github.com/medgr2/medgr2/models"
)

// hfFolder returns a copy of a fresh export turned into a plain Hugging
// Face folder as another exporter would write it: no model.json, every
// initializer renamed onnx::<Op>_<n> (quantizers and torch.onnx name them
// so), and the vision grid input renamed image_grid_thw (Qwen2.5-VL).
func hfFolder(t *testing.T, src *models.Bundle) string {
	t.Helper()
	b := copyBundle(t, src)
	rm(t, filepath.Join(b.Dir, models.ManifestName))
	for _, g := range []string{b.VisionEncoderPath(), b.EmbedTokensPath(), b.DecoderPath()} {
		renameInitializers(t, g)
	}
	renameInput(t, b.VisionEncoderPath(), models.GridTHW, models.ImageGridTHW)
	return b.Dir
}

// editONNX rewrites the ONNX file at path with edit applied to its graph.
func editONNX(t *testing.T, path string, edit func(*onnxpb.GraphProto)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		t.Fatal(err)
	}
	edit(mp.GetGraph())
	out, err := proto.Marshal(&mp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rename replaces the value name old by repl wherever the graph uses it.
func rename(g *onnxpb.GraphProto, old, repl string) {
	for _, n := range g.GetNode() {
		for i, in := range n.Input {
			if in == old {
				n.Input[i] = repl
			}
		}
	}
	for _, vi := range g.GetInput() {
		if vi.GetName() == old {
			vi.Name = proto.String(repl)
		}
	}
}

func renameInitializers(t *testing.T, path string) {
	editONNX(t, path, func(g *onnxpb.GraphProto) {
		for i, init := range g.GetInitializer() {
			repl := fmt.Sprintf("onnx::MatMul_%d", 1000+i)
			rename(g, init.GetName(), repl)
			init.Name = proto.String(repl)
		}
	})
}

func renameInput(t *testing.T, path, old, repl string) {
	editONNX(t, path, func(g *onnxpb.GraphProto) { rename(g, old, repl) })
}

// TestOpenHFFolder opens a folder with no model.json, foreign initializer
// names and the Qwen2.5-VL grid input name, and checks it answers exactly
// as the bundle it came from. Without model.json the system message is the
// chat template's default, so the bundle compared against uses it too.
func TestOpenHFFolder(t *testing.T) {
	src := exportVQABundle(t, 31)
	dir := hfFolder(t, src)
	src = copyBundle(t, src)
	editManifest(t, src, `"system": "You are a helpful medical imaging assistant."`, `"system": ""`)
	b, err := models.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	m := b.Manifest
	if !m.HasRole(models.RoleVQA) || m.Architecture.HiddenSize != src.Manifest.Architecture.HiddenSize ||
		b.Names.GridTHW != models.ImageGridTHW || m.SpecialTokens.ImagePad != src.Manifest.SpecialTokens.ImagePad {
		t.Fatalf("manifest from the Hugging Face files: %+v, names %+v", m, b.Names)
	}
	orig, hf := openVLM(t, src.Dir), openVLM(t, dir)
	reqs := []models.VQARequest{
		{Pixels: pixels(t, orig, chestImage), Question: "Is there pneumonia?", Options: []string{"yes", "no"}},
		{Pixels: pixels(t, orig, kneeImage), Question: "Which joint?", Options: []string{"knee", "hip", "ankle"}, Mode: models.ModeReason},
	}
	ctx := context.Background()
	want, err := orig.Answer(ctx, reqs, models.ReasonOptions{MaxNewTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	got, err := hf.Answer(ctx, reqs, models.ReasonOptions{MaxNewTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	for i := range reqs {
		if got[i].Index != want[i].Index || got[i].Text != want[i].Text {
			t.Errorf("request %d: %d %q from the Hugging Face folder, %d %q from the bundle", i, got[i].Index, got[i].Text, want[i].Index, want[i].Text)
		}
		for k := range want[i].Probs {
			if d := math.Abs(got[i].Probs[k] - want[i].Probs[k]); d > 1e-6 {
				t.Errorf("request %d option %d: probabilities differ by %g", i, k, d)
			}
		}
	}
}

// TestLoadHFFolderErrors breaks a Hugging Face folder one way per case and
// checks Load names the file and the problem.
func TestLoadHFFolderErrors(t *testing.T) {
	src := exportVQABundle(t, 32)
	cases := []struct {
		name     string
		break_   func(t *testing.T, dir string)
		want     error
		file, in string // the error names this file and contains in
	}{
		{"unsupported model_type", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, models.HFConfigName), `"model_type": "qwen2_vl"`, `"model_type": "llava"`)
		}, models.ErrBadConfig, models.HFConfigName, `"llava"`},
		{"hidden size contradicts the graphs", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, models.HFConfigName), `"hidden_size": 128,`, `"hidden_size": 256,`)
			editFile(t, filepath.Join(dir, models.HFConfigName), `"num_attention_heads": 4,`, `"num_attention_heads": 8,`)
		}, models.ErrSignature, "onnx/vision_encoder.onnx", "config.json says 256"},
		{"heads contradict the config", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, models.HFConfigName), `"num_attention_heads": 4,`, `"num_attention_heads": 3,`)
		}, models.ErrBadConfig, models.HFConfigName, "num_attention_heads"},
		{"layer count contradicts the decoder", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, models.HFConfigName), `"num_hidden_layers": 4`, `"num_hidden_layers": 5`)
		}, models.ErrSignature, "onnx/decoder_model_merged.onnx", "past_key_values.4.key"},
		{"kv heads contradict the decoder", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, models.HFConfigName), `"num_key_value_heads": 2`, `"num_key_value_heads": 1`)
		}, models.ErrSignature, "onnx/decoder_model_merged.onnx", "config.json says 1"},
		{"missing graph", func(t *testing.T, dir string) { rm(t, filepath.Join(dir, "onnx", "embed_tokens.onnx")) },
			models.ErrMissingFile, "onnx/embed_tokens.onnx", "embed_tokens.onnx"},
		{"only an fp16 variant", func(t *testing.T, dir string) {
			onnx := filepath.Join(dir, "onnx")
			if err := os.Rename(filepath.Join(onnx, "embed_tokens.onnx"), filepath.Join(onnx, "embed_tokens_fp16.onnx")); err != nil {
				t.Fatal(err)
			}
		}, models.ErrMissingFile, "onnx/embed_tokens.onnx", "[embed_tokens_fp16.onnx]"},
		{"an fp16 graph under the fp32 name", func(t *testing.T, dir string) {
			editONNX(t, filepath.Join(dir, "onnx", "decoder_model_merged.onnx"), func(g *onnxpb.GraphProto) {
				g.Input[0].GetType().GetTensorType().ElemType = proto.Int32(int32(onnxpb.TensorProto_FLOAT16))
			})
		}, models.ErrSignature, "onnx/decoder_model_merged.onnx", "embed_tokens outputs float32 inputs_embeds, the decoder takes float16"},
		{"truncated onnx_data", func(t *testing.T, dir string) {
			truncate(t, filepath.Join(dir, "onnx", "decoder_model_merged.onnx_data"), 1000)
		}, models.ErrBadWeights, "onnx/decoder_model_merged.onnx", "truncated"},
		{"an input the runner cannot feed", func(t *testing.T, dir string) {
			editONNX(t, filepath.Join(dir, "onnx", "embed_tokens.onnx"), func(g *onnxpb.GraphProto) {
				g.Input = append(g.Input, &onnxpb.ValueInfoProto{Name: proto.String("token_type_ids"), Type: g.Input[0].Type})
			})
		}, models.ErrSignature, "onnx/embed_tokens.onnx", "token_type_ids"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := hfFolder(t, src)
			c.break_(t, dir)
			_, err := models.Load(context.Background(), dir)
			var be *models.BundleError
			if !errors.Is(err, c.want) || !errors.As(err, &be) || be.File != c.file || !strings.Contains(err.Error(), c.in) {
				t.Fatalf("Load = %v, want %v naming %s and %q", err, c.want, c.file, c.in)
			}
		})
	}
}

func editFile(t *testing.T, path, old, repl string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	write(t, path, strings.Replace(string(data), old, repl, 1))
}

// exportVQABundle exports a random bundle with the VQA test tokenizer.
func exportVQABundle(t *testing.T, seed uint64) *models.Bundle {
	t.Helper()
	b, err := models.Load(context.Background(), exportVLM(t, nil, seed))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenHFFolderFP16 opens, as `serve --dtype fp16` does, a folder with
// no model.json, foreign initializer names, .onnx_data weights and an
// fp16 variant beside its fp32 graphs, and checks its fast-path answers
// against the fp32 bundle it came from: probabilities within 2e-2 and
// the same letter wherever fp32's top two options are 0.05 apart.
func TestOpenHFFolderFP16(t *testing.T) {
	ctx := context.Background()
	src := exportVQABundle(t, 31)
	if err := models.ExportVariants(ctx, src, []models.DType{models.DTypeFP16}); err != nil {
		t.Fatal(err)
	}
	dir := hfFolder(t, src)
	for _, g := range []string{"vision_encoder_fp16.onnx", "embed_tokens_fp16.onnx", "decoder_model_merged_fp16.onnx"} {
		renameInitializers(t, filepath.Join(dir, "onnx", g))
	}
	renameInput(t, filepath.Join(dir, "onnx", "vision_encoder_fp16.onnx"), models.GridTHW, models.ImageGridTHW)
	src = copyBundle(t, src)
	editManifest(t, src, `"system": "You are a helpful medical imaging assistant."`, `"system": ""`)
	orig := openVLM(t, src.Dir)
	half := openDType(t, dir, models.DTypeFP16)
	reqs := []models.VQARequest{
		{Pixels: pixels(t, orig, chestImage), Question: "Is there pneumonia?", Options: []string{"yes", "no"}},
		{Pixels: pixels(t, orig, kneeImage), Question: "Which joint?", Options: []string{"knee", "hip", "ankle"}},
		{Question: "Which imaging modality is used?", Options: []string{"CT", "MRI", "X-ray", "ultrasound"}},
	}
	want, err := orig.Answer(ctx, reqs, models.ReasonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := half.Answer(ctx, reqs, models.ReasonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range reqs {
		p := slices.Clone(want[i].Probs)
		slices.Sort(p)
		if margin := p[len(p)-1] - p[len(p)-2]; margin > 0.05 && got[i].Index != want[i].Index {
			t.Errorf("request %d: letter %s from the fp16 folder, %s from the bundle (margin %.3f)", i, got[i].Letter, want[i].Letter, margin)
		}
		for k := range want[i].Probs {
			if d := math.Abs(got[i].Probs[k] - want[i].Probs[k]); d > 2e-2 {
				t.Errorf("request %d option %d: probabilities differ by %g", i, k, d)
			}
		}
	}
}
