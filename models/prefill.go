package models

import (
	"context"
	"errors"
	"fmt"

	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/runtime/generate"
)

// Prompt is one row of a batch: token ids with one block of <|image_pad|>
// slots per image (see tokenizer.VQAPrompt), and the processed images in
// the order of their blocks. A block holds Pixels.ImageTokens() pads.
type Prompt struct {
	IDs    []int
	Images []*preprocessing.Pixels
}

// batch is a set of prompts left-padded to one length: padding sits on the
// left (attention_mask 0), so every row's last token is at T-1 and all rows
// decode in lockstep.
type batch struct {
	rows, length int
	ids          []int64 // input_ids [B, T], PAD on the left
	mask         []int64 // attention_mask [B, T]
	pos          []int64 // position_ids [3, B, T]
	next         []int64 // per row: the position the next token takes
}

// newBatch validates and left-pads prompts and computes their mRoPE
// positions.
func (v *VLM) newBatch(prompts []Prompt) (*batch, error) {
	if len(prompts) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrBadRequest)
	}
	T := 0
	for i, p := range prompts {
		if len(p.IDs) == 0 {
			return nil, fmt.Errorf("%w: row %d has no tokens", ErrBadRequest, i)
		}
		if err := v.checkBudget(len(p.IDs)); err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		T = max(T, len(p.IDs))
	}
	B := len(prompts)
	b := &batch{rows: B, length: T, ids: make([]int64, B*T), mask: make([]int64, B*T),
		pos: make([]int64, 3*B*T), next: make([]int64, B)}
	merge := v.cfg.Vision.SpatialMergeSize
	for r, p := range prompts {
		off := T - len(p.IDs)
		ids, mask := b.ids[r*T:(r+1)*T], b.mask[r*T:(r+1)*T]
		row := make([]int, T)
		for s := range off {
			ids[s], row[s] = int64(v.st.PAD), v.st.PAD
		}
		for s, id := range p.IDs {
			if id < 0 || id >= v.cfg.VocabSize {
				return nil, fmt.Errorf("%w: row %d: token id %d outside vocab of %d", ErrBadRequest, r, id, v.cfg.VocabSize)
			}
			ids[off+s], row[off+s], mask[off+s] = int64(id), id, 1
		}
		grids := make([][3]int64, len(p.Images))
		for k, img := range p.Images {
			if err := v.checkPixels(img); err != nil {
				return nil, fmt.Errorf("row %d image %d: %w", r, k, err)
			}
			grids[k] = img.GridTHW
		}
		pos, next, err := RopeIndex(row, mask, v.st.ImagePad, grids, merge)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", r, err)
		}
		for k := range 3 {
			copy(b.pos[k*B*T+r*T:], pos[k])
		}
		b.next[r] = next
	}
	return b, nil
}

// checkBudget reports a prompt of n tokens (text and image) over
// VLMOptions.MaxPromptTokens, wrapping ErrBadRequest and naming the limit.
func (v *VLM) checkBudget(n int) error {
	if v.maxPrompt > 0 && n > v.maxPrompt {
		return fmt.Errorf("%w: a prompt of %d tokens (text and image) is over the budget of %d (VLMOptions.MaxPromptTokens; serve --max-prompt-tokens)",
			ErrBadRequest, n, v.maxPrompt)
	}
	return nil
}

// embedBatch runs embed_tokens over the padded ids and splices the image
// features in at the <|image_pad|> positions, in order. It returns
// inputs_embeds [B, T, hidden] as Go memory in the graphs' dtype.
func (v *VLM) embedBatch(ctx context.Context, b *batch, feats []float32) (floatBuf, error) {
	H := v.cfg.HiddenSize
	embeds := newFloatBuf(v.bundle.Names.Half.Embeds, b.rows*b.length*H, 0)
	if err := v.runEmbed(ctx, b.ids, []int64{int64(b.rows), int64(b.length)}, embeds); err != nil {
		return floatBuf{}, err
	}
	if err := spliceImages(embeds, b.ids, b.mask, int64(v.st.ImagePad), feats, H); err != nil {
		return floatBuf{}, err
	}
	return embeds, nil
}

// runEmbed writes embed_tokens(ids) into out.
func (v *VLM) runEmbed(ctx context.Context, ids []int64, shape []int64, out floatBuf) (err error) {
	idsT, err := runtime.NewTensor(shape, ids)
	if err != nil {
		return fmt.Errorf("models: input_ids: %w", err)
	}
	outT, err := out.tensor(append(shape[:2:2], int64(v.cfg.HiddenSize)))
	if err != nil {
		return errors.Join(fmt.Errorf("models: inputs_embeds: %w", err), idsT.Close())
	}
	defer func() { err = errors.Join(err, runtime.CloseAll(idsT, outT)) }()
	if err := v.embed.RunInto(ctx, []runtime.NamedTensor{{Name: InputIDs, Tensor: idsT}},
		[]runtime.NamedTensor{{Name: InputsEmbeds, Tensor: outT}}); err != nil {
		return fmt.Errorf("models: embed tokens: %w", err)
	}
	return nil
}

