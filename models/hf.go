package models

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/medgr2/medgr2/graph/onnxpb"
	"github.com/medgr2/medgr2/internal/atomicfile"
)

// The Hugging Face files of a bundle, in the layout onnx-community publishes
// for Qwen2-VL-family VLMs and transformers.js and Optimum read.
const (
	HFConfigName       = "config.json"
	HFGenerationName   = "generation_config.json"
	HFPreprocessorName = "preprocessor_config.json"
	HFTokenizerConfig  = "tokenizer_config.json"
)

// ModelTypeQwen2VL is config.json's model_type for the architecture this
// package builds.
const ModelTypeQwen2VL = "qwen2_vl"

// qwen2VLChatTemplate is Qwen2-VL's chat template (Qwen2-VL-*-Instruct's
// tokenizer_config.json). With a system message and a user turn of [image,
// text] it renders exactly what tokenizer.VQAPrompt renders.
const qwen2VLChatTemplate = "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"

// hfConfig is config.json as Hugging Face's Qwen2VLConfig writes it, plus
// the transformers.js settings that locate the graphs' external data.
type hfConfig struct {
	Architectures     []string       `json:"architectures"`
	ModelType         string         `json:"model_type"`
	VocabSize         int            `json:"vocab_size"`
	HiddenSize        int            `json:"hidden_size"`
	IntermediateSize  int            `json:"intermediate_size"`
	NumLayers         int            `json:"num_hidden_layers"`
	NumHeads          int            `json:"num_attention_heads"`
	NumKVHeads        int            `json:"num_key_value_heads"`
	HeadDim           int            `json:"head_dim"`
	RMSNormEps        float64        `json:"rms_norm_eps"`
	RopeTheta         float64        `json:"rope_theta"`
	RopeScaling       hfRopeScaling  `json:"rope_scaling"`
	MaxPositions      int            `json:"max_position_embeddings"`
	TieWordEmbeddings bool           `json:"tie_word_embeddings"`
	InitRange         float64        `json:"initializer_range"`
	HiddenAct         string         `json:"hidden_act"`
	TorchDType        string         `json:"torch_dtype"`
	BOS               *int           `json:"bos_token_id"`
	EOS               []int          `json:"eos_token_id"`
	PAD               int            `json:"pad_token_id"`
	ImageToken        int            `json:"image_token_id"`
	VisionStart       int            `json:"vision_start_token_id"`
	VisionEnd         int            `json:"vision_end_token_id"`
	Vision            hfVisionConfig `json:"vision_config"`
	TransformersJS    hfJSConfig     `json:"transformers.js_config"`
}

type hfRopeScaling struct {
	Type         string `json:"type"`
	MRopeSection []int  `json:"mrope_section"`
}

type hfVisionConfig struct {
	Depth             int    `json:"depth"`
	EmbedDim          int    `json:"embed_dim"`
	HiddenSize        int    `json:"hidden_size"` // the merger's output width: the decoder's hidden size
	HiddenAct         string `json:"hidden_act"`
	NumHeads          int    `json:"num_heads"`
	MLPRatio          int    `json:"mlp_ratio"`
	InChannels        int    `json:"in_chans"`
	PatchSize         int    `json:"patch_size"`
	TemporalPatchSize int    `json:"temporal_patch_size"`
	SpatialMergeSize  int    `json:"spatial_merge_size"`
}

type hfJSConfig struct {
	// UseExternalData maps each graph's file name to its number of
	// external data files (<graph>.onnx_data).
	UseExternalData map[string]int `json:"use_external_data_format"`
	// DType is the variant transformers.js loads by default.
	DType string `json:"dtype"`
}

type hfGeneration struct {
	BOS         *int    `json:"bos_token_id"`
	EOS         []int   `json:"eos_token_id"`
	PAD         int     `json:"pad_token_id"`
	DoSample    bool    `json:"do_sample"`
	Temperature float64 `json:"temperature"`
	TopP        float64 `json:"top_p"`
	TopK        int     `json:"top_k"`
}

