package models

import (
	"context"
	"fmt"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime/generate"
)

// This file is the VQA role: the one function that answers a
// multiple-choice question, whoever asks (the REST server, the CLI, eval
// and the pipeline). It builds prompts (prompt.go), encodes the images
// once (features.go), runs the decoder (prefill.go, stream.go) and reads
// the answer.

// VQARequest is one multiple-choice question about an image.
type VQARequest struct {
	// Pixels is the processed image (see VLM.ProcessImage); nil asks the
	// question as text only.
	Pixels *preprocessing.Pixels
	// Question is the question text; required.
	Question string
	// Options are the answer choices, lettered A, B, …; MinOptions to
	// MaxOptions of them.
	Options []string
	// Mode is how to answer: ModeFast ("" too) or ModeReason.
	Mode Mode
	// PromptIDs are the request's prompt ids as EncodeVQA returned them
	// for this same request (question, options, mode and image size), so
	// a caller that has counted the prompt (a server keying its batches
	// by length) does not have it encoded twice; nil: Answer encodes it.
	// Ids whose image pads disagree with Pixels are ignored.
	PromptIDs []int
}

// VQAAnswer is the model's answer to one VQARequest.
type VQAAnswer struct {
	// Index is the chosen option (0 = A): on the reasoning path the option
	// the generated text names (see Parsed), else the most probable one.
	Index int
	// Letter is the chosen option's letter.
	Letter string
	// Prob is Probs[Index].
	Prob float64
	// Probs holds one calibrated probability per option: the option
	// letters' next-token probabilities renormalised over the options,
	// after "<answer>" (fast path) or after the generated reasoning and
	// "<answer>" (reasoning path).
	Probs []float64
	// Parsed reports whether the answer was read from the generated text
	// (reasoning path); false when the text named no option and Index fell
	// back to the most probable option. Always true on the fast path.
	Parsed bool
	// Text is the generated completion, special tokens removed, and
	// Reasoning the text between <think> and </think> (reasoning path).
	Text      string
	Reasoning string
	// Tokens and LogProbs are the generated ids and their log-probs, and
	// FinishReason why generation stopped (reasoning path).
	Tokens       []int
	LogProbs     []float32
	FinishReason string
}

// ReasonOptions controls generation on the reasoning path. The zero value
// decodes greedily up to generate.DefaultMaxNewTokens tokens.
type ReasonOptions struct {
	MaxNewTokens int     // 0 means generate.DefaultMaxNewTokens
	Temperature  float32 // 0 is greedy
	TopK         int     // 0 keeps all
	TopP         float32 // 0 or 1 keeps all
	Seed         uint64  // VQA requests draw with Seed + request index; generator requests with Seed + GeneratorRequest.Seed
	// AnswerTemperature, when set, is the temperature of the answer letter
	// (the token after "<answer>"), so the reasoning can be sampled while
	// the decision is taken at the model's best (0: greedy). nil samples
	// the letter at Temperature. Setting it needs "<answer>" to be one
	// token of the tokenizer (ErrAnswerToken otherwise).
	AnswerTemperature *float32
}

// Answer answers every request as one batch: the vision encoder runs once
// per image, fast requests are scored from one forward pass whose prompt
// ends in "<answer>", and reasoning requests generate
// "<think>…</think><answer>X</answer>" (KV cache, stopping after
// "</answer>" or at end of sequence) and are then scored after their
// reasoning, so both modes return calibrated probabilities. Answers are in
// request order. A request that cannot be prompted fails the call with
// an error wrapping ErrBadRequest that names it.
func (v *VLM) Answer(ctx context.Context, reqs []VQARequest, o ReasonOptions) ([]VQAAnswer, error) {
	var fast, reason []int
	for i, r := range reqs {
		switch r.Mode {
		case ModeFast, "":
			fast = append(fast, i)
		case ModeReason:
			reason = append(reason, i)
		default:
			return nil, fmt.Errorf("request %d: %w: mode %q", i, ErrBadRequest, r.Mode)
		}
		if err := checkOptions(len(r.Options)); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
	}
	images := make([]Prompt, len(reqs))
	for i, r := range reqs {
		if r.Pixels != nil {
			images[i].Images = []*preprocessing.Pixels{r.Pixels}
		}
	}
	f, err := v.ImageFeatures(ctx, images)
	if err != nil {
		return nil, err
	}
	out := make([]VQAAnswer, len(reqs))
	if err := v.answerFast(ctx, reqs, fast, f.Select(fast), out); err != nil {
		return nil, err
	}
	if err := v.answerReason(ctx, reqs, reason, f.Select(reason), o, out); err != nil {
		return nil, err
	}
	return out, nil
}

