package models

import (
	"fmt"
)

// ArchConfig is the architecture of a Qwen2-VL-style model: a text decoder
// (RMSNorm, multimodal RoPE, grouped-query attention, SwiGLU) and a ViT
// vision encoder. JSON names follow Hugging Face's Qwen2-VL config.json.
type ArchConfig struct {
	VocabSize         int          `json:"vocab_size"`          // tokenizer vocabulary, including added tokens
	HiddenSize        int          `json:"hidden_size"`         // decoder width
	IntermediateSize  int          `json:"intermediate_size"`   // SwiGLU inner width
	NumLayers         int          `json:"num_hidden_layers"`   // decoder layers
	NumHeads          int          `json:"num_attention_heads"` // query heads
	NumKVHeads        int          `json:"num_key_value_heads"` // key/value heads; divides NumHeads
	RMSNormEps        float64      `json:"rms_norm_eps"`        // RMSNorm epsilon
	RopeTheta         float64      `json:"rope_theta"`          // RoPE base
	MRopeSection      []int        `json:"mrope_section"`       // temporal, height, width rotary pairs; sums to head_dim/2
	TieWordEmbeddings bool         `json:"tie_word_embeddings"` // lm_head reuses embed_tokens
	InitStd           float64      `json:"initializer_range"`   // std of random init
	Vision            VisionConfig `json:"vision_config"`       // the vision encoder
}

// VisionConfig is the ViT vision encoder of ArchConfig (Hugging Face
// Qwen2-VL vision_config names). Its output width is ArchConfig.HiddenSize.
type VisionConfig struct {
	Depth             int `json:"depth"`               // transformer blocks
	EmbedDim          int `json:"embed_dim"`           // ViT width
	NumHeads          int `json:"num_heads"`           // attention heads
	MLPRatio          int `json:"mlp_ratio"`           // MLP width = MLPRatio·EmbedDim
	InChannels        int `json:"in_chans"`            // 3
	PatchSize         int `json:"patch_size"`          // 14
	TemporalPatchSize int `json:"temporal_patch_size"` // 2
	SpatialMergeSize  int `json:"spatial_merge_size"`  // 2 (2×2 merge)
}

// DefaultConfig returns the project's small architecture (a few million
// parameters, trainable on two CPU cores) for a tokenizer of vocabSize.
func DefaultConfig(vocabSize int) ArchConfig {
	return ArchConfig{
		VocabSize: vocabSize, HiddenSize: 128, IntermediateSize: 352, NumLayers: 4,
		NumHeads: 4, NumKVHeads: 2, RMSNormEps: 1e-6, RopeTheta: 10000,
		MRopeSection: []int{4, 6, 6}, TieWordEmbeddings: true, InitStd: 0.02,
		Vision: VisionConfig{
			Depth: 2, EmbedDim: 96, NumHeads: 4, MLPRatio: 4, InChannels: 3,
			PatchSize: 14, TemporalPatchSize: 2, SpatialMergeSize: 2,
		},
	}
}

// HeadDim returns the per-head width of the decoder.
func (c ArchConfig) HeadDim() int { return c.HiddenSize / c.NumHeads }

// PatchDim returns the length of one pixel_values row: channels ×
// temporal patch × patch × patch (3·2·14·14 = 1176).
func (v VisionConfig) PatchDim() int {
	return v.InChannels * v.TemporalPatchSize * v.PatchSize * v.PatchSize
}

// HeadDim returns the per-head width of the vision encoder.
func (v VisionConfig) HeadDim() int { return v.EmbedDim / v.NumHeads }

// MergeUnit returns the number of patches merged into one image token.
func (v VisionConfig) MergeUnit() int { return v.SpatialMergeSize * v.SpatialMergeSize }

// Validate checks the config for sizes that cannot build a model; the error
// wraps ErrBadConfig and names the field.
func (c ArchConfig) Validate() error {
	checks := []struct {
		ok   bool
		what string
	}{
		{c.VocabSize > 0, "vocab_size must be positive"},
		{c.HiddenSize > 0 && c.NumHeads > 0 && c.HiddenSize%c.NumHeads == 0, "hidden_size must be a positive multiple of num_attention_heads"},
		{c.NumKVHeads > 0 && c.NumHeads%max(c.NumKVHeads, 1) == 0, "num_key_value_heads must divide num_attention_heads"},
		{c.IntermediateSize > 0, "intermediate_size must be positive"},
		{c.NumLayers > 0, "num_hidden_layers must be positive"},
		{c.NumHeads > 0 && c.HeadDim()%2 == 0, "head_dim must be even"},
		{c.RMSNormEps > 0, "rms_norm_eps must be positive"},
		{c.RopeTheta > 1, "rope_theta must be > 1"},
		{len(c.MRopeSection) == 3 && sum(c.MRopeSection)*2 == c.HeadDim(), "mrope_section must have 3 entries summing to head_dim/2"},
		{c.InitStd >= 0, "initializer_range must not be negative"},
	}
	for _, ch := range checks {
		if !ch.ok {
			return fmt.Errorf("%w: %s", ErrBadConfig, ch.what)
		}
	}
	if err := c.Vision.validate(); err != nil {
		return err
	}
	return nil
}

func (v VisionConfig) validate() error {
	checks := []struct {
		ok   bool
		what string
	}{
		{v.Depth > 0, "vision_config.depth must be positive"},
		{v.EmbedDim > 0 && v.NumHeads > 0 && v.EmbedDim%v.NumHeads == 0, "vision_config.embed_dim must be a positive multiple of num_heads"},
		{v.NumHeads > 0 && v.HeadDim()%4 == 0, "vision head_dim must be a multiple of 4 (2-D rotary)"},
		{v.MLPRatio > 0, "vision_config.mlp_ratio must be positive"},
		{v.InChannels > 0 && v.PatchSize > 0 && v.TemporalPatchSize > 0, "vision patch sizes must be positive"},
		{v.SpatialMergeSize == 2, "vision_config.spatial_merge_size must be 2"},
	}
	for _, ch := range checks {
		if !ch.ok {
			return fmt.Errorf("%w: %s", ErrBadConfig, ch.what)
		}
	}
	return nil
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}
