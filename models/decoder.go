package models

import (
	"fmt"
	"math"

	"github.com/medgr2/medgr2/graph"
)

// Graph input and output names, as Optimum / onnx-community Qwen2-VL
// exports use them.
const (
	InputsEmbeds  = "inputs_embeds"
	AttentionMask = "attention_mask"
	PositionIDs   = "position_ids"
	InputIDs      = "input_ids"
	PixelValues   = "pixel_values"
	GridTHW       = "grid_thw"
	Logits        = "logits"
	// NumLogitsToKeep is the decoder's optional input saying how many
	// trailing positions get logits (0: all); transformers.js and medgr2
	// feed 1 when only the last is read.
	NumLogitsToKeep = "num_logits_to_keep"
	Scores          = "scores"
	ImageFeatures   = "image_features"
)

// PastKey returns the name of layer i's past key input.
func PastKey(i int) string { return fmt.Sprintf("past_key_values.%d.key", i) }

// PastValue returns the name of layer i's past value input.
func PastValue(i int) string { return fmt.Sprintf("past_key_values.%d.value", i) }

// PresentKey returns the name of layer i's present key output.
func PresentKey(i int) string { return fmt.Sprintf("present.%d.key", i) }

// PresentValue returns the name of layer i's present value output.
func PresentValue(i int) string { return fmt.Sprintf("present.%d.value", i) }

// decoderCtx holds the per-graph tensors every layer shares.
type decoderCtx struct {
	cfg      ArchConfig
	cos, sin *graph.Value // [B, 1, 1, S, D] for q and [B, 1, S, D] via squeeze
	cosK     *graph.Value
	sinK     *graph.Value
	allowed  *graph.Value // bool [B, 1, 1, S, T]
	b, s, t  graph.Dim
}

// BuildDecoder builds decoder_model_merged.onnx: inputs_embeds [B, S, H],
// attention_mask [B, T] (int64, 1 = real token), position_ids [3, B, S]
// and past_key_values.{i}.key|value [B, kv_heads, P, head_dim] (P may be
// 0) give logits [B, S, vocab] (scores [B] for the reward role) and
// present.{i}.key|value [B, kv_heads, T, head_dim], where T = P + S.
func BuildDecoder(cfg ArchConfig, opts BuildOptions) (*graph.Graph, error) {
	m, err := newModelBuilder("decoder_model_merged", cfg, opts)
	if err != nil {
		return nil, err
	}
	g := m.g
	bd, sd, pd := opts.dim(opts.Batch, "batch_size"), opts.dim(opts.Seq, "sequence_length"), opts.dim(opts.Past, "past_sequence_length")
	td := graph.Sym("total_sequence_length")
	if sd.Fixed() && pd.Fixed() {
		td = graph.D(sd.Size + pd.Size)
	}
	h, kvh, hd := int64(cfg.HiddenSize), int64(cfg.NumKVHeads), int64(cfg.HeadDim())
	x := g.Input(InputsEmbeds, graph.Float32, graph.Shape{bd, sd, graph.D(h)})
	mask := g.Input(AttentionMask, graph.Int64, graph.Shape{bd, td})
	pos := g.Input(PositionIDs, graph.Int64, graph.Shape{graph.D(3), bd, sd})
	type kv struct{ k, v *graph.Value }
	past := make([]kv, cfg.NumLayers)
	for i := range past {
		shape := graph.Shape{bd, graph.D(kvh), pd, graph.D(hd)}
		past[i] = kv{g.Input(PastKey(i), graph.Float32, shape), g.Input(PastValue(i), graph.Float32, shape)}
	}
	dc := m.decoderContext(cfg, x, mask, pos, bd, sd, td)
	for i := range cfg.NumLayers {
		var pk, pv *graph.Value
		x, pk, pv = m.decoderLayer(dc, i, x, past[i].k, past[i].v)
		presentShape := graph.Shape{bd, graph.D(kvh), td, graph.D(hd)}
		g.Output(PresentKey(i), pk, presentShape...)
		g.Output(PresentValue(i), pv, presentShape...)
	}
	x = m.rmsNorm(x, wNorm, cfg.RMSNormEps)
	if opts.Reward {
		g.Output(Scores, m.rewardHead(x, mask, dc), bd)
	} else {
		head := wLMHead
		if cfg.TieWordEmbeddings {
			head = wEmbed
		}
		ld := sd
		if !opts.ParamsAsInputs {
			// Inference graphs compute logits only for the positions the
			// caller reads (the last, when generating or scoring letters).
			keep := g.InputAnyRank(NumLogitsToKeep, graph.Int64, graph.Shape{graph.D(1)})
			x, ld = g.SliceTail(x, keep, 1, "logits_length"), graph.Sym("logits_length")
		}
		g.Output(Logits, m.linear(x, head, ""), bd, ld, graph.D(int64(cfg.VocabSize)))
	}
	return m.finish()
}

