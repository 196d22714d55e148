package models

import (
	"context"
	"fmt"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/preprocessing"
)

// RewardRequest is one synthetic sample for the reward model to judge.
type RewardRequest struct {
	Pixels   *preprocessing.Pixels // processed image (VLM.ProcessImage); nil: text only
	Question string                // the sample's question
	Options  []string              // its options, lettered A, B, …
	Response string                // "<think>…</think><answer>X</answer>"
}

// RewardResponse returns a response as the reward model reads it: the
// answer letter is followed by the text of the option it names
// ("<answer>B</answer>" becomes "<answer>B. benign</answer>"), as a judge
// is shown the chosen option. Whether the reasoning agrees with the answer
// is then a comparison of two nearby texts instead of a lookup through
// the option list, which a small model does not learn from a few thousand
// samples. A response without exactly one answer naming a valid letter is
// returned unchanged.
func RewardResponse(options []string, response string) string {
	pre, rest, ok := strings.Cut(response, AnswerOpen)
	if !ok {
		return response
	}
	letter, post, ok := strings.Cut(rest, AnswerClose)
	if !ok || strings.Contains(post, AnswerOpen) {
		return response
	}
	letter = strings.TrimSpace(letter)
	i := strings.Index(data.Letters[:min(len(options), len(data.Letters))], letter)
	if len(letter) != 1 || i < 0 {
		return response
	}
	return pre + AnswerOpen + letter + ". " + options[i] + AnswerClose + post
}

// RewardPrompt encodes a sample as the reward model reads it: the VQA chat
// prompt (as VQAPrompt) with RewardResponse(Options, Response) as the
// assistant's turn, ending with the <|im_end|> that closes it. The score
// is read at that last token.
func (v *VLM) RewardPrompt(req RewardRequest) (Prompt, error) {
	if req.Response == "" {
		return Prompt{}, fmt.Errorf("%w: empty response", ErrBadRequest)
	}
	px := req.Pixels
	p := v.VQAPrompt(VQARequest{Question: req.Question, Options: req.Options}, px.ImageTokens())
	p.Answer = RewardResponse(req.Options, req.Response)
	enc, err := v.tok.EncodePrompt(p)
	if err != nil {
		return Prompt{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	out := Prompt{IDs: enc.IDs[:enc.AnswerEnd]}
	if px != nil {
		out.Images = []*preprocessing.Pixels{px}
	}
	return out, nil
}

// Score returns the reward model's score of each sample (the paper's scale:
// about 10 for a correct sample, 6 perturbed, 0 incoherent, −6
// irrelevant) from one batched forward pass. The bundle must have the
// reward role; otherwise the error wraps ErrRole.
func (v *VLM) Score(ctx context.Context, reqs []RewardRequest) ([]float32, error) {
	prompts := make([]Prompt, len(reqs))
	for i, r := range reqs {
		p, err := v.RewardPrompt(r)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		prompts[i] = p
	}
	return v.ScorePrompts(ctx, prompts)
}
