package models

import (
	"context"
	"fmt"
	"image"
	"math"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime/generate"
	"github.com/medgr2/medgr2/tokenizer"
)

// Answer-format tags (PromptFormat.AnswerFormat "think_answer").
const (
	ThinkOpen   = "<think>"
	ThinkClose  = "</think>"
	AnswerOpen  = "<answer>"
	AnswerClose = "</answer>"
)

// FastAnswerPrefix is appended after "<|im_start|>assistant\n" on the fast
// path, so the very next token is the option letter.
const FastAnswerPrefix = AnswerOpen

// VQARequest is one multiple-choice question about an image.
type VQARequest struct {
	// Image is the decoded image; nil for a text-only question unless
	// Pixels is set.
	Image image.Image
	// Pixels is an already processed image; it takes precedence over Image.
	Pixels *preprocessing.Pixels
	// Question is the question text; required.
	Question string
	// Options are the answer choices, lettered A, B, …; at least two.
	Options []string
}

// VQAAnswer is the model's answer to one VQARequest.
type VQAAnswer struct {
	// Index is the chosen option (0 = A), or -1 when the generated text
	// names no option.
	Index int
	// Letter is the chosen option's letter, "" when Index is -1.
	Letter string
	// Prob is the probability of the chosen option: from OptionProbs on
	// the fast path; on the reasoning path, the probability the model gave
	// the letter token it wrote after <answer> (0 when it wrote none).
	Prob float64
	// Probs holds one probability per option (fast path only).
	Probs []float64
	// Reasoning is the text between <think> and </think> (reasoning path).
	Reasoning string
	// Text is the generated completion, special tokens removed (reasoning
	// path).
	Text string
	// Tokens and LogProbs are the generated ids and their log-probs.
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
	Seed         uint64  // per-request seeds are Seed + request index
	// AnswerTemperature, when set, is the temperature of the answer letter
	// (the token after "<answer>"), so the reasoning can be sampled while
	// the decision is taken at the model's best (0: greedy). nil samples
	// the letter at Temperature. Setting it needs "<answer>" to be one
	// token of the tokenizer (ErrAnswerToken otherwise).
	AnswerTemperature *float32
}

// VQAPrompt returns the chat prompt of a request as SFT renders it: the
// manifest's system message, the image's pad tokens, the question and the
// lettered options, ending after "<|im_start|>assistant\n".
func (v *VLM) VQAPrompt(req VQARequest, imageTokens int) tokenizer.VQAPrompt {
	return tokenizer.VQAPrompt{System: v.Manifest().Prompt.System, Question: req.Question,
		Options: req.Options, ImageTokens: imageTokens}
}

// pixelsOf returns the processed image of a request, or nil.
func (v *VLM) pixelsOf(img image.Image, px *preprocessing.Pixels) (*preprocessing.Pixels, error) {
	if px != nil || img == nil {
		return px, nil
	}
	p, err := v.image.Process(img)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return p, nil
}

// vqaPrompt encodes a request, with suffix appended after the assistant
// header.
func (v *VLM) vqaPrompt(req VQARequest, suffix string) (Prompt, error) {
	if len(req.Options) < 2 || len(req.Options) > len(data.Letters) {
		return Prompt{}, fmt.Errorf("%w: %d options (want 2…%d)", ErrBadRequest, len(req.Options), len(data.Letters))
	}
	px, err := v.pixelsOf(req.Image, req.Pixels)
	if err != nil {
		return Prompt{}, err
	}
	return v.encodeChat(v.VQAPrompt(req, px.ImageTokens()), px, suffix)
}