// spliceImages replaces the embedding of each real <|image_pad|> token, in
// row-major order, with the next row of feats [tokens, h]. The number of
// pads must equal the number of feature rows. Features are rounded to
// float16 when embeds is.
func spliceImages(embeds floatBuf, ids, mask []int64, imagePad int64, feats []float32, h int) error {
	n := 0
	rows := len(feats) / h
	for i, id := range ids {
		if id != imagePad || mask[i] == 0 {
			continue
		}
		if n >= rows {
			return fmt.Errorf("%w: more <|image_pad|> tokens than the %d image feature rows", ErrImageTokens, rows)
		}
		embeds.set(i*h, feats[n*h:(n+1)*h])
		n++
	}
	if n != rows {
		return fmt.Errorf("%w: %d <|image_pad|> tokens for %d image feature rows", ErrImageTokens, n, rows)
	}
	return nil
}

// prefillInputs returns the decoder inputs of a batch with an empty cache:
// inputs_embeds, attention_mask (over maskBuf), position_ids and
// past_key_values.* of length 0. The caller closes them.
func (v *VLM) prefillInputs(b *batch, embeds floatBuf, maskBuf []int64) (ts []runtime.NamedTensor, err error) {
	B, T := int64(b.rows), int64(b.length)
	add := func(name string) func(*runtime.Tensor, error) error {
		return func(t *runtime.Tensor, err error) error {
			if err != nil {
				return fmt.Errorf("models: %s: %w", name, err)
			}
			ts = append(ts, runtime.NamedTensor{Name: name, Tensor: t})
			return nil
		}
	}
	err = errors.Join(
		add(InputsEmbeds)(embeds.tensor([]int64{B, T, int64(v.cfg.HiddenSize)})),
		add(AttentionMask)(runtime.NewTensor([]int64{B, T}, maskBuf)),
		add(PositionIDs)(runtime.NewTensor([]int64{3, B, T}, b.pos)))
	kv := []int64{B, int64(v.cfg.NumKVHeads), 0, int64(v.cfg.HeadDim())}
	empty := newFloatBuf(v.bundle.Names.Half.Cache, 0, 0)
	for i := 0; i < v.cfg.NumLayers && err == nil; i++ {
		err = errors.Join(add(PastKey(i))(empty.tensor(kv)), add(PastValue(i))(empty.tensor(kv)))
	}
	if err != nil {
		return nil, errors.Join(err, closeNamed(ts))
	}
	return ts, nil
}

// logitsLength is how many positions of a length-T batch the decoder
// returns logits for: 1 when it takes num_logits_to_keep (fed 1), else T.
func (v *VLM) logitsLength(T int) int {
	if v.keep != nil {
		return 1
	}
	return T
}

// withKeep appends num_logits_to_keep to a decoder's inputs when the graph
// takes it. The shared tensor is not the caller's to close.
func (v *VLM) withKeep(ins []runtime.NamedTensor) []runtime.NamedTensor {
	if v.keep == nil {
		return ins
	}
	return append(ins[:len(ins):len(ins)], runtime.NamedTensor{Name: NumLogitsToKeep, Tensor: v.keep})
}

// unusedPresent returns outs followed, for a float16 cache, by buffers
// for the present.* outputs a one-pass call does not read: ONNX Runtime
// allocates unrequested outputs itself, which onnxruntime_go cannot do
// for 16-bit floats of symbolic shape. The caller closes the buffers
// (every tensor after outs).
func (v *VLM) unusedPresent(b *batch, outs []runtime.NamedTensor) ([]runtime.NamedTensor, error) {
	if !v.bundle.Names.Half.Cache {
		return outs, nil
	}
	shape := []int64{int64(b.rows), int64(v.cfg.NumKVHeads), int64(b.length), int64(v.cfg.HeadDim())}
	n := b.rows * v.cfg.NumKVHeads * b.length * v.cfg.HeadDim()
	all := outs
	for i := range 2 * v.cfg.NumLayers {
		name := PresentKey(i / 2)
		if i%2 == 1 {
			name = PresentValue(i / 2)
		}
		t, err := newFloatBuf(true, n, 0).tensor(shape)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("models: %s: %w", name, err), closeNamed(all[len(outs):]))
		}
		all = append(all, runtime.NamedTensor{Name: name, Tensor: t})
	}
	return all, nil
}

// closeNamed closes every tensor of ts.
func closeNamed(ts []runtime.NamedTensor) error {
	var err error
	for _, t := range ts {
		err = errors.Join(err, t.Tensor.Close())
	}
	return err
}

