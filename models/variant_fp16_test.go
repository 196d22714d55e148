package models

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/medgr2/medgr2/graph/onnxpb"
)

// TestFloat16Numerics checks where the fp16 conversion leaves float32: the
// inputs of softmax, the reductions and square roots of the norms, the
// RoPE cos/sin, and x·x before RMSNorm's mean are float32; weights and
// the declared float inputs and outputs are float16 (pixel_values stays
// float32); no float32 weight is left.
func TestFloat16Numerics(t *testing.T) {
	cfg := DefaultConfig(0)
	dir := t.TempDir()
	b, err := Export(context.Background(), dir, cfg, ExportOptions{Tokenizer: "testdata/vqa_tokenizer.json", Seed: 1, DTypes: []DType{DTypeFP16}})
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{b.Manifest.Files.VisionEncoder, b.Manifest.Files.Decoder} {
		path := b.Path(rel[:len(rel)-len(".onnx")] + "_fp16.onnx")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var mp onnxpb.ModelProto
		if err := proto.Unmarshal(data, &mp); err != nil {
			t.Fatal(err)
		}
		gp := mp.GetGraph()
		types := elemTypes(gp)
		seen := map[string]int{}
		for _, n := range gp.GetNode() {
			op := n.GetOpType()
			if fp16Blocked[op] && op != "Range" {
				seen[op]++
				for _, in := range n.GetInput()[:1] {
					if types[in] == tFloat16 {
						t.Errorf("%s: %s %q reads %q as float16, want float32", filepath.Base(path), op, n.GetName(), in)
					}
				}
			}
			if op == "Mul" && len(n.Input) == 2 && n.Input[0] == n.Input[1] && types[n.Output[0]] != tFloat {
				t.Errorf("%s: x·x %q is not float32", filepath.Base(path), n.GetName())
			}
		}
		if seen["Softmax"] == 0 || seen["ReduceMean"] == 0 || seen["Sqrt"] == 0 {
			t.Errorf("%s: blocked ops seen %v, want Softmax, ReduceMean and Sqrt", filepath.Base(path), seen)
		}
		for _, init := range gp.GetInitializer() {
			if init.GetDataType() == tFloat {
				t.Errorf("%s: weight %q is still float32", filepath.Base(path), init.GetName())
			}
		}
		for _, vi := range append(gp.GetInput(), gp.GetOutput()...) {
			got := vi.GetType().GetTensorType().GetElemType()
			want := got
			switch {
			case vi.GetName() == PixelValues:
				want = tFloat
			case got == tFloat || got == tFloat16:
				want = tFloat16
			}
			if got != want {
				t.Errorf("%s: %q is type %d, want %d", filepath.Base(path), vi.GetName(), got, want)
			}
		}
	}
}
