package models

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/runtime/generate"
)

// Decoder is a prefilled batch with its KV cache: a generate.Session that
// advances every row by one token per Next. The cache is never copied in
// Go: each step's present.* outputs are written by ORT into one of two
// preallocated buffer sets and fed back unchanged as the next step's
// past_key_values.*; the attention mask grows by one column of ones, and
// left padding stays masked. A Decoder is used by one goroutine at a time;
// Close releases it.
type Decoder struct {
	v          *VLM
	rows, size int     // batch size and current total length T
	next       []int64 // per row: position of the next token

	mask []int64 // attention_mask [B, T] laid out in a buffer of capacity B·cap
	ids  []int64 // input_ids [B, 1] of the step
	pos  []int64 // position_ids [3, B, 1] of the step

	idsT, posT, embT, logitsT *runtime.Tensor
	logits                    []float32 // [B, vocab] as float32, what Next returns
	stepLogits                floatBuf  // [B, vocab] in the graph's dtype, backs logitsT

	past []*runtime.Tensor     // current cache: key, value per layer
	pool [2][]floatBuf         // two buffer sets in the cache dtype; pool[cur] backs past
	cur  int                   // which pool backs past
	in   []runtime.NamedTensor // reused input list
	out  []runtime.NamedTensor // reused output list
}

// Prefill runs the prompts through the model in one pass, filling the KV
// cache, and returns the logits after each row's last token together with
// a Decoder positioned after the prompts. capacity is the number of tokens
// the caller expects to add (the cache buffers grow if it is exceeded).
// The caller closes the Decoder. Rows are left-padded to a common length.
// It encodes the images first (ImageFeatures).
func (v *VLM) Prefill(ctx context.Context, prompts []Prompt, capacity int) (generate.Logits, *Decoder, error) {
	f, err := v.ImageFeatures(ctx, prompts)
	if err != nil {
		return generate.Logits{}, nil, err
	}
	return v.PrefillWith(ctx, prompts, capacity, f)
}

// PrefillWith is Prefill with the prompts' image features f computed
// beforehand by ImageFeatures.
func (v *VLM) PrefillWith(ctx context.Context, prompts []Prompt, capacity int, f Features) (generate.Logits, *Decoder, error) {
	if v.reward {
		return generate.Logits{}, nil, fmt.Errorf("%w: the reward decoder outputs scores, not logits", ErrRole)
	}
	b, embeds, err := v.prepare(ctx, prompts, f)
	if err != nil {
		return generate.Logits{}, nil, err
	}
	d, err := v.newDecoder(b, capacity)
	if err != nil {
		return generate.Logits{}, nil, err
	}
	first, err := d.prefill(ctx, b, embeds)
	if err != nil {
		return generate.Logits{}, nil, errors.Join(err, d.Close())
	}
	return first, d, nil
}

// newDecoder allocates the step buffers for a batch.
func (v *VLM) newDecoder(b *batch, capacity int) (*Decoder, error) {
	B, V, H := b.rows, v.cfg.VocabSize, v.cfg.HiddenSize
	c := b.length + max(capacity, 1)
	half := v.bundle.Names.Half
	d := &Decoder{v: v, rows: B, size: b.length, next: b.next,
		mask: make([]int64, B*c), ids: make([]int64, B), pos: make([]int64, 3*B), logits: make([]float32, B*V),
		stepLogits: newFloatBuf(half.Logits, B*V, 0)}
	if !half.Logits {
		d.logits = d.stepLogits.f32 // ORT writes the returned logits directly
	}
	copy(d.mask, b.mask)
	kv := B * v.cfg.NumKVHeads * c * v.cfg.HeadDim()
	for p := range d.pool {
		d.pool[p] = make([]floatBuf, 2*v.cfg.NumLayers)
		for j := range d.pool[p] {
			d.pool[p][j] = newFloatBuf(half.Cache, 0, kv)
		}
	}
	var errs [4]error
	d.idsT, errs[0] = runtime.NewTensor([]int64{int64(B), 1}, d.ids)
	d.posT, errs[1] = runtime.NewTensor([]int64{3, int64(B), 1}, d.pos)
	// The step's inputs_embeds goes from embed_tokens to the decoder in
	// the graphs' dtype, never through Go.
	d.embT, errs[2] = newFloatBuf(half.Embeds, B*H, 0).tensor([]int64{int64(B), 1, int64(H)})
	d.logitsT, errs[3] = d.stepLogits.tensor([]int64{int64(B), 1, int64(V)})
	if err := errors.Join(errs[:]...); err != nil {
		return nil, errors.Join(fmt.Errorf("models: decoder buffers: %w", err), d.Close())
	}
	return d, nil
}

