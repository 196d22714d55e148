package models

import (
	"context"
	"errors"
	"fmt"

	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/runtime/generate"
)

// Features are precomputed image features of a batch of prompts (see
// ImageFeatures), in the order the prompts' image blocks appear.
type Features struct {
	data []float32 // [image tokens, hidden], nil for text-only batches
}

// ImageFeatures runs the vision encoder over every image of prompts, one
// image per call. The encoder attends within each image only, so the
// result equals one concatenated call, but its cost grows linearly with
// the number of images instead of quadratically (the concatenated call
// builds an N×N attention over all N patches of the batch): the serving
// path uses it so large batches of images stay cheap.
func (v *VLM) ImageFeatures(ctx context.Context, prompts []Prompt) (Features, error) {
	if err := v.checkOpen(); err != nil {
		return Features{}, err
	}
	var out []float32
	for r, p := range prompts {
		for k, img := range p.Images {
			if err := v.checkPixels(img); err != nil {
				return Features{}, fmt.Errorf("row %d image %d: %w", r, k, err)
			}
			f, err := v.imageFeatures(ctx, []Prompt{{Images: p.Images[k : k+1]}})
			if err != nil {
				return Features{}, err
			}
			out = append(out, f...)
		}
	}
	return Features{data: out}, nil
}

// LastLogitsWith is LastLogits with the prompts' image features
// precomputed by ImageFeatures.
func (v *VLM) LastLogitsWith(ctx context.Context, prompts []Prompt, f Features) (generate.Logits, error) {
	return v.lastLogits(ctx, prompts, f.nonNil())
}

// nonNil returns the features as prepare expects them: a non-nil slice
// means "precomputed" (empty for text-only batches).
func (f Features) nonNil() []float32 {
	if f.data == nil {
		return []float32{}
	}
	return f.data
}

// PrefillWith is Prefill with precomputed image features.
func (v *VLM) PrefillWith(ctx context.Context, prompts []Prompt, capacity int, f Features) (generate.Logits, *Decoder, error) {
	if v.reward {
		return generate.Logits{}, nil, fmt.Errorf("%w: the reward decoder outputs scores, not logits", ErrRole)
	}
	b, embeds, err := v.prepare(ctx, prompts, f.nonNil())
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

// ScorePromptsWith is ScorePrompts with precomputed image features.
func (v *VLM) ScorePromptsWith(ctx context.Context, prompts []Prompt, f Features) ([]float32, error) {
	return v.scorePrompts(ctx, prompts, f.nonNil())
}

// scorePrompts runs the reward decoder once over prompts; feats are
// precomputed image features, or nil to encode the images here.
func (v *VLM) scorePrompts(ctx context.Context, prompts []Prompt, feats []float32) (_ []float32, err error) {
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	if !v.reward {
		return nil, fmt.Errorf("%w: %s is not a reward model (its decoder outputs logits)", ErrRole, v.Manifest().Name)
	}
	b, embeds, err := v.prepare(ctx, prompts, feats)
	if err != nil {
		return nil, err
	}
	ins, err := v.prefillInputs(b, embeds, b.mask)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, closeNamed(ins)) }()
	scores := make([]float32, b.rows)
	st, err := runtime.NewTensor([]int64{int64(b.rows)}, scores)
	if err != nil {
		return nil, fmt.Errorf("models: scores: %w", err)
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	if err := v.decoder.RunInto(ctx, ins, []runtime.NamedTensor{{Name: Scores, Tensor: st}}); err != nil {
		return nil, fmt.Errorf("models: reward decoder: %w", err)
	}
	return scores, nil
}
