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
	// half allows float16 in place of a float32 dtype (the fp16 and q4f16
	// variants).
	half bool
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
	// optional are inputs a graph may declare, which the runner then feeds
	// (num_logits_to_keep); only their element type is checked.
	optional []port
}

// visionSignature: pixel_values [N, patch_dim], grid_thw [images, 3] →
// image_features [N/merge², hidden].
func visionSignature(a ArchConfig) signature {
	return signature{
		inputs: []port{
			{PixelValues, graph.Float32, []int64{free, int64(a.Vision.PatchDim())}, true},
			{GridTHW, graph.Int64, []int64{free, 3}, false},
		},
		outputs:      []port{{ImageFeatures, graph.Float32, []int64{free, int64(a.HiddenSize)}, true}},
		alternatives: map[string][]string{GridTHW: {ImageGridTHW}},
	}
}

// embedSignature: input_ids [B, S] → inputs_embeds [B, S, hidden].
func embedSignature(a ArchConfig) signature {
	return signature{
		inputs:  []port{{InputIDs, graph.Int64, []int64{free, free}, false}},
		outputs: []port{{InputsEmbeds, graph.Float32, []int64{free, free, int64(a.HiddenSize)}, true}},
	}
}

// decoderSignature: inputs_embeds [B, S, hidden], attention_mask [B, T],
// position_ids [3, B, S], past_key_values.{i}.key|value [B, kv_heads, P,
// head_dim] → logits [B, S, vocab] (scores [B] for the reward role) and
// present.{i}.key|value.
func decoderSignature(a ArchConfig, reward bool) signature {
	kv := []int64{free, int64(a.NumKVHeads), free, int64(a.HeadDim())}
	s := signature{inputs: []port{
		{InputsEmbeds, graph.Float32, []int64{free, free, int64(a.HiddenSize)}, true},
		{AttentionMask, graph.Int64, []int64{free, free}, false},
		{PositionIDs, graph.Int64, []int64{3, free, free}, false},
	}, optional: []port{{NumLogitsToKeep, graph.Int64, nil, false}}}
	if reward {
		s.outputs = append(s.outputs, port{Scores, graph.Float32, []int64{free}, true})
	} else {
		s.outputs = append(s.outputs, port{Logits, graph.Float32, []int64{free, free, int64(a.VocabSize)}, true})
	}
	for i := range a.NumLayers {
		s.inputs = append(s.inputs, port{PastKey(i), graph.Float32, kv, true}, port{PastValue(i), graph.Float32, kv, true})
		s.outputs = append(s.outputs, port{PresentKey(i), graph.Float32, kv, true}, port{PresentValue(i), graph.Float32, kv, true})
	}
	return s
}

// Names is how a bundle's graphs name the inputs that exporters name
// differently, as found by Load.
type Names struct {
	// GridTHW is the vision encoder's grid input: "grid_thw" (Qwen2-VL,
	// medgr2) or "image_grid_thw" (Qwen2.5-VL).
	GridTHW string
	// LogitsToKeep reports whether the decoder takes num_logits_to_keep
	// (then fed 1: logits for the last position only).
	LogitsToKeep bool
	// Half says which float ports the graphs declare float16 (fp16 and
	// q4f16 variants); the zero value is all float32.
	Half HalfPorts
}

// HalfPorts records which of a bundle's float inputs and outputs are
// float16. The runner feeds and reads each in its declared dtype.
type HalfPorts struct {
	PixelValues   bool // vision encoder input (onnx-community keeps it float32)
	ImageFeatures bool // vision encoder output, spliced into inputs_embeds
	Embeds        bool // embed_tokens output and decoder input inputs_embeds
	Cache         bool // past_key_values.* and present.*
	Logits        bool // decoder logits (scores for the reward role), widened for sampling
}

// Any reports whether any port is float16.
func (h HalfPorts) Any() bool {
	return h.PixelValues || h.ImageFeatures || h.Embeds || h.Cache || h.Logits
}