// prefill runs the whole prompt batch with an empty cache.
func (d *Decoder) prefill(ctx context.Context, b *batch, embeds floatBuf) (_ generate.Logits, err error) {
	v := d.v
	ins, err := v.prefillInputs(b, embeds, d.mask[:b.rows*b.length])
	if err != nil {
		return generate.Logits{}, err
	}
	defer func() { err = errors.Join(err, closeNamed(ins)) }()
	B, T, V := b.rows, b.length, v.cfg.VocabSize
	L := v.logitsLength(T)
	full := newFloatBuf(v.bundle.Names.Half.Logits, B*L*V, 0)
	lt, err := full.tensor([]int64{int64(B), int64(L), int64(V)})
	if err != nil {
		return generate.Logits{}, fmt.Errorf("models: logits: %w", err)
	}
	defer func() { err = errors.Join(err, lt.Close()) }()
	present, err := d.presentTensors(0, T)
	if err != nil {
		return generate.Logits{}, err
	}
	outs := append([]runtime.NamedTensor{{Name: Logits, Tensor: lt}}, d.namedPresent(present)...)
	if err := v.decoder.RunInto(ctx, v.withKeep(ins), outs); err != nil {
		return generate.Logits{}, errors.Join(fmt.Errorf("models: decoder prefill: %w", err), runtime.CloseAll(present...))
	}
	d.past, d.cur = present, 0
	for r := range B {
		full.read(d.logits[r*V:(r+1)*V], (r*L+L-1)*V)
	}
	return generate.Logits{Data: d.logits, Rows: B, Vocab: V}, nil
}

// presentTensors wraps pool p's buffers as present.* tensors of length T,
// growing a buffer whose capacity is too small (pool p is not in use).
func (d *Decoder) presentTensors(p, T int) ([]*runtime.Tensor, error) {
	cfg := d.v.cfg
	shape := []int64{int64(d.rows), int64(cfg.NumKVHeads), int64(T), int64(cfg.HeadDim())}
	n := d.rows * cfg.NumKVHeads * T * cfg.HeadDim()
	ts := make([]*runtime.Tensor, len(d.pool[p]))
	for j, buf := range d.pool[p] {
		buf = buf.resized(n)
		d.pool[p][j] = buf
		t, err := buf.tensor(shape)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("models: present buffer: %w", err), runtime.CloseAll(ts...))
		}
		ts[j] = t
	}
	return ts, nil
}

// namedPresent names present tensors (key, value per layer) for RunInto.
func (d *Decoder) namedPresent(ts []*runtime.Tensor) []runtime.NamedTensor {
	out := make([]runtime.NamedTensor, len(ts))
	for i, t := range ts {
		name := PresentKey(i / 2)
		if i%2 == 1 {
			name = PresentValue(i / 2)
		}
		out[i] = runtime.NamedTensor{Name: name, Tensor: t}
	}
	return out
}