// decoderContext computes the multimodal RoPE tables and the attention mask.
func (m *modelBuilder) decoderContext(cfg ArchConfig, x, mask, pos *graph.Value, bd, sd, td graph.Dim) *decoderCtx {
	g := m.g
	hd := cfg.HeadDim()
	// mrope: frequency i takes its position from row section(i) of position_ids.
	sel := make([]float32, 3*hd/2)
	f := 0
	for row, n := range cfg.MRopeSection {
		for range n {
			sel[row*hd/2+f] = 1
			f++
		}
	}
	selT := g.Const(&graph.Tensor{DType: graph.Float32, Dims: []int64{3, 1, 1, int64(hd / 2)}, F32: sel})
	freqs := g.Mul(g.Unsqueeze(g.Cast(pos, graph.Float32), 3), g.ConstFloat32s(invFreq(cfg.RopeTheta, hd)...))
	freqs = g.ReduceSum(g.Mul(freqs, selT), []int64{0}, false) // [B, S, D/2]
	emb := g.Concat(-1, freqs, freqs)                          // [B, S, D]
	cosK, sinK := g.Unsqueeze(g.Cos(emb), 1), g.Unsqueeze(g.Sin(emb), 1)

	// allowed[b, q, k] = k <= P+q && mask[b, k] != 0
	one, zero := g.ScalarInt64(1), g.ScalarInt64(0)
	tLen := g.Gather(g.ShapeOf(mask), g.ScalarInt64(1), 0)
	sLen := g.Gather(g.ShapeOf(x), g.ScalarInt64(1), 0)
	qPos := g.Range(g.Sub(tLen, sLen), tLen, one, sd)
	kPos := g.Range(zero, tLen, one, td)
	causal := g.LessOrEqual(g.Unsqueeze(kPos, 0), g.Unsqueeze(qPos, 1)) // [S, T]
	valid := g.Unsqueeze(g.Cast(mask, graph.Bool), 1, 2, 3)             // [B, 1, 1, 1, T]
	return &decoderCtx{
		cfg: cfg, cosK: cosK, sinK: sinK,
		cos: g.Unsqueeze(cosK, 1), sin: g.Unsqueeze(sinK, 1),
		allowed: g.And(causal, valid), b: bd, s: sd, t: td,
	}
}

