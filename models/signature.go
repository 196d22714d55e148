package models

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/graph/onnxpb"
)

// ImageGridTHW is the vision encoder's grid input as Qwen2.5-VL exports
// name it (Qwen2-VL exports and medgr2's graphs use GridTHW).
const ImageGridTHW = "image_grid_thw"

// free marks a dimension the signature does not fix (batch, sequence,
// patches).
const free = -1

// port is one input or output a graph must declare: its name, element
// type and dims (free where any size is allowed).
type port struct {
	name  string
	dtype graph.DType
	dims  []int64
}

// signature is what a graph must declare to run as one of a bundle's three
// graphs. Graphs are checked against it, never against initializer names,
// so another exporter's graphs (other weight names, quantized weights)
// load as long as their inputs and outputs agree with config.json.
type signature struct {
	inputs  []port
	outputs []port
	// alternatives maps an input name to other names exporters use for it
	// (grid_thw → image_grid_thw).
	alternatives map[string][]string
}

// visionSignature: pixel_values [N, patch_dim], grid_thw [images, 3] →
// image_features [N/merge², hidden].
func visionSignature(a ArchConfig) signature {
	return signature{
		inputs: []port{
			{PixelValues, graph.Float32, []int64{free, int64(a.Vision.PatchDim())}},
			{GridTHW, graph.Int64, []int64{free, 3}},
		},
		outputs:      []port{{ImageFeatures, graph.Float32, []int64{free, int64(a.HiddenSize)}}},
		alternatives: map[string][]string{GridTHW: {ImageGridTHW}},
	}
}

// embedSignature: input_ids [B, S] → inputs_embeds [B, S, hidden].
func embedSignature(a ArchConfig) signature {
	return signature{
		inputs:  []port{{InputIDs, graph.Int64, []int64{free, free}}},
		outputs: []port{{InputsEmbeds, graph.Float32, []int64{free, free, int64(a.HiddenSize)}}},
	}
}

// decoderSignature: inputs_embeds [B, S, hidden], attention_mask [B, T],
// position_ids [3, B, S], past_key_values.{i}.key|value [B, kv_heads, P,
// head_dim] → logits [B, S, vocab] (scores [B] for the reward role) and
// present.{i}.key|value.
func decoderSignature(a ArchConfig, reward bool) signature {
	kv := []int64{free, int64(a.NumKVHeads), free, int64(a.HeadDim())}
	s := signature{inputs: []port{
		{InputsEmbeds, graph.Float32, []int64{free, free, int64(a.HiddenSize)}},
		{AttentionMask, graph.Int64, []int64{free, free}},
		{PositionIDs, graph.Int64, []int64{3, free, free}},
	}}
	if reward {
		s.outputs = append(s.outputs, port{Scores, graph.Float32, []int64{free}})
	} else {
		s.outputs = append(s.outputs, port{Logits, graph.Float32, []int64{free, free, int64(a.VocabSize)}})
	}
	for i := range a.NumLayers {
		s.inputs = append(s.inputs, port{PastKey(i), graph.Float32, kv}, port{PastValue(i), graph.Float32, kv})
		s.outputs = append(s.outputs, port{PresentKey(i), graph.Float32, kv}, port{PresentValue(i), graph.Float32, kv})
	}
	return s
}

// Names is how a bundle's graphs name the inputs that exporters name
// differently, as found by Load.
type Names struct {
	// GridTHW is the vision encoder's grid input: "grid_thw" (Qwen2-VL,
	// medgr2) or "image_grid_thw" (Qwen2.5-VL).
	GridTHW string
}

// checkONNX parses the ONNX file at path and checks it declares want: every
// input and output by name, element type, rank and fixed dims, and no
// other runtime input (an input without an initializer), so nothing the
// runner does not feed can be required. It returns the input names found
// (alternatives resolved) and checks every external-data reference lies
// inside its file.
func checkONNX(path string, want signature) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMissingFile, err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadONNX, err)
	}
	gp := mp.GetGraph()
	if gp == nil || len(gp.GetNode()) == 0 || len(gp.GetOutput()) == 0 {
		return nil, fmt.Errorf("%w: no graph, nodes or outputs (truncated?)", ErrBadONNX)
	}
	inits := map[string]bool{}
	for _, t := range gp.GetInitializer() {
		inits[t.GetName()] = true
	}
	have := map[string]*onnxpb.ValueInfoProto{}
	for _, vi := range gp.GetInput() {
		if !inits[vi.GetName()] {
			have[vi.GetName()] = vi
		}
	}
	found := map[string]string{}
	for _, p := range want.inputs {
		name := p.name
		for _, alt := range want.alternatives[p.name] {
			if have[name] == nil && have[alt] != nil {
				name = alt
			}
		}
		if err := matchPort("input", have[name], p, name); err != nil {
			return nil, err
		}
		found[p.name] = name
		delete(have, name)
	}
	if len(have) > 0 {
		extra := make([]string, 0, len(have))
		for n := range have {
			extra = append(extra, n)
		}
		sort.Strings(extra)
		return nil, fmt.Errorf("%w: inputs %s are not part of the Qwen2-VL contract (the runner cannot feed them)", ErrSignature, strings.Join(extra, ", "))
	}
	outs := map[string]*onnxpb.ValueInfoProto{}
	for _, vi := range gp.GetOutput() {
		outs[vi.GetName()] = vi
	}
	for _, p := range want.outputs {
		if err := matchPort("output", outs[p.name], p, p.name); err != nil {
			return nil, err
		}
	}
	return found, checkExternal(filepath.Dir(path), gp.GetInitializer())
}

// matchPort compares one declared input or output with the expected port.
func matchPort(kind string, vi *onnxpb.ValueInfoProto, want port, name string) error {
	if vi == nil {
		return fmt.Errorf("%w: missing %s %q", ErrSignature, kind, name)
	}
	tt := vi.GetType().GetTensorType()
	if tt == nil || graph.DType(tt.GetElemType()) != want.dtype {
		got := "no tensor type"
		if tt != nil {
			got = graph.DType(tt.GetElemType()).String()
		}
		return fmt.Errorf("%w: %s %q is %s, want %v (only float32 graphs run here; pick an fp32 variant)", ErrSignature, kind, name, got, want.dtype)
	}
	dims := tt.GetShape().GetDim()
	if len(dims) != len(want.dims) {
		return fmt.Errorf("%w: %s %q has rank %d, want %d", ErrSignature, kind, name, len(dims), len(want.dims))
	}
	for i, d := range dims {
		dv, fixed := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue)
		if fixed && want.dims[i] != free && dv.DimValue != want.dims[i] {
			return fmt.Errorf("%w: %s %q dim %d is %d, config.json says %d", ErrSignature, kind, name, i, dv.DimValue, want.dims[i])
		}
	}
	return nil
}