// Next feeds tokens[i] to row i and returns the logits of the following
// position of every row (generate.Session). The returned Data is reused by
// the next call.
func (d *Decoder) Next(ctx context.Context, tokens []int) (_ generate.Logits, err error) {
	if d.past == nil {
		return generate.Logits{}, fmt.Errorf("%w: Decoder", ErrClosed)
	}
	if len(tokens) != d.rows {
		return generate.Logits{}, fmt.Errorf("%w: %d tokens for %d rows", ErrBadRequest, len(tokens), d.rows)
	}
	v := d.v
	for i, t := range tokens {
		if t < 0 || t >= v.cfg.VocabSize {
			return generate.Logits{}, fmt.Errorf("%w: token id %d outside vocab of %d", ErrBadRequest, t, v.cfg.VocabSize)
		}
		d.ids[i] = int64(t)
	}
	if err := v.embed.RunInto(ctx, []runtime.NamedTensor{{Name: InputIDs, Tensor: d.idsT}},
		[]runtime.NamedTensor{{Name: InputsEmbeds, Tensor: d.embT}}); err != nil {
		return generate.Logits{}, fmt.Errorf("models: embed step: %w", err)
	}
	T := d.size + 1
	maskT, err := d.growMask(T)
	if err != nil {
		return generate.Logits{}, err
	}
	defer func() { err = errors.Join(err, maskT.Close()) }()
	for r := range d.rows {
		for k := range 3 {
			d.pos[k*d.rows+r] = d.next[r]
		}
	}
	present, err := d.presentTensors(1-d.cur, T)
	if err != nil {
		return generate.Logits{}, err
	}
	if err := v.decoder.RunInto(ctx, d.stepInputs(maskT), d.stepOutputs(present)); err != nil {
		return generate.Logits{}, errors.Join(fmt.Errorf("models: decode step: %w", err), runtime.CloseAll(present...))
	}
	old := d.past
	d.past, d.cur, d.size = present, 1-d.cur, T
	for r := range d.next {
		d.next[r]++
	}
	if err := runtime.CloseAll(old...); err != nil {
		return generate.Logits{}, fmt.Errorf("models: release cache: %w", err)
	}
	if d.stepLogits.half {
		d.stepLogits.read(d.logits, 0) // widened for sampling
	}
	return generate.Logits{Data: d.logits, Rows: d.rows, Vocab: v.cfg.VocabSize}, nil
}

// growMask lays the [B, T-1] mask out as [B, T] in place (rows move right,
// last row first, so nothing is overwritten before it moves) with a 1 in
// the new column, and wraps it as a tensor.
func (d *Decoder) growMask(T int) (*runtime.Tensor, error) {
	if need := d.rows * T; need > len(d.mask) {
		m := make([]int64, need+need/2)
		copy(m, d.mask[:d.rows*(T-1)])
		d.mask = m
	}
	old := T - 1
	for r := d.rows - 1; r >= 0; r-- {
		copy(d.mask[r*T:r*T+old], d.mask[r*old:(r+1)*old])
		d.mask[r*T+old] = 1
	}
	t, err := runtime.NewTensor([]int64{int64(d.rows), int64(T)}, d.mask[:d.rows*T])
	if err != nil {
		return nil, fmt.Errorf("models: attention_mask: %w", err)
	}
	return t, nil
}

// stepInputs fills the reused input list for one decode step.
func (d *Decoder) stepInputs(mask *runtime.Tensor) []runtime.NamedTensor {
	if d.in == nil {
		d.in = make([]runtime.NamedTensor, 3+len(d.past))
		d.in[0].Name, d.in[1].Name, d.in[2].Name = InputsEmbeds, AttentionMask, PositionIDs
		for i := range d.past {
			d.in[3+i].Name = PastKey(i / 2)
			if i%2 == 1 {
				d.in[3+i].Name = PastValue(i / 2)
			}
		}
		d.in = d.v.withKeep(d.in)
	}
	d.in[0].Tensor, d.in[1].Tensor, d.in[2].Tensor = d.embT, mask, d.posT
	for i, t := range d.past {
		d.in[3+i].Tensor = t
	}
	return d.in
}

// stepOutputs fills the reused output list for one decode step.
func (d *Decoder) stepOutputs(present []*runtime.Tensor) []runtime.NamedTensor {
	if d.out == nil {
		d.out = append([]runtime.NamedTensor{{Name: Logits}}, d.namedPresent(present)...)
	}
	d.out[0].Tensor = d.logitsT
	for i, t := range present {
		d.out[1+i].Tensor = t
	}
	return d.out
}

