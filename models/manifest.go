package models

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// ManifestName is the manifest's file name inside a bundle.
const ManifestName = "model.json"

// Role is what a bundle can be used for.
type Role string

// Roles a bundle may declare.
const (
	RoleVQA       Role = "vqa"       // answers multiple-choice questions about images
	RoleGenerator Role = "generator" // writes synthetic question/answer/reasoning samples
	RoleReward    Role = "reward"    // scores samples; its decoder outputs scores, not logits
)

// Manifest is a bundle's model.json.
type Manifest struct {
	Name           string         `json:"name"`             // model name, e.g. "medgr2-tiny"
	Version        string         `json:"version"`          // model version
	Roles          []Role         `json:"roles"`            // at least one; reward excludes the others
	Architecture   ArchConfig     `json:"architecture"`     // the graphs' architecture
	SpecialTokens  SpecialTokens  `json:"special_tokens"`   // ids from tokenizer.json
	Prompt         PromptFormat   `json:"prompt"`           // how prompts and answers are formatted
	ImageProcessor ImageProcessor `json:"image_processor"`  // preprocessing settings
	Files          Files          `json:"files"`            // file names inside the bundle
	Source         string         `json:"source,omitempty"` // "medgr2 export" or where it came from
	Seed           *uint64        `json:"seed,omitempty"`   // random-init seed, when weights were random
}

// SpecialTokens holds special token ids (Hugging Face names).
type SpecialTokens struct {
	BOS         int   `json:"bos_token_id"`          // -1 when the tokenizer has none
	EOS         []int `json:"eos_token_id"`          // generation stops at any of these
	PAD         int   `json:"pad_token_id"`          // padding id
	ImagePad    int   `json:"image_token_id"`        // <|image_pad|>, replaced by image features
	VisionStart int   `json:"vision_start_token_id"` // <|vision_start|>
	VisionEnd   int   `json:"vision_end_token_id"`   // <|vision_end|>
}

// PromptFormat describes prompts and answers.
type PromptFormat struct {
	Template     string `json:"template"`      // "chatml" (Qwen2 <|im_start|>role … <|im_end|>)
	System       string `json:"system"`        // default system message
	AnswerFormat string `json:"answer_format"` // "think_answer": <think>…</think><answer>X</answer>
}

// ImageProcessor mirrors Hugging Face preprocessor_config.json (and
// preprocessing.Config).
type ImageProcessor struct {
	PatchSize         int       `json:"patch_size"`
	TemporalPatchSize int       `json:"temporal_patch_size"`
	MergeSize         int       `json:"merge_size"`
	MinPixels         int       `json:"min_pixels"`
	MaxPixels         int       `json:"max_pixels"`
	ImageMean         []float64 `json:"image_mean"`
	ImageStd          []float64 `json:"image_std"`
}

// Files names the bundle's files, relative to the bundle folder. ONNX names
// may carry a suffix (decoder_model_merged_q4.onnx).
type Files struct {
	VisionEncoder string `json:"vision_encoder"`
	EmbedTokens   string `json:"embed_tokens"`
	Decoder       string `json:"decoder"`
	Weights       string `json:"weights"` // safetensors training checkpoint; "" when the bundle has none (serving only)
	Tokenizer     string `json:"tokenizer"`
}

// DefaultFiles returns the onnx-community layout: graphs and weights under
// onnx/, tokenizer.json at the top.
func DefaultFiles() Files {
	return Files{
		VisionEncoder: "onnx/vision_encoder.onnx",
		EmbedTokens:   "onnx/embed_tokens.onnx",
		Decoder:       "onnx/decoder_model_merged.onnx",
		Weights:       "onnx/model.safetensors",
		Tokenizer:     "tokenizer.json",
	}
}

