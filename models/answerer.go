package models

import (
	"context"
	"fmt"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/eval"
	"github.com/medgr2/medgr2/preprocessing"
)

// Mode selects how a VQA bundle answers.
type Mode string

// Answering modes.
const (
	ModeFast   Mode = "fast"   // option probabilities from one forward pass
	ModeReason Mode = "reason" // generate <think>…</think><answer>X</answer>
)

// ParseMode reads "fast" or "reason"; anything else wraps ErrBadRequest.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeFast, ModeReason:
		return m, nil
	}
	return "", fmt.Errorf("%w: mode %q (want fast or reason)", ErrBadRequest, s)
}

// AnswererOptions configures NewAnswerer.
type AnswererOptions struct {
	Mode   Mode                 // "" means ModeFast
	Reason ReasonOptions        // generation settings for ModeReason
	Limits preprocessing.Limits // image decode limits (zero: defaults)
	// FullJPEG decodes every JPEG at full size. By default a JPEG much
	// larger than the bundle's image size decodes at reduced scale, as
	// the server does (preprocessing.Options.ReduceFor).
	FullJPEG bool
}

// Answerer answers OmniMedVQA items with a VQA bundle (data/eval's
// Answerer). Items are answered as one batch per call; each item's image
// is read from Item.ImageFile() (an item without image_path is asked as
// text only). It is safe for concurrent use, as the VLM is.
type Answerer struct {
	vlm  *VLM
	opts AnswererOptions
}

// NewAnswerer returns an Answerer over v.
func NewAnswerer(v *VLM, opts AnswererOptions) (*Answerer, error) {
	if opts.Mode == "" {
		opts.Mode = ModeFast
	}
	if _, err := ParseMode(string(opts.Mode)); err != nil {
		return nil, err
	}
	return &Answerer{vlm: v, opts: opts}, nil
}

// Answer implements eval.Answerer through VLM.Answer, the path the REST
// server answers with: Answer.OptionProbs always, and Answer.Text (the
// generated completion) on the reasoning path, so eval predicts what the
// server would (the option the text names, else the most probable one).
// An image that cannot be read or processed fails the call with an error
// naming the item.
func (a *Answerer) Answer(ctx context.Context, items []data.Item) ([]eval.Answer, error) {
	reqs := make([]VQARequest, len(items))
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		reqs[i] = VQARequest{Question: it.Question, Options: it.Options(), Mode: a.opts.Mode}
		if path := it.ImageFile(); path != "" {
			opts := preprocessing.Options{Limits: a.opts.Limits}
			if !a.opts.FullJPEG {
				cfg := a.vlm.ImageConfig()
				opts.ReduceFor = &cfg
			}
			img, _, err := preprocessing.DecodeFileWith(path, opts)
			if err != nil {
				return nil, fmt.Errorf("models: item %s: image: %w", it.QuestionID, err)
			}
			if reqs[i].Pixels, err = a.vlm.ProcessImage(img); err != nil {
				return nil, fmt.Errorf("models: item %s: image: %w", it.QuestionID, err)
			}
		}
	}
	ans, err := a.vlm.Answer(ctx, reqs, a.opts.Reason)
	if err != nil {
		return nil, err
	}
	out := make([]eval.Answer, len(items))
	for i, x := range ans {
		out[i] = eval.Answer{Text: x.Text, OptionProbs: x.Probs}
	}
	return out, nil
}