// Len returns the current sequence length (padding, prompt and generated
// tokens) of the batch.
func (d *Decoder) Len() int { return d.size }

// Close releases the cache and the step tensors. It is nil-safe and
// idempotent.
func (d *Decoder) Close() error {
	if d == nil {
		return nil
	}
	err := runtime.CloseAll(d.past...)
	err = errors.Join(err, runtime.CloseAll(d.idsT, d.posT, d.embT, d.logitsT))
	d.past, d.idsT, d.posT, d.embT, d.logitsT = nil, nil, nil, nil, nil
	return err
}

// GenerateOptions selects how Generate runs the model.
type GenerateOptions struct {
	// NoKVCache re-runs the whole sequence for every new token instead of
	// using the KV cache: the reference the cache is checked against, and
	// the baseline of the decode benchmarks. Much slower.
	NoKVCache bool
}

// Generate completes every prompt with generate.Run: prefill, then one
// batched decode step per token until each row has finished. opts holds
// one generate.Options per prompt (sampling, stop tokens and strings,
// MaxNewTokens); the results carry token ids and per-token log-probs.
func (v *VLM) Generate(ctx context.Context, prompts []Prompt, opts []generate.Options, g GenerateOptions) ([]generate.Result, error) {
	if len(opts) != len(prompts) {
		return nil, fmt.Errorf("%w: %d options for %d prompts", ErrBadRequest, len(opts), len(prompts))
	}
	budget := 0
	for _, o := range opts {
		n := o.MaxNewTokens
		if n == 0 {
			n = generate.DefaultMaxNewTokens
		}
		budget = max(budget, n)
	}
	var sess generate.Session
	var first generate.Logits
	if g.NoKVCache {
		s, err := v.newRerun(ctx, prompts)
		if err != nil {
			return nil, err
		}
		if first, err = s.Next(ctx, nil); err != nil {
			return nil, err
		}
		sess = s
	} else {
		f, d, err := v.Prefill(ctx, prompts, budget)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		first, sess = f, d
	}
	res, err := generate.Run(ctx, sess, first, v.suppressVision(opts))
	if err != nil {
		return nil, fmt.Errorf("models: generate: %w", err)
	}
	return res, nil
}

// rerun is a generate.Session without a cache: every step appends the new
// tokens and runs the full sequences again (image features are computed
// once).
type rerun struct {
	v       *VLM
	prompts []Prompt
	feats   Features
}

func (v *VLM) newRerun(ctx context.Context, prompts []Prompt) (*rerun, error) {
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	if _, err := v.newBatch(prompts); err != nil {
		return nil, err
	}
	f, err := v.ImageFeatures(ctx, prompts)
	if err != nil {
		return nil, err
	}
	own := make([]Prompt, len(prompts))
	for i, p := range prompts {
		own[i] = Prompt{IDs: append([]int(nil), p.IDs...), Images: p.Images}
	}
	return &rerun{v: v, prompts: own, feats: f}, nil
}

// Next appends tokens (none on the first call) and re-runs everything.
func (s *rerun) Next(ctx context.Context, tokens []int) (generate.Logits, error) {
	for i, t := range tokens {
		s.prompts[i].IDs = append(s.prompts[i].IDs, t)
	}
	return s.v.LastLogitsWith(ctx, s.prompts, s.feats)
}

// suppressVision returns opts with the vision placeholders (<|image_pad|>,
// <|vision_start|>, <|vision_end|>) added to every row's SuppressTokens: a
// completion never opens an image slot, so prompt plus completion can be
// fed back (GRPO, multi-turn chat) with the images it really has.
func (v *VLM) suppressVision(opts []generate.Options) []generate.Options {
	out := make([]generate.Options, len(opts))
	for i, o := range opts {
		o.SuppressTokens = append(slices.Clip(o.SuppressTokens), v.st.ImagePad, v.st.VisionStart, v.st.VisionEnd)
		out[i] = o
	}
	return out
}