type hfPreprocessor struct {
	ProcessorClass     string         `json:"processor_class"`
	ImageProcessorType string         `json:"image_processor_type"`
	DoResize           bool           `json:"do_resize"`
	DoRescale          bool           `json:"do_rescale"`
	DoNormalize        bool           `json:"do_normalize"`
	DoConvertRGB       bool           `json:"do_convert_rgb"`
	RescaleFactor      float64        `json:"rescale_factor"`
	Resample           int            `json:"resample"` // PIL bicubic
	ImageMean          []float64      `json:"image_mean"`
	ImageStd           []float64      `json:"image_std"`
	MinPixels          int            `json:"min_pixels"`
	MaxPixels          int            `json:"max_pixels"`
	Size               map[string]int `json:"size"`
	PatchSize          int            `json:"patch_size"`
	TemporalPatchSize  int            `json:"temporal_patch_size"`
	MergeSize          int            `json:"merge_size"`
}

type hfTokenizerConfig struct {
	TokenizerClass string `json:"tokenizer_class"`
	ChatTemplate   string `json:"chat_template"`
	EOSToken       string `json:"eos_token"`
	PADToken       string `json:"pad_token"`
	ModelMaxLength int    `json:"model_max_length"`
	AddBOSToken    bool   `json:"add_bos_token"`
	CleanSpaces    bool   `json:"clean_up_tokenization_spaces"`
	SplitSpecial   bool   `json:"split_special_tokens"`
	ErrorsMode     string `json:"errors"`
}

// maxPositions is config.json's max_position_embeddings: the context the
// rotary tables are meant for (Qwen2-VL's).
const maxPositions = 32768

// writeHFFiles writes config.json, generation_config.json,
// preprocessor_config.json and tokenizer_config.json for m into dir.
func writeHFFiles(dir string, m *Manifest) error {
	a, st, ip := m.Architecture, m.SpecialTokens, m.ImageProcessor
	var bos *int
	if st.BOS >= 0 {
		bos = &st.BOS
	}
	ext := map[string]int{}
	for _, f := range []string{m.Files.VisionEncoder, m.Files.EmbedTokens, m.Files.Decoder} {
		ext[filepath.Base(f)] = 1
	}
	cfg := hfConfig{
		Architectures: []string{"Qwen2VLForConditionalGeneration"}, ModelType: ModelTypeQwen2VL,
		VocabSize: a.VocabSize, HiddenSize: a.HiddenSize, IntermediateSize: a.IntermediateSize,
		NumLayers: a.NumLayers, NumHeads: a.NumHeads, NumKVHeads: a.NumKVHeads, HeadDim: a.HeadDim(),
		RMSNormEps: a.RMSNormEps, RopeTheta: a.RopeTheta,
		RopeScaling:  hfRopeScaling{Type: "mrope", MRopeSection: a.MRopeSection},
		MaxPositions: maxPositions, TieWordEmbeddings: a.TieWordEmbeddings, InitRange: a.InitStd,
		HiddenAct: "silu", TorchDType: "float32",
		BOS: bos, EOS: st.EOS, PAD: st.PAD, ImageToken: st.ImagePad, VisionStart: st.VisionStart, VisionEnd: st.VisionEnd,
		Vision: hfVisionConfig{
			Depth: a.Vision.Depth, EmbedDim: a.Vision.EmbedDim, HiddenSize: a.HiddenSize, HiddenAct: "quick_gelu",
			NumHeads: a.Vision.NumHeads, MLPRatio: a.Vision.MLPRatio, InChannels: a.Vision.InChannels,
			PatchSize: a.Vision.PatchSize, TemporalPatchSize: a.Vision.TemporalPatchSize, SpatialMergeSize: a.Vision.SpatialMergeSize,
		},
		TransformersJS: hfJSConfig{UseExternalData: ext, DType: "fp32"},
	}
	gen := hfGeneration{BOS: bos, EOS: st.EOS, PAD: st.PAD, Temperature: 1, TopP: 1}
	pre := hfPreprocessor{
		ProcessorClass: "Qwen2VLProcessor", ImageProcessorType: "Qwen2VLImageProcessor",
		DoResize: true, DoRescale: true, DoNormalize: true, DoConvertRGB: true,
		RescaleFactor: 1.0 / 255, Resample: 3, ImageMean: ip.ImageMean, ImageStd: ip.ImageStd,
		MinPixels: ip.MinPixels, MaxPixels: ip.MaxPixels,
		Size:      map[string]int{"shortest_edge": ip.MinPixels, "longest_edge": ip.MaxPixels},
		PatchSize: ip.PatchSize, TemporalPatchSize: ip.TemporalPatchSize, MergeSize: ip.MergeSize,
	}
	tc := hfTokenizerConfig{
		TokenizerClass: "Qwen2Tokenizer", ChatTemplate: qwen2VLChatTemplate, EOSToken: "<|im_end|>",
		PADToken: "<|endoftext|>", ModelMaxLength: maxPositions, ErrorsMode: "replace",
	}
	for name, v := range map[string]any{HFConfigName: cfg, HFGenerationName: gen, HFPreprocessorName: pre, HFTokenizerConfig: tc} {
		if err := writeJSON(filepath.Join(dir, name), v); err != nil {
			return err
		}
	}
	return nil
}