// answerFast scores the requests at idx from one forward pass and writes
// their answers into out.
func (v *VLM) answerFast(ctx context.Context, reqs []VQARequest, idx []int, f Features, out []VQAAnswer) error {
	if len(idx) == 0 {
		return nil
	}
	probs, err := v.optionProbs(ctx, reqs, idx, f, func(int) string { return FastAnswerPrefix })
	if err != nil {
		return err
	}
	for k, i := range idx {
		out[i] = newAnswer(argmax(probs[k]), probs[k], true)
	}
	return nil
}

// answerReason generates reasoning for the requests at idx, then scores
// the option letters after it with the same image features, and writes
// their answers into out. The answer is the option the text names; when
// it names none, the most probable option.
func (v *VLM) answerReason(ctx context.Context, reqs []VQARequest, idx []int, f Features, o ReasonOptions, out []VQAAnswer) error {
	if len(idx) == 0 {
		return nil
	}
	prompts, err := v.vqaPrompts(reqs, idx, func(int) string { return "" })
	if err != nil {
		return err
	}
	opts := make([]generate.Options, len(idx))
	for k, i := range idx {
		if opts[k], err = v.sampling(o, uint64(i), []string{AnswerClose}); err != nil {
			return err
		}
	}
	res, err := v.GenerateStream(ctx, prompts, opts, f, nil)
	if err != nil {
		return err
	}
	texts := make([]string, len(idx))
	for k, r := range res {
		if texts[k], err = v.tok.Decode(r.Tokens, true); err != nil {
			return fmt.Errorf("models: decode answer %d: %w", idx[k], err)
		}
	}
	probs, err := v.optionProbs(ctx, reqs, idx, f, func(k int) string { return AnswerPrefix(texts[k]) })
	if err != nil {
		return err
	}
	for k, i := range idx {
		best, parsed := data.ExtractAnswer(texts[k], reqs[i].Options)
		if !parsed {
			best = argmax(probs[k])
		}
		a := newAnswer(best, probs[k], parsed)
		a.Text, a.Reasoning = texts[k], Reasoning(texts[k])
		a.Tokens, a.LogProbs, a.FinishReason = res[k].Tokens, res[k].LogProbs, res[k].FinishReason
		out[i] = a
	}
	return nil
}

// optionProbs prompts the requests at idx with suffix(k) after the
// assistant header of the k-th, runs one forward pass, and renormalises
// the option letters' next-token probabilities, row by row.
func (v *VLM) optionProbs(ctx context.Context, reqs []VQARequest, idx []int, f Features, suffix func(k int) string) ([][]float64, error) {
	prompts, err := v.vqaPrompts(reqs, idx, suffix)
	if err != nil {
		return nil, err
	}
	logits, err := v.LastLogitsWith(ctx, prompts, f)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(idx))
	for k, i := range idx {
		letters, err := v.LetterTokens(len(reqs[i].Options))
		if err != nil {
			return nil, err
		}
		out[k] = generate.OptionProbs(logits.Row(k), letters)
	}
	return out, nil
}

// vqaPrompts encodes the requests at idx with suffix(k) after the
// assistant header of the k-th.
func (v *VLM) vqaPrompts(reqs []VQARequest, idx []int, suffix func(k int) string) ([]Prompt, error) {
	out := make([]Prompt, len(idx))
	for k, i := range idx {
		p, err := v.vqaPrompt(reqs[i], suffix(k))
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		out[k] = p
	}
	return out, nil
}

// sampling converts ReasonOptions for one request, seeded o.Seed + seed,
// stopping at the bundle's end-of-sequence tokens and the given strings.
func (v *VLM) sampling(o ReasonOptions, seed uint64, stop []string) (generate.Options, error) {
	g := generate.Options{
		MaxNewTokens: o.MaxNewTokens, Temperature: o.Temperature, TopK: o.TopK, TopP: o.TopP,
		Seed: o.Seed + seed, StopTokens: v.st.EOS, StopStrings: stop,
		Detokenize: func(ids []int) string {
			s, _ := v.tok.Decode(ids, false) // generated ids are in the vocab
			return s
		},
	}
	if o.AnswerTemperature != nil {
		id, err := v.AnswerToken()
		if err != nil {
			return g, err
		}
		g.TemperatureAfter = map[int]float32{id: *o.AnswerTemperature}
	}
	return g, nil
}

// newAnswer returns the answer choosing option best with the options'
// probabilities.
func newAnswer(best int, probs []float64, parsed bool) VQAAnswer {
	return VQAAnswer{Index: best, Letter: data.Letters[best : best+1], Prob: probs[best], Probs: probs, Parsed: parsed}
}

// argmax returns the index of the largest value (the first on ties).
func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
