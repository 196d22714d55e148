package backend

import (
	"context"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/server/model"
)

// VQA adapts a VQA bundle to model.VQA through models.VLM.Answer, the one
// function that answers a VQA question (the CLI, eval and the pipeline
// call it too): fast inputs get option probabilities from one forward
// pass; reason inputs generate "<think>…</think><answer>X</answer>"
// (greedy, KV cache) and are then scored after their reasoning, so both
// modes return calibrated probabilities.
type VQA struct {
	m            *Models
	s            *slot
	reasonTokens int // generation budget in reason mode
}

// Info implements model.VQA with the bundle's name and version.
func (q *VQA) Info() model.Info { return info(q.s, "vqa") }

// VLM returns the bundle behind the adapter (for benchmarks and tools).
// It stays valid until Close only when Options.IdleRelease is negative;
// otherwise an idle release may close it.
func (q *VQA) VLM() *models.VLM {
	v, done := q.s.use()
	done()
	return v
}

// PromptIDs implements model.PromptCounter: the ids of the prompt
// models.VLM.Answer runs for in (models.VLM.EncodeVQA), image tokens
// included (from in's Pixels, or from the decoded size when the image is
// not processed yet). AnswerBatch takes them back from in.PromptIDs.
func (q *VQA) PromptIDs(in model.VQAInput) ([]int, error) {
	v, done := q.s.use()
	defer done()
	req := models.VQARequest{Question: in.Question, Options: in.Options, Mode: models.ModeFast}
	if in.Reason {
		req.Mode = models.ModeReason
	}
	images := 0
	switch {
	case in.Image.Pixels != nil:
		images = in.Image.Pixels.ImageTokens()
	case in.Image.Decoded != nil:
		b := in.Image.Decoded.Bounds()
		var err error
		if images, err = v.ImageConfig().ImageTokens(b.Dy(), b.Dx()); err != nil {
			return nil, mapErr("vqa", err)
		}
	}
	ids, err := v.EncodeVQA(req, images)
	if err != nil {
		return nil, mapErr("vqa", err)
	}
	return ids, nil
}

// AnswerBatch implements model.VQA: the inputs run as one models.Answer
// batch; outputs are in input order.
func (q *VQA) AnswerBatch(ctx context.Context, in []model.VQAInput) ([]model.VQAOutput, error) {
	v, done := q.s.use()
	defer done()
	imgs := make([]model.Image, len(in))
	for i, x := range in {
		imgs[i] = x.Image
	}
	px, err := q.m.pixels(ctx, v, imgs)
	if err != nil {
		return nil, mapErr("vqa", err)
	}
	reqs := make([]models.VQARequest, len(in))
	for i, x := range in {
		reqs[i] = models.VQARequest{Pixels: px[i], Question: x.Question, Options: x.Options, Mode: models.ModeFast, PromptIDs: x.PromptIDs}
		if x.Reason {
			reqs[i].Mode = models.ModeReason
		}
	}
	var tr models.Trace
	ans, err := v.Answer(models.WithTrace(ctx, &tr), reqs, models.ReasonOptions{MaxNewTokens: q.reasonTokens})
	if err != nil {
		return nil, mapErr("vqa", err)
	}
	out := make([]model.VQAOutput, len(in))
	for i, a := range ans {
		out[i] = model.VQAOutput{Answer: a.Index, Probs: a.Probs, VisionTime: tr.Vision()}
		if reqs[i].Mode == models.ModeReason {
			out[i].Reasoning = a.Text
		}
	}
	return out, nil
}

// Compile-time checks.
var (
	_ model.VQA           = (*VQA)(nil)
	_ model.PromptCounter = (*VQA)(nil)
	_ model.Generator     = (*Generator)(nil)
	_ model.Reward        = (*Reward)(nil)
	_ model.Chat          = (*Chat)(nil)
)