// encodeChat encodes a chat prompt with an optional image and a suffix
// after the assistant header.
func (v *VLM) encodeChat(p tokenizer.VQAPrompt, px *preprocessing.Pixels, suffix string) (Prompt, error) {
	enc, err := v.tok.EncodePrompt(p)
	if err != nil {
		return Prompt{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	ids := enc.IDs
	if suffix != "" {
		if ids, err = v.tok.AppendEncode(ids, suffix); err != nil {
			return Prompt{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	out := Prompt{IDs: ids}
	if px != nil {
		out.Images = []*preprocessing.Pixels{px}
	}
	return out, nil
}

// LetterTokens returns the token id of each of the first n option letters
// ("A", "B", …); each must be a single token, else ErrLetterToken.
func (v *VLM) LetterTokens(n int) ([]int, error) {
	out := make([]int, n)
	for i := range n {
		l := data.Letters[i : i+1]
		ids, err := v.tok.Encode(l)
		if err != nil || len(ids) != 1 {
			return nil, fmt.Errorf("%w: %q encodes to %v (%v)", ErrLetterToken, l, ids, err)
		}
		out[i] = ids[0]
	}
	return out, nil
}

// AnswerFast answers each request from ONE forward pass: the prompt ends
// with FastAnswerPrefix ("<answer>"), and the next-token logits of the
// option letters, renormalised over the options (generate.OptionProbs),
// give each option's probability. The requests run as one batch.
func (v *VLM) AnswerFast(ctx context.Context, reqs []VQARequest) ([]VQAAnswer, error) {
	prompts := make([]Prompt, len(reqs))
	letters := make([][]int, len(reqs))
	for i, r := range reqs {
		p, err := v.vqaPrompt(r, FastAnswerPrefix)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		if letters[i], err = v.LetterTokens(len(r.Options)); err != nil {
			return nil, err
		}
		prompts[i] = p
	}
	logits, err := v.LastLogits(ctx, prompts)
	if err != nil {
		return nil, err
	}
	out := make([]VQAAnswer, len(reqs))
	for i := range reqs {
		probs := generate.OptionProbs(logits.Row(i), letters[i])
		best := 0
		for k, p := range probs {
			if p > probs[best] {
				best = k
			}
		}
		out[i] = VQAAnswer{Index: best, Letter: data.Letters[best : best+1], Prob: probs[best], Probs: probs}
	}
	return out, nil
}

// AnswerWithReasoning generates "<think>…</think><answer>X</answer>" for
// each request (batched, KV cache), stopping at an end-of-sequence token or
// after "</answer>", and parses the answer with data.ExtractAnswer.
func (v *VLM) AnswerWithReasoning(ctx context.Context, reqs []VQARequest, o ReasonOptions) ([]VQAAnswer, error) {
	prompts := make([]Prompt, len(reqs))
	opts := make([]generate.Options, len(reqs))
	for i, r := range reqs {
		p, err := v.vqaPrompt(r, "")
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		prompts[i] = p
		if opts[i], err = v.sampling(o, i, []string{AnswerClose}); err != nil {
			return nil, err
		}
	}
	res, err := v.Generate(ctx, prompts, opts, GenerateOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]VQAAnswer, len(reqs))
	for i, r := range res {
		text, err := v.tok.Decode(r.Tokens, true)
		if err != nil {
			return nil, fmt.Errorf("models: decode answer %d: %w", i, err)
		}
		a := VQAAnswer{Index: -1, Text: text, Reasoning: Reasoning(text), Tokens: r.Tokens,
			LogProbs: r.LogProbs, FinishReason: r.FinishReason}
		if k, ok := data.ExtractAnswer(text, reqs[i].Options); ok {
			a.Index, a.Letter = k, data.Letters[k:k+1]
			a.Prob = v.letterProb(r, k)
		}
		out[i] = a
	}
	return out, nil
}

// sampling converts ReasonOptions for request i, stopping at the bundle's
// end-of-sequence tokens and the given strings.
func (v *VLM) sampling(o ReasonOptions, i int, stop []string) (generate.Options, error) {
	g := generate.Options{
		MaxNewTokens: o.MaxNewTokens, Temperature: o.Temperature, TopK: o.TopK, TopP: o.TopP,
		Seed: o.Seed + uint64(i), StopTokens: v.st.EOS, StopStrings: stop,
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

// AnswerToken returns the id of "<answer>", the token the answer letter
// follows; ErrAnswerToken when the tokenizer splits it.
func (v *VLM) AnswerToken() (int, error) {
	ids, err := v.tok.Encode(AnswerOpen)
	if err != nil || len(ids) != 1 {
		return 0, fmt.Errorf("%w: %q encodes to %v (%v)", ErrAnswerToken, AnswerOpen, ids, err)
	}
	return ids[0], nil
}

// letterProb returns the probability of the letter token of option k that
// directly follows "<answer>" in the completion, or 0.
func (v *VLM) letterProb(r generate.Result, k int) float64 {
	ids, err := v.LetterTokens(k + 1)
	if err != nil {
		return 0
	}
	want := ids[k]
	for i := len(r.Tokens) - 1; i >= 0; i-- {
		if r.Tokens[i] != want {
			continue
		}
		prefix, err := v.tok.Decode(r.Tokens[:i], false)
		if err == nil && strings.HasSuffix(strings.TrimSpace(prefix), AnswerOpen) {
			return math.Exp(float64(r.LogProbs[i]))
		}
	}
	return 0
}

// Reasoning returns the text between the first <think> and the following
// </think> (to the end when unclosed), trimmed; "" without <think>.
func Reasoning(text string) string {
	_, after, ok := strings.Cut(text, ThinkOpen)
	if !ok {
		return ""
	}
	inner, _, _ := strings.Cut(after, ThinkClose)
	return strings.TrimSpace(inner)
}