// prepare builds the batch and its inputs_embeds, with the prompts'
// image features f (from ImageFeatures) spliced in.
func (v *VLM) prepare(ctx context.Context, prompts []Prompt, f Features) (*batch, floatBuf, error) {
	if err := v.checkOpen(); err != nil {
		return nil, floatBuf{}, err
	}
	b, err := v.newBatch(prompts)
	if err != nil {
		return nil, floatBuf{}, err
	}
	feats, err := f.flat(len(prompts))
	if err != nil {
		return nil, floatBuf{}, err
	}
	embeds, err := v.embedBatch(ctx, b, feats)
	if err != nil {
		return nil, floatBuf{}, err
	}
	return b, embeds, nil
}

// LastLogits runs one forward pass over the prompts (no cache kept) and
// returns the next-token logits after each row's last token: the fast
// option-scoring path and the no-cache reference. It needs a bundle whose
// decoder outputs logits. It encodes the images first (ImageFeatures).
func (v *VLM) LastLogits(ctx context.Context, prompts []Prompt) (generate.Logits, error) {
	f, err := v.ImageFeatures(ctx, prompts)
	if err != nil {
		return generate.Logits{}, err
	}
	return v.LastLogitsWith(ctx, prompts, f)
}

// LastLogitsWith is LastLogits with the prompts' image features f
// computed beforehand by ImageFeatures.
func (v *VLM) LastLogitsWith(ctx context.Context, prompts []Prompt, f Features) (_ generate.Logits, err error) {
	if v.reward {
		return generate.Logits{}, fmt.Errorf("%w: the reward decoder outputs scores, not logits", ErrRole)
	}
	b, embeds, err := v.prepare(ctx, prompts, f)
	if err != nil {
		return generate.Logits{}, err
	}
	ins, err := v.prefillInputs(b, embeds, b.mask)
	if err != nil {
		return generate.Logits{}, err
	}
	defer func() { err = errors.Join(err, closeNamed(ins)) }()
	B, T, V := b.rows, v.logitsLength(b.length), v.cfg.VocabSize
	full := newFloatBuf(v.bundle.Names.Half.Logits, B*T*V, 0)
	lt, err := full.tensor([]int64{int64(B), int64(T), int64(V)})
	if err != nil {
		return generate.Logits{}, fmt.Errorf("models: logits: %w", err)
	}
	defer func() { err = errors.Join(err, lt.Close()) }()
	outs, err := v.unusedPresent(b, []runtime.NamedTensor{{Name: Logits, Tensor: lt}})
	if err != nil {
		return generate.Logits{}, err
	}
	defer func() { err = errors.Join(err, closeNamed(outs[1:])) }()
	if err := v.decoder.RunInto(ctx, v.withKeep(ins), outs); err != nil {
		return generate.Logits{}, fmt.Errorf("models: decoder: %w", err)
	}
	out := generate.Logits{Rows: B, Vocab: V, Data: make([]float32, B*V)}
	for r := range B {
		full.read(out.Data[r*V:(r+1)*V], (r*T+T-1)*V)
	}
	return out, nil
}

// ScorePrompts scores already encoded prompts with the reward decoder (one
// batched pass); the score is read at each row's last token. It encodes
// the images first (ImageFeatures).
func (v *VLM) ScorePrompts(ctx context.Context, prompts []Prompt) ([]float32, error) {
	f, err := v.ImageFeatures(ctx, prompts)
	if err != nil {
		return nil, err
	}
	return v.ScorePromptsWith(ctx, prompts, f)
}

// ScorePromptsWith is ScorePrompts with the prompts' image features f
// computed beforehand by ImageFeatures.
func (v *VLM) ScorePromptsWith(ctx context.Context, prompts []Prompt, f Features) (_ []float32, err error) {
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	if !v.reward {
		return nil, fmt.Errorf("%w: %s is not a reward model (its decoder outputs logits)", ErrRole, v.Manifest().Name)
	}
	b, embeds, err := v.prepare(ctx, prompts, f)
	if err != nil {
		return nil, err
	}
	ins, err := v.prefillInputs(b, embeds, b.mask)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, closeNamed(ins)) }()
	scores := newFloatBuf(v.bundle.Names.Half.Logits, b.rows, 0)
	st, err := scores.tensor([]int64{int64(b.rows)})
	if err != nil {
		return nil, fmt.Errorf("models: scores: %w", err)
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	outs, err := v.unusedPresent(b, []runtime.NamedTensor{{Name: Scores, Tensor: st}})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, closeNamed(outs[1:])) }()
	if err := v.decoder.RunInto(ctx, v.withKeep(ins), outs); err != nil {
		return nil, fmt.Errorf("models: reward decoder: %w", err)
	}
	out := make([]float32, b.rows)
	scores.read(out, 0)
	return out, nil
}
