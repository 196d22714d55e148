package backend

import (
	"context"
	"fmt"
	"image"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime/generate"
	"github.com/medgr2/medgr2/server/model"
	"github.com/medgr2/medgr2/tokenizer"
)

// VQA adapts a VQA bundle to model.VQA. Fast inputs get option
// probabilities from one forward pass (models.AnswerFast); reason inputs
// generate "<think>…</think><answer>X</answer>" (greedy, KV cache), and
// one more forward pass over the prompt, the reasoning and "<answer>"
// gives calibrated option probabilities, so both modes return Probs.
type VQA struct {
	m            *Models
	v            *models.VLM
	reasonTokens int // generation budget in reason mode
}

// Info implements model.VQA with the bundle's name and version.
func (q *VQA) Info() model.Info { return info(q.v, "vqa") }

// VLM returns the bundle behind the adapter (for benchmarks and tools).
func (q *VQA) VLM() *models.VLM { return q.v }

// AnswerBatch implements model.VQA: fast and reason inputs each run as one
// batch; outputs are in input order.
func (q *VQA) AnswerBatch(ctx context.Context, in []model.VQAInput) ([]model.VQAOutput, error) {
	imgs := make([]image.Image, len(in))
	for i, x := range in {
		imgs[i] = x.Image
	}
	px, err := q.m.pixels(ctx, q.v, imgs)
	if err != nil {
		return nil, mapErr("vqa", err)
	}
	var fast, reason []int
	for i, x := range in {
		if x.Reason {
			reason = append(reason, i)
		} else {
			fast = append(fast, i)
		}
	}
	out := make([]model.VQAOutput, len(in))
	if err := q.fast(ctx, in, px, fast, out); err != nil {
		return nil, mapErr("vqa fast", err)
	}
	if err := q.reason(ctx, in, px, reason, out); err != nil {
		return nil, mapErr("vqa reason", err)
	}
	return out, nil
}

// prompt encodes input x as the VQA chat prompt followed by suffix.
func (q *VQA) prompt(x model.VQAInput, px *preprocessing.Pixels, suffix string) (models.Prompt, error) {
	if len(x.Options) < 2 || len(x.Options) > len(data.Letters) {
		return models.Prompt{}, fmt.Errorf("%w: %d options (want 2…%d)", models.ErrBadRequest, len(x.Options), len(data.Letters))
	}
	tok := q.v.Tokenizer()
	enc, err := tok.EncodePrompt(q.v.VQAPrompt(models.VQARequest{Question: x.Question, Options: x.Options}, px.ImageTokens()))
	if err != nil {
		return models.Prompt{}, fmt.Errorf("%w: %w", models.ErrBadRequest, err)
	}
	ids := enc.IDs
	if suffix != "" {
		if ids, err = tok.AppendEncode(ids, suffix); err != nil {
			return models.Prompt{}, fmt.Errorf("%w: %w", models.ErrBadRequest, err)
		}
	}
	out := models.Prompt{IDs: ids}
	if px != nil {
		out.Images = []*preprocessing.Pixels{px}
	}
	return out, nil
}

// prompts encodes the inputs at idx with suffix(k) after the assistant
// header of the k-th.
func (q *VQA) prompts(in []model.VQAInput, px []*preprocessing.Pixels, idx []int, suffix func(k int) string) ([]models.Prompt, error) {
	out := make([]models.Prompt, len(idx))
	for k, i := range idx {
		p, err := q.prompt(in[i], px[i], suffix(k))
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		out[k] = p
	}
	return out, nil
}

// letterProbs runs one forward pass and renormalises the option letters'
// next-token probabilities, row by row.
func (q *VQA) letterProbs(ctx context.Context, in []model.VQAInput, idx []int, prompts []models.Prompt, f models.Features) ([][]float64, error) {
	logits, err := q.v.LastLogitsWith(ctx, prompts, f)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(idx))
	for k, i := range idx {
		letters, err := q.v.LetterTokens(len(in[i].Options))
		if err != nil {
			return nil, err
		}
		out[k] = generate.OptionProbs(logits.Row(k), letters)
	}
	return out, nil
}