// DefaultImageProcessor returns Qwen2-VL's preprocessing settings for cfg.
func DefaultImageProcessor(cfg VisionConfig) ImageProcessor {
	return ImageProcessor{
		PatchSize: cfg.PatchSize, TemporalPatchSize: cfg.TemporalPatchSize, MergeSize: cfg.SpatialMergeSize,
		MinPixels: 56 * 56, MaxPixels: 28 * 28 * 256,
		ImageMean: []float64{0.48145466, 0.4578275, 0.40821073},
		ImageStd:  []float64{0.26862954, 0.26130258, 0.27577711},
	}
}

// HasRole reports whether the manifest declares r.
func (m *Manifest) HasRole(r Role) bool {
	for _, x := range m.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// ParseManifest decodes and validates model.json bytes. Unknown fields are
// errors, so a typo does not silently fall back to a default.
func ParseManifest(data []byte) (*Manifest, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks the manifest's fields; errors wrap ErrBadManifest (or
// ErrBadConfig for the architecture).
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadManifest, fmt.Sprintf(format, args...))
	}
	if m.Name == "" || m.Version == "" {
		return bad("name and version are required")
	}
	if len(m.Roles) == 0 {
		return bad("roles must list at least one of vqa, generator, reward")
	}
	for _, r := range m.Roles {
		if r != RoleVQA && r != RoleGenerator && r != RoleReward {
			return bad("unknown role %q", r)
		}
	}
	if m.HasRole(RoleReward) && len(m.Roles) > 1 {
		return bad("a reward bundle outputs scores, not logits, and cannot have other roles")
	}
	if err := m.Architecture.Validate(); err != nil {
		return err
	}
	if err := m.validateTokens(); err != nil {
		return err
	}
	ip, v := m.ImageProcessor, m.Architecture.Vision
	if ip.PatchSize != v.PatchSize || ip.TemporalPatchSize != v.TemporalPatchSize || ip.MergeSize != v.SpatialMergeSize {
		return bad("image_processor patch sizes (%d, %d, %d) differ from vision_config (%d, %d, %d)",
			ip.PatchSize, ip.TemporalPatchSize, ip.MergeSize, v.PatchSize, v.TemporalPatchSize, v.SpatialMergeSize)
	}
	if len(ip.ImageMean) != v.InChannels || len(ip.ImageStd) != v.InChannels || ip.MinPixels <= 0 || ip.MaxPixels < ip.MinPixels {
		return bad("image_processor needs %d-channel mean/std and 0 < min_pixels <= max_pixels", v.InChannels)
	}
	for _, f := range []struct{ key, path string }{
		{"vision_encoder", m.Files.VisionEncoder}, {"embed_tokens", m.Files.EmbedTokens},
		{"decoder", m.Files.Decoder}, {"weights", m.Files.Weights}, {"tokenizer", m.Files.Tokenizer},
	} {
		if f.key == "weights" && f.path == "" {
			continue // no training checkpoint: the bundle serves but does not train
		}
		if f.path == "" || filepath.IsAbs(f.path) || strings.HasPrefix(filepath.Clean(f.path), "..") {
			return bad("files.%s must be a relative path inside the bundle, got %q", f.key, f.path)
		}
	}
	return nil
}

func (m *Manifest) validateTokens() error {
	st, vocab := m.SpecialTokens, m.Architecture.VocabSize
	ids := map[string]int{"pad_token_id": st.PAD, "image_token_id": st.ImagePad,
		"vision_start_token_id": st.VisionStart, "vision_end_token_id": st.VisionEnd}
	for i, e := range st.EOS {
		ids[fmt.Sprintf("eos_token_id[%d]", i)] = e
	}
	if st.BOS != -1 {
		ids["bos_token_id"] = st.BOS
	}
	for k, id := range ids {
		if id < 0 || id >= vocab {
			return fmt.Errorf("%w: special_tokens.%s = %d outside vocab of %d", ErrBadManifest, k, id, vocab)
		}
	}
	if len(st.EOS) == 0 {
		return fmt.Errorf("%w: special_tokens.eos_token_id is empty", ErrBadManifest)
	}
	return nil
}
