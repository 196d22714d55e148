package backend

import (
	"context"
	"image"
	"strings"

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

func request(x model.VQAInput, px *preprocessing.Pixels) models.VQARequest {
	return models.VQARequest{Pixels: px, Question: x.Question, Options: x.Options}
}

// fast answers the inputs at idx from one forward pass.
func (q *VQA) fast(ctx context.Context, in []model.VQAInput, px []*preprocessing.Pixels, idx []int, out []model.VQAOutput) error {
	if len(idx) == 0 {
		return nil
	}
	reqs := make([]models.VQARequest, len(idx))
	for k, i := range idx {
		reqs[k] = request(in[i], px[i])
	}
	ans, err := q.v.AnswerFast(ctx, reqs)
	if err != nil {
		return err
	}
	for k, i := range idx {
		out[i] = model.VQAOutput{Answer: ans[k].Index, Probs: ans[k].Probs}
	}
	return nil
}

// reason generates reasoning for the inputs at idx, then scores the
// option letters after it. The answer is the letter the model wrote; when
// it wrote none, the most probable option.
func (q *VQA) reason(ctx context.Context, in []model.VQAInput, px []*preprocessing.Pixels, idx []int, out []model.VQAOutput) error {
	if len(idx) == 0 {
		return nil
	}
	reqs := make([]models.VQARequest, len(idx))
	for k, i := range idx {
		reqs[k] = request(in[i], px[i])
	}
	ans, err := q.v.AnswerWithReasoning(ctx, reqs, models.ReasonOptions{MaxNewTokens: q.reasonTokens})
	if err != nil {
		return err
	}
	prompts := make([]models.Prompt, len(idx))
	letters := make([][]int, len(idx))
	for k, r := range reqs {
		if prompts[k], err = q.answerPrompt(r, ans[k].Text); err != nil {
			return err
		}
		if letters[k], err = q.v.LetterTokens(len(r.Options)); err != nil {
			return err
		}
	}
	logits, err := q.v.LastLogits(ctx, prompts)
	if err != nil {
		return err
	}
	for k, i := range idx {
		probs := generate.OptionProbs(logits.Row(k), letters[k])
		best := ans[k].Index
		if best < 0 {
			best = argmax(probs)
		}
		out[i] = model.VQAOutput{Answer: best, Probs: probs, Reasoning: ans[k].Text}
	}
	return nil
}

// answerPrompt is the VQA prompt followed by the generated reasoning up to
// "<answer>", so the next token is the option letter.
func (q *VQA) answerPrompt(r models.VQARequest, text string) (models.Prompt, error) {
	p := q.v.VQAPrompt(r, r.Pixels.ImageTokens())
	enc, err := q.v.Tokenizer().EncodePrompt(p)
	if err != nil {
		return models.Prompt{}, err
	}
	ids, err := q.v.Tokenizer().AppendEncode(enc.IDs, AnswerPrefix(text))
	if err != nil {
		return models.Prompt{}, err
	}
	out := models.Prompt{IDs: ids}
	if r.Pixels != nil {
		out.Images = []*preprocessing.Pixels{r.Pixels}
	}
	return out, nil
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