// fast answers the inputs at idx from one forward pass whose prompt ends
// in "<answer>" (as models.AnswerFast does), with the vision encoder run
// once per image.
func (q *VQA) fast(ctx context.Context, in []model.VQAInput, px []*preprocessing.Pixels, idx []int, out []model.VQAOutput) error {
	if len(idx) == 0 {
		return nil
	}
	prompts, err := q.prompts(in, px, idx, func(int) string { return models.FastAnswerPrefix })
	if err != nil {
		return err
	}
	f, err := q.v.ImageFeatures(ctx, prompts)
	if err != nil {
		return err
	}
	probs, err := q.letterProbs(ctx, in, idx, prompts, f)
	if err != nil {
		return err
	}
	for k, i := range idx {
		out[i] = model.VQAOutput{Answer: argmax(probs[k]), Probs: probs[k]}
	}
	return nil
}

// reason generates reasoning for the inputs at idx (greedy, stopping after
// "</answer>"), then scores the option letters after it with the same
// image features. The answer is the letter the model wrote; when it wrote
// none, the most probable option.
func (q *VQA) reason(ctx context.Context, in []model.VQAInput, px []*preprocessing.Pixels, idx []int, out []model.VQAOutput) error {
	if len(idx) == 0 {
		return nil
	}
	prompts, err := q.prompts(in, px, idx, func(int) string { return "" })
	if err != nil {
		return err
	}
	f, err := q.v.ImageFeatures(ctx, prompts)
	if err != nil {
		return err
	}
	opts := make([]generate.Options, len(idx))
	for k := range opts {
		opts[k] = generate.Options{MaxNewTokens: q.reasonTokens, StopTokens: q.v.Manifest().SpecialTokens.EOS,
			StopStrings: []string{models.AnswerClose}, Detokenize: q.detok}
	}
	res, err := q.v.GenerateStream(ctx, prompts, opts, &f, nil)
	if err != nil {
		return err
	}
	texts := make([]string, len(idx))
	for k := range texts {
		texts[k] = q.detok(res[k].Tokens)
	}
	scoring, err := q.prompts(in, px, idx, func(k int) string { return AnswerPrefix(texts[k]) })
	if err != nil {
		return err
	}
	probs, err := q.letterProbs(ctx, in, idx, scoring, f)
	if err != nil {
		return err
	}
	for k, i := range idx {
		best, ok := data.ExtractAnswer(texts[k], in[i].Options)
		if !ok {
			best = argmax(probs[k])
		}
		out[i] = model.VQAOutput{Answer: best, Probs: probs[k], Reasoning: texts[k]}
	}
	return nil
}

// detok decodes generated ids without special tokens.
func (q *VQA) detok(ids []int) string {
	s, _ := q.v.Tokenizer().Decode(ids, true) // generated ids are in the vocabulary
	return s
}

// AnswerPrefix returns the assistant text that precedes the answer letter
// for a generated completion: the completion up to and including its first
// "<answer>", or, when it has none, its reasoning wrapped as
// "<think>…</think><answer>". Chat control tokens are removed, so the
// text cannot open turns or image slots.
func AnswerPrefix(text string) string {
	text = stripControl(text)
	if i := strings.Index(text, models.AnswerOpen); i >= 0 {
		return text[:i+len(models.AnswerOpen)]
	}
	reasoning := models.Reasoning(text)
	if !strings.Contains(text, models.ThinkOpen) {
		reasoning = strings.TrimSpace(text)
	}
	return models.ThinkOpen + reasoning + models.ThinkClose + models.AnswerOpen
}

// stripControl removes the chat control tokens from text.
func stripControl(text string) string {
	for _, ctl := range []string{tokenizer.ImStart, tokenizer.ImEnd, tokenizer.VisionStart, tokenizer.VisionEnd, tokenizer.ImagePad} {
		text = strings.ReplaceAll(text, ctl, "")
	}
	return text
}

func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Compile-time checks.
var (
	_ model.VQA       = (*VQA)(nil)
	_ model.Generator = (*Generator)(nil)
	_ model.Reward    = (*Reward)(nil)
	_ model.Chat      = (*Chat)(nil)
)
