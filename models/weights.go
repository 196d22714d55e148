package models

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/medgr2/medgr2/graph"
)

// Weight names follow Hugging Face's Qwen2-VL checkpoints; linear weights
// are stored [out, in] as PyTorch does.
const (
	wEmbed  = "model.embed_tokens.weight"
	wNorm   = "model.norm.weight"
	wLMHead = "lm_head.weight"
	wScoreW = "score.weight"
	wScoreB = "score.bias"
	wPatch  = "visual.patch_embed.proj.weight"
)

func layerName(i int, rest string) string { return fmt.Sprintf("model.layers.%d.%s", i, rest) }
func blockName(i int, rest string) string { return fmt.Sprintf("visual.blocks.%d.%s", i, rest) }

// WeightSpecs returns every tensor the bundle's graphs read, in file order:
// vision encoder, embeddings, decoder layers, final norm, and the head
// (lm_head unless tied, score.weight/bias for the reward role).
func WeightSpecs(c ArchConfig, reward bool) []graph.WeightSpec {
	var s []graph.WeightSpec
	add := func(name string, dims ...int64) {
		s = append(s, graph.WeightSpec{Name: name, DType: graph.Float32, Dims: dims})
	}
	v := c.Vision
	e, h, kv := int64(v.EmbedDim), int64(c.HiddenSize), int64(c.NumKVHeads*c.HeadDim())
	add(wPatch, e, int64(v.InChannels), int64(v.TemporalPatchSize), int64(v.PatchSize), int64(v.PatchSize))
	for i := range v.Depth {
		add(blockName(i, "norm1.weight"), e)
		add(blockName(i, "norm1.bias"), e)
		add(blockName(i, "attn.qkv.weight"), 3*e, e)
		add(blockName(i, "attn.qkv.bias"), 3*e)
		add(blockName(i, "attn.proj.weight"), e, e)
		add(blockName(i, "attn.proj.bias"), e)
		add(blockName(i, "norm2.weight"), e)
		add(blockName(i, "norm2.bias"), e)
		add(blockName(i, "mlp.fc1.weight"), int64(v.MLPRatio)*e, e)
		add(blockName(i, "mlp.fc1.bias"), int64(v.MLPRatio)*e)
		add(blockName(i, "mlp.fc2.weight"), e, int64(v.MLPRatio)*e)
		add(blockName(i, "mlp.fc2.bias"), e)
	}
	m := e * int64(v.MergeUnit())
	add("visual.merger.ln_q.weight", e)
	add("visual.merger.ln_q.bias", e)
	add("visual.merger.mlp.0.weight", m, m)
	add("visual.merger.mlp.0.bias", m)
	add("visual.merger.mlp.2.weight", h, m)
	add("visual.merger.mlp.2.bias", h)
	add(wEmbed, int64(c.VocabSize), h)
	for i := range c.NumLayers {
		add(layerName(i, "input_layernorm.weight"), h)
		add(layerName(i, "self_attn.q_proj.weight"), h, h)
		add(layerName(i, "self_attn.q_proj.bias"), h)
		add(layerName(i, "self_attn.k_proj.weight"), kv, h)
		add(layerName(i, "self_attn.k_proj.bias"), kv)
		add(layerName(i, "self_attn.v_proj.weight"), kv, h)
		add(layerName(i, "self_attn.v_proj.bias"), kv)
		add(layerName(i, "self_attn.o_proj.weight"), h, h)
		add(layerName(i, "post_attention_layernorm.weight"), h)
		add(layerName(i, "mlp.gate_proj.weight"), int64(c.IntermediateSize), h)
		add(layerName(i, "mlp.up_proj.weight"), int64(c.IntermediateSize), h)
		add(layerName(i, "mlp.down_proj.weight"), h, int64(c.IntermediateSize))
	}
	add(wNorm, h)
	switch {
	case reward:
		add(wScoreW, 1, h)
		add(wScoreB, 1)
	case !c.TieWordEmbeddings:
		add(wLMHead, int64(c.VocabSize), h)
	}
	return s
}

// RandomWeights returns weights for specs drawn from a PCG generator seeded
// with seed: norm weights 1, biases 0, matrices normal(0, std). The same
// seed gives the same weights.
func RandomWeights(specs []graph.WeightSpec, seed uint64, std float64) []graph.NamedTensor {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]graph.NamedTensor, len(specs))
	for i, s := range specs {
		n := int64(1)
		for _, d := range s.Dims {
			n *= d
		}
		data := make([]float32, n)
		switch {
		case strings.HasSuffix(s.Name, "norm.weight") || strings.Contains(s.Name, "layernorm.weight") ||
			strings.Contains(s.Name, "norm1.weight") || strings.Contains(s.Name, "norm2.weight") || strings.HasSuffix(s.Name, "ln_q.weight"):
			for j := range data {
				data[j] = 1
			}
		case strings.HasSuffix(s.Name, ".bias") && !strings.HasPrefix(s.Name, "model.layers."):
			// zero, like PyTorch's usual init for these biases
		default:
			for j := range data {
				data[j] = float32(rng.NormFloat64() * std)
			}
		}
		out[i] = graph.NamedTensor{Name: s.Name, Tensor: &graph.Tensor{DType: graph.Float32, Dims: s.Dims, F32: data}}
	}
	return out
}