// decoderLayer is one pre-norm block: x + attn(norm(x)), then + mlp(norm(x)).
func (m *modelBuilder) decoderLayer(dc *decoderCtx, i int, x, pastK, pastV *graph.Value) (out, presentK, presentV *graph.Value) {
	g, cfg := m.g, dc.cfg
	kvh, hd := int64(cfg.NumKVHeads), int64(cfg.HeadDim())
	grp := int64(cfg.NumHeads / cfg.NumKVHeads)
	hn := m.rmsNorm(x, layerName(i, "input_layernorm.weight"), cfg.RMSNormEps)
	q := m.linear(hn, layerName(i, "self_attn.q_proj.weight"), layerName(i, "self_attn.q_proj.bias"))
	k := m.linear(hn, layerName(i, "self_attn.k_proj.weight"), layerName(i, "self_attn.k_proj.bias"))
	v := m.linear(hn, layerName(i, "self_attn.v_proj.weight"), layerName(i, "self_attn.v_proj.bias"))
	// q: [B, S, KVH, G, D] → [B, KVH, G, S, D]; k, v: [B, KVH, S, D]
	q = g.Transpose(g.Reshape(q, 0, 0, kvh, grp, hd), 0, 2, 3, 1, 4)
	k = g.Transpose(g.Reshape(k, 0, 0, kvh, hd), 0, 2, 1, 3)
	v = g.Transpose(g.Reshape(v, 0, 0, kvh, hd), 0, 2, 1, 3)
	q = m.rope(q, dc.cos, dc.sin, hd)
	k = m.rope(k, dc.cosK, dc.sinK, hd)
	presentK = g.Concat(2, pastK, k)
	presentV = g.Concat(2, pastV, v)
	// grouped-query attention: broadcast each kv head over its query group
	kT := g.Unsqueeze(g.Transpose(presentK, 0, 1, 3, 2), 2) // [B, KVH, 1, D, T]
	scores := g.Mul(g.MatMul(q, kT), g.ScalarFloat32(float32(1/math.Sqrt(float64(hd)))))
	scores = g.Where(dc.allowed, scores, g.ScalarFloat32(maskValue))
	probs := g.Softmax(scores, -1)
	ctx := g.MatMul(probs, g.Unsqueeze(presentV, 2)) // [B, KVH, G, S, D]
	ctx = g.Reshape(g.Transpose(ctx, 0, 3, 1, 2, 4), 0, 0, int64(cfg.HiddenSize))
	x = g.Add(x, m.linear(ctx, layerName(i, "self_attn.o_proj.weight"), ""))
	hn = m.rmsNorm(x, layerName(i, "post_attention_layernorm.weight"), cfg.RMSNormEps)
	gate := m.silu(m.linear(hn, layerName(i, "mlp.gate_proj.weight"), ""))
	up := m.linear(hn, layerName(i, "mlp.up_proj.weight"), "")
	x = g.Add(x, m.linear(g.Mul(gate, up), layerName(i, "mlp.down_proj.weight"), ""))
	return x, presentK, presentV
}

// rewardHead reads the hidden state at each row's last real token (the last
// position whose attention_mask is 1, with left or right padding) and maps
// it to one score: [B].
func (m *modelBuilder) rewardHead(x, mask *graph.Value, dc *decoderCtx) *graph.Value {
	g := m.g
	one, zero := g.ScalarInt64(1), g.ScalarInt64(0)
	tLen := g.Gather(g.ShapeOf(mask), g.ScalarInt64(1), 0)
	sLen := g.Gather(g.ShapeOf(x), g.ScalarInt64(1), 0)
	ranks := g.Add(g.Range(zero, tLen, one, dc.t), one)           // 1..T
	last := g.ArgMax(g.Mul(mask, g.Unsqueeze(ranks, 0)), 1, true) // [B, 1] index into T
	last = g.Max(g.Sub(last, g.Sub(tLen, sLen)), zero)            // index into S
	idx := g.Expand(g.Unsqueeze(last, 2), 1, 1, int64(dc.cfg.HiddenSize))
	h := g.GatherElements(x, idx, 1)   // [B, 1, H]
	s := m.linear(h, wScoreW, wScoreB) // [B, 1, 1]
	return g.Reshape(s, -1)            // [B]
}

// BuildEmbed builds embed_tokens.onnx: input_ids [B, S] (int64) →
// inputs_embeds [B, S, hidden].
func BuildEmbed(cfg ArchConfig, opts BuildOptions) (*graph.Graph, error) {
	m, err := newModelBuilder("embed_tokens", cfg, opts)
	if err != nil {
		return nil, err
	}
	bd, sd := opts.dim(opts.Batch, "batch_size"), opts.dim(opts.Seq, "sequence_length")
	ids := m.g.Input(InputIDs, graph.Int64, graph.Shape{bd, sd})
	m.g.Output(InputsEmbeds, m.g.Gather(m.w(wEmbed), ids, 0))
	return m.finish()
}
