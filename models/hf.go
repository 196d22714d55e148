package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	return writeFileAtomic(path, append(js, '\n'))
}

// writeFileAtomic writes data to path through a temporary file renamed
// into place, so a session that still maps the old file keeps its bytes
// and a crash never leaves half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("models: write %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(0o644)
	}
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return errors.Join(fmt.Errorf("models: write %s: %w", path, err), os.Remove(tmp.Name()))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return errors.Join(fmt.Errorf("models: write %s: %w", path, err), os.Remove(tmp.Name()))
	}
	return nil
}