// writeJSON writes v as indented JSON with a final newline.
func writeJSON(path string, v any) error {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("models: export %s: %w", filepath.Base(path), err)
	}
	return atomicfile.Write(path, append(js, '\n'))
}

// ModelTypeQwen25VL is config.json's model_type for Qwen2.5-VL, whose
// exports this package runs (it does not build that architecture).
const ModelTypeQwen25VL = "qwen2_5_vl"

// ManifestFromHF derives a manifest from the Hugging Face files of the
// folder dir, for a Qwen2-VL or Qwen2.5-VL export that has no model.json:
// the architecture and token ids from config.json (text fields at the top
// or under text_config), end-of-sequence ids from generation_config.json
// when present, the image processor from preprocessor_config.json (Qwen2-VL
// defaults when absent), and the onnx-community file names. The roles are
// reward when the decoder outputs scores, else vqa and generator; the name
// is the folder's. Errors wrap ErrBadConfig (an unsupported model_type
// names it) or ErrMissingFile.
func ManifestFromHF(dir string) (*Manifest, error) {
	var raw map[string]json.RawMessage
	if err := readJSON(filepath.Join(dir, HFConfigName), &raw); err != nil {
		return nil, err
	}
	var mt string
	_ = json.Unmarshal(raw["model_type"], &mt)
	if mt != ModelTypeQwen2VL && mt != ModelTypeQwen25VL {
		return nil, fmt.Errorf("%w: %s: unsupported model_type %q (want %s or %s)", ErrBadConfig, HFConfigName, mt, ModelTypeQwen2VL, ModelTypeQwen25VL)
	}
	arch, st, err := archFromHF(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", HFConfigName, err)
	}
	var gen struct {
		EOS json.RawMessage `json:"eos_token_id"`
	}
	if err := readJSON(filepath.Join(dir, HFGenerationName), &gen); err == nil {
		if ids := intList(gen.EOS); len(ids) > 0 {
			st.EOS = ids
		}
	}
	ip, err := imageProcessorFromHF(dir, arch.Vision)
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Name: filepath.Base(filepath.Clean(dir)), Version: "hf", Roles: []Role{RoleVQA, RoleGenerator},
		Architecture: arch, SpecialTokens: st, ImageProcessor: ip, Files: DefaultFiles(),
		Prompt: PromptFormat{Template: "chatml", AnswerFormat: "think_answer"}, Source: "Hugging Face folder (" + mt + ")",
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(m.Files.Weights))); err != nil {
		m.Files.Weights = "" // no training checkpoint: inference only
	}
	probe, _ := withVariant(dir, m.Files, DTypeAuto, false) // the graphs Load will check
	if outputsScores(filepath.Join(dir, filepath.FromSlash(probe.Decoder))) {
		m.Roles = []Role{RoleReward}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// hfText is the text part of a Qwen2-VL config.json.
type hfText struct {
	VocabSize         int             `json:"vocab_size"`
	HiddenSize        int             `json:"hidden_size"`
	IntermediateSize  int             `json:"intermediate_size"`
	NumLayers         int             `json:"num_hidden_layers"`
	NumHeads          int             `json:"num_attention_heads"`
	NumKVHeads        int             `json:"num_key_value_heads"`
	RMSNormEps        float64         `json:"rms_norm_eps"`
	RopeTheta         float64         `json:"rope_theta"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	InitRange         float64         `json:"initializer_range"`
	RopeScaling       json.RawMessage `json:"rope_scaling"`
	RopeParameters    json.RawMessage `json:"rope_parameters"`
	EOS               json.RawMessage `json:"eos_token_id"`
	PAD               *int            `json:"pad_token_id"`
	ImageToken        *int            `json:"image_token_id"`
	VisionStart       *int            `json:"vision_start_token_id"`
	VisionEnd         *int            `json:"vision_end_token_id"`
}

// hfVision is a Qwen2-VL or Qwen2.5-VL vision_config.
type hfVision struct {
	Depth             int `json:"depth"`
	EmbedDim          int `json:"embed_dim"`   // Qwen2-VL width
	HiddenSize        int `json:"hidden_size"` // Qwen2.5-VL width (Qwen2-VL: output width)
	OutHiddenSize     int `json:"out_hidden_size"`
	IntermediateSize  int `json:"intermediate_size"`
	NumHeads          int `json:"num_heads"`
	MLPRatio          int `json:"mlp_ratio"`
	InChans           int `json:"in_chans"`
	InChannels        int `json:"in_channels"`
	PatchSize         int `json:"patch_size"`
	TemporalPatchSize int `json:"temporal_patch_size"`
	SpatialMergeSize  int `json:"spatial_merge_size"`
}

// archFromHF reads the architecture and token ids of a config.json.
func archFromHF(raw map[string]json.RawMessage) (ArchConfig, SpecialTokens, error) {
	var top, text hfText
	if err := unmarshalAll(raw, &top); err != nil {
		return ArchConfig{}, SpecialTokens{}, err
	}
	text = top
	if tc, ok := raw["text_config"]; ok {
		if err := json.Unmarshal(tc, &text); err != nil {
			return ArchConfig{}, SpecialTokens{}, fmt.Errorf("%w: text_config: %v", ErrBadConfig, err)
		}
		text = mergeText(text, top)
	}
	var v hfVision
	if err := json.Unmarshal(raw["vision_config"], &v); err != nil {
		return ArchConfig{}, SpecialTokens{}, fmt.Errorf("%w: vision_config: %v", ErrBadConfig, err)
	}
	var rope struct {
		MRopeSection []int   `json:"mrope_section"`
		RopeTheta    float64 `json:"rope_theta"`
	}
	for _, r := range []json.RawMessage{text.RopeScaling, text.RopeParameters} {
		if len(r) > 0 && string(r) != "null" {
			_ = json.Unmarshal(r, &rope)
		}
	}
	a := ArchConfig{
		VocabSize: text.VocabSize, HiddenSize: text.HiddenSize, IntermediateSize: text.IntermediateSize,
		NumLayers: text.NumLayers, NumHeads: text.NumHeads, NumKVHeads: text.NumKVHeads,
		RMSNormEps: text.RMSNormEps, RopeTheta: cmp.Or(text.RopeTheta, rope.RopeTheta), MRopeSection: rope.MRopeSection,
		TieWordEmbeddings: text.TieWordEmbeddings != nil && *text.TieWordEmbeddings, InitStd: text.InitRange,
		Vision: VisionConfig{
			Depth: v.Depth, EmbedDim: cmp.Or(v.EmbedDim, v.HiddenSize), NumHeads: v.NumHeads, MLPRatio: v.MLPRatio,
			InChannels: cmp.Or(v.InChans, v.InChannels, 3), PatchSize: v.PatchSize,
			TemporalPatchSize: v.TemporalPatchSize, SpatialMergeSize: v.SpatialMergeSize,
		},
	}
	if a.Vision.MLPRatio == 0 && a.Vision.EmbedDim > 0 {
		a.Vision.MLPRatio = max(1, v.IntermediateSize/a.Vision.EmbedDim) // Qwen2.5-VL: descriptive only
	}
	if err := a.Validate(); err != nil {
		return ArchConfig{}, SpecialTokens{}, err
	}
	st := SpecialTokens{BOS: -1, EOS: intList(text.EOS)}
	for _, f := range []struct {
		dst *int
		src *int
		key string
	}{{&st.ImagePad, text.ImageToken, "image_token_id"}, {&st.VisionStart, text.VisionStart, "vision_start_token_id"},
		{&st.VisionEnd, text.VisionEnd, "vision_end_token_id"}} {
		if f.src == nil {
			return ArchConfig{}, SpecialTokens{}, fmt.Errorf("%w: no %s", ErrBadConfig, f.key)
		}
		*f.dst = *f.src
	}
	st.PAD = st.ImagePad
	if text.PAD != nil {
		st.PAD = *text.PAD
	} else if len(st.EOS) > 0 {
		st.PAD = st.EOS[len(st.EOS)-1]
	}
	return a, st, nil
}

// mergeText fills fields text_config leaves zero from the top level.
func mergeText(text, top hfText) hfText {
	if text.EOS == nil {
		text.EOS = top.EOS
	}
	for _, p := range []struct{ dst, src **int }{{&text.PAD, &top.PAD}, {&text.ImageToken, &top.ImageToken},
		{&text.VisionStart, &top.VisionStart}, {&text.VisionEnd, &top.VisionEnd}} {
		if *p.dst == nil {
			*p.dst = *p.src
		}
	}
	if text.TieWordEmbeddings == nil {
		text.TieWordEmbeddings = top.TieWordEmbeddings
	}
	if text.RopeScaling == nil {
		text.RopeScaling = top.RopeScaling
	}
	return text
}

// imageProcessorFromHF reads preprocessor_config.json (Qwen2-VL's defaults
// for v when the folder has none).
func imageProcessorFromHF(dir string, v VisionConfig) (ImageProcessor, error) {
	ip := DefaultImageProcessor(v)
	var pre struct {
		PatchSize         int            `json:"patch_size"`
		TemporalPatchSize int            `json:"temporal_patch_size"`
		MergeSize         int            `json:"merge_size"`
		MinPixels         int            `json:"min_pixels"`
		MaxPixels         int            `json:"max_pixels"`
		Size              map[string]int `json:"size"`
		ImageMean         []float64      `json:"image_mean"`
		ImageStd          []float64      `json:"image_std"`
	}
	err := readJSON(filepath.Join(dir, HFPreprocessorName), &pre)
	if errors.Is(err, ErrMissingFile) {
		return ip, nil
	}
	if err != nil {
		return ip, err
	}
	ip.PatchSize = cmp.Or(pre.PatchSize, ip.PatchSize)
	ip.TemporalPatchSize = cmp.Or(pre.TemporalPatchSize, ip.TemporalPatchSize)
	ip.MergeSize = cmp.Or(pre.MergeSize, ip.MergeSize)
	ip.MinPixels = cmp.Or(pre.MinPixels, pre.Size["shortest_edge"], ip.MinPixels)
	ip.MaxPixels = cmp.Or(pre.MaxPixels, pre.Size["longest_edge"], ip.MaxPixels)
	if len(pre.ImageMean) > 0 {
		ip.ImageMean, ip.ImageStd = pre.ImageMean, pre.ImageStd
	}
	return ip, nil
}

// outputsScores reports whether the decoder graph at path declares a
// scores output (a reward model); false when it cannot be read (Load then
// reports the file).
func outputsScores(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var mp onnxpb.ModelProto
	if proto.Unmarshal(data, &mp) != nil {
		return false
	}
	for _, o := range mp.GetGraph().GetOutput() {
		if o.GetName() == Scores {
			return true
		}
	}
	return false
}

// readJSON decodes the JSON file at path into v; a missing file wraps
// ErrMissingFile, a malformed one ErrBadConfig.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMissingFile, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadConfig, filepath.Base(path), err)
	}
	return nil
}

// unmarshalAll decodes a parsed JSON object into v.
func unmarshalAll(raw map[string]json.RawMessage, v any) error {
	b, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	return nil
}

// intList reads an id or a list of ids ("eos_token_id": 2 or [2, 3]).
func intList(raw json.RawMessage) []int {
	var one int
	if json.Unmarshal(raw, &one) == nil {
		return []int{one}
	}
	var many []int
	_ = json.Unmarshal(raw, &many)
	return many
}