// checkONNX parses the ONNX file at path and checks it declares want: every
// input and output by name, element type, rank and fixed dims, and no
// other runtime input (an input without an initializer), so nothing the
// runner does not feed can be required. It returns the input names found
// (alternatives resolved) and checks every external-data reference lies
// inside its file.
func checkONNX(path string, want signature) (map[string]string, map[string]graph.DType, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMissingFile, err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadONNX, err)
	}
	gp := mp.GetGraph()
	if gp == nil || len(gp.GetNode()) == 0 || len(gp.GetOutput()) == 0 {
		return nil, nil, fmt.Errorf("%w: no graph, nodes or outputs (truncated?)", ErrBadONNX)
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
	found, dtypes := map[string]string{}, map[string]graph.DType{}
	for _, p := range want.inputs {
		name := p.name
		for _, alt := range want.alternatives[p.name] {
			if have[name] == nil && have[alt] != nil {
				name = alt
			}
		}
		dt, err := matchPort("input", have[name], p, name)
		if err != nil {
			return nil, nil, err
		}
		dtypes[p.name] = dt
		found[p.name] = name
		delete(have, name)
	}
	for _, p := range want.optional {
		vi, ok := have[p.name]
		if !ok {
			continue
		}
		if tt := vi.GetType().GetTensorType(); tt == nil || graph.DType(tt.GetElemType()) != p.dtype {
			return nil, nil, fmt.Errorf("%w: input %q must be %v", ErrSignature, p.name, p.dtype)
		}
		found[p.name] = p.name
		delete(have, p.name)
	}
	if len(have) > 0 {
		extra := make([]string, 0, len(have))
		for n := range have {
			extra = append(extra, n)
		}
		sort.Strings(extra)
		return nil, nil, fmt.Errorf("%w: inputs %s are not part of the Qwen2-VL contract (the runner cannot feed them)", ErrSignature, strings.Join(extra, ", "))
	}
	outs := map[string]*onnxpb.ValueInfoProto{}
	for _, vi := range gp.GetOutput() {
		outs[vi.GetName()] = vi
	}
	for _, p := range want.outputs {
		dt, err := matchPort("output", outs[p.name], p, p.name)
		if err != nil {
			return nil, nil, err
		}
		dtypes[p.name] = dt
	}
	if err := checkQuantized(gp); err != nil {
		return nil, nil, err
	}
	return found, dtypes, checkExternal(filepath.Dir(path), gp.GetInitializer())
}

// matchPort compares one declared input or output with the expected port
// and returns its declared element type.
func matchPort(kind string, vi *onnxpb.ValueInfoProto, want port, name string) (graph.DType, error) {
	if vi == nil {
		return 0, fmt.Errorf("%w: missing %s %q", ErrSignature, kind, name)
	}
	tt := vi.GetType().GetTensorType()
	var got graph.DType
	if tt != nil {
		got = graph.DType(tt.GetElemType())
	}
	if got != want.dtype && (!want.half || got != graph.Float16) {
		desc := "no tensor type"
		if tt != nil {
			desc = got.String()
		}
		alts := want.dtype.String()
		if want.half {
			alts += " or float16"
		}
		return 0, fmt.Errorf("%w: %s %q is %s, want %s", ErrSignature, kind, name, desc, alts)
	}
	dims := tt.GetShape().GetDim()
	if len(dims) != len(want.dims) {
		return 0, fmt.Errorf("%w: %s %q has rank %d, want %d", ErrSignature, kind, name, len(dims), len(want.dims))
	}
	for i, d := range dims {
		dv, fixed := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue)
		if fixed && want.dims[i] != free && dv.DimValue != want.dims[i] {
			return 0, fmt.Errorf("%w: %s %v %q dim %d is %d, config.json says %d", ErrSignature, kind, got, name, i, dv.DimValue, want.dims[i])
		}
	}
	return got, nil
}

// halfPorts reads which float ports the three graphs declare float16 from
// their checked dtypes, and checks the runner can feed them: the embedding
// output must have the decoder's inputs_embeds dtype (a decode step feeds
// one to the other unchanged), and the cache one dtype throughout.
func halfPorts(vision, embed, dec map[string]graph.DType, layers int) (HalfPorts, error) {
	h := HalfPorts{
		PixelValues:   vision[PixelValues] == graph.Float16,
		ImageFeatures: vision[ImageFeatures] == graph.Float16,
		Embeds:        dec[InputsEmbeds] == graph.Float16,
		Cache:         layers > 0 && dec[PastKey(0)] == graph.Float16,
		Logits:        dec[Logits] == graph.Float16 || dec[Scores] == graph.Float16,
	}
	if embed[InputsEmbeds] != dec[InputsEmbeds] {
		return h, fmt.Errorf("%w: embed_tokens outputs %s inputs_embeds, the decoder takes %s (mixed dtype variants?)", ErrSignature, embed[InputsEmbeds], dec[InputsEmbeds])
	}
	want := dec[PastKey(0)]
	for i := range layers {
		for _, n := range []string{PastKey(i), PastValue(i), PresentKey(i), PresentValue(i)} {
			if dec[n] != want {
				return h, fmt.Errorf("%w: decoder %q is %s, %q is %s: the cache must have one dtype", ErrSignature, n, dec[n], PastKey(0), want)
			}
		}
	}
	return h, nil
}
