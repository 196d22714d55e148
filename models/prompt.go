package models

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/tokenizer"
)

// This file turns requests into prompts (token ids and their images) for
// every role; it calls the tokenizer only.

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

// MinOptions and MaxOptions bound the options of a multiple-choice
// question: every role, the REST API and the data files use these. The
// upper bound is the number of option letters (data.Letters).
const (
	MinOptions = 2
	MaxOptions = data.MaxOptions
)

// checkOptions reports an option count outside MinOptions…MaxOptions.
func checkOptions(n int) error {
	if n < MinOptions || n > MaxOptions {
		return fmt.Errorf("%w: %d options (want %d…%d)", ErrBadRequest, n, MinOptions, MaxOptions)
	}
	return nil
}

// VQAPrompt returns the chat prompt of a request as SFT renders it: the
// manifest's system message, imageTokens pad tokens, the question and the
// lettered options, ending after "<|im_start|>assistant\n". req.Pixels is
// not read.
func (v *VLM) VQAPrompt(req VQARequest, imageTokens int) tokenizer.VQAPrompt {
	return tokenizer.VQAPrompt{System: v.Manifest().Prompt.System, Question: req.Question,
		Options: req.Options, ImageTokens: imageTokens}
}

// PromptLength returns the number of tokens Answer's first forward pass
// reads for req with an image of imageTokens pad tokens (its
// Pixels.ImageTokens(), or ImageConfig().ImageTokens(h, w) before
// processing; 0 for text only): the chat prompt plus FastAnswerPrefix on
// the fast path, the chat prompt alone on the reasoning path (which then
// grows by the tokens it generates). req.Pixels is not read. Batchers use
// it to group requests of similar length, and to refuse a request before
// it reaches a batch: errors wrap ErrBadRequest, a prompt over
// VLMOptions.MaxPromptTokens included.
func (v *VLM) PromptLength(req VQARequest, imageTokens int) (int, error) {
	ids, err := v.EncodeVQA(req, imageTokens)
	return len(ids), err
}

// EncodeVQA returns the ids of the prompt PromptLength counts, for
// VQARequest.PromptIDs; errors as PromptLength's.
func (v *VLM) EncodeVQA(req VQARequest, imageTokens int) ([]int, error) {
	if err := checkOptions(len(req.Options)); err != nil {
		return nil, err
	}
	p, err := v.encodeChat(v.VQAPrompt(req, imageTokens), nil, promptSuffix(req.Mode))
	if err != nil {
		return nil, err
	}
	if err := v.checkBudget(len(p.IDs)); err != nil {
		return nil, err
	}
	return p.IDs, nil
}

// promptSuffix is what Answer's first forward pass appends after the
// assistant header in mode.
func promptSuffix(m Mode) string {
	if m == ModeReason {
		return ""
	}
	return FastAnswerPrefix
}

// vqaPrompt encodes a request, with suffix appended after the assistant
// header; it takes req.PromptIDs instead when they were encoded with
// that suffix for an image of req.Pixels' size.
func (v *VLM) vqaPrompt(req VQARequest, suffix string) (Prompt, error) {
	if err := checkOptions(len(req.Options)); err != nil {
		return Prompt{}, err
	}
	if req.PromptIDs != nil && suffix == promptSuffix(req.Mode) && v.imagePads(req.PromptIDs) == req.Pixels.ImageTokens() {
		p := Prompt{IDs: slices.Clone(req.PromptIDs)}
		if req.Pixels != nil {
			p.Images = []*preprocessing.Pixels{req.Pixels}
		}
		return p, nil
	}
	return v.encodeChat(v.VQAPrompt(req, req.Pixels.ImageTokens()), req.Pixels, suffix)
}

// imagePads counts the image pad tokens in ids.
func (v *VLM) imagePads(ids []int) int {
	n := 0
	for _, id := range ids {
		if id == v.st.ImagePad {
			n++
		}
	}
	return n
}

// encodeChat encodes a chat prompt with an optional image and a suffix
// after the assistant header.
func (v *VLM) encodeChat(p tokenizer.VQAPrompt, px *preprocessing.Pixels, suffix string) (Prompt, error) {
	ids, err := v.encodeVQAPrompt(p)
	if err != nil {
		return Prompt{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
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

// encodeVQAPrompt encodes p up to the assistant header with the folder's
// own chat template when it has one (tokenizer.VQAPrompt.Messages, image
// pads expanded), else with tokenizer.VQAPrompt's rendering (Qwen2-VL's
// template). Either way the prompt's fields are validated first.
func (v *VLM) encodeVQAPrompt(p tokenizer.VQAPrompt) ([]int, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if v.chat == nil {
		enc, err := v.tok.EncodePrompt(p)
		return enc.IDs, err
	}
	var pads []int
	if p.ImageTokens > 0 {
		pads = []int{p.ImageTokens}
	}
	_, ids, err := v.tok.EncodeChat(v.chat, p.Messages(), true, pads)
	return ids, err
}

// LetterTokens returns the token id of each of the first n option letters
// ("A", "B", …); each must be a single token, else ErrLetterToken.
func (v *VLM) LetterTokens(n int) ([]int, error) {
	if n > len(data.Letters) {
		return nil, fmt.Errorf("%w: %d letters (at most %d)", ErrBadRequest, n, len(data.Letters))
	}
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

// AnswerToken returns the id of "<answer>", the token the answer letter
// follows; ErrAnswerToken when the tokenizer splits it.
func (v *VLM) AnswerToken() (int, error) {
	ids, err := v.tok.Encode(AnswerOpen)
	if err != nil || len(ids) != 1 {
		return 0, fmt.Errorf("%w: %q encodes to %v (%v)", ErrAnswerToken, AnswerOpen, ids, err)
	}
	return ids[0], nil
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

// AnswerPrefix returns the assistant text that precedes the answer letter
// for a generated completion: the completion up to and including its first
// "<answer>", or, when it has none, its reasoning wrapped as
// "<think>…</think><answer>". Chat control tokens are removed, so the
// text cannot open turns or image slots.
func AnswerPrefix(text string) string {
	text = StripControl(text)
	if i := strings.Index(text, AnswerOpen); i >= 0 {
		return text[:i+len(AnswerOpen)]
	}
	reasoning := Reasoning(text)
	if !strings.Contains(text, ThinkOpen) {
		reasoning = strings.TrimSpace(text)
	}
	return ThinkOpen + reasoning + ThinkClose + AnswerOpen
}

// StripControl removes the chat control tokens (turn and vision markers)
// from text, so user or model text cannot open turns or image slots.
func StripControl(text string) string {
	for _, ctl := range []string{tokenizer.ImStart, tokenizer.ImEnd, tokenizer.VisionStart, tokenizer.VisionEnd, tokenizer.ImagePad} {
		text = strings.ReplaceAll(text, ctl, "")
	}
	return text
}

// ChatTurn is one message of a conversation for ChatPrompt: its role
// ("system", "user", "assistant"), its text, and its images (processed,
// shown before the text, in order).
type ChatTurn struct {
	Role   string
	Text   string
	Images []*preprocessing.Pixels
}

// ChatPrompt encodes a conversation up to the assistant's next turn with
// the folder's own chat template (tokenizer.Tokenizer.EncodeChat, image pads
// expanded to each image's tokens), or, for a folder without one, in
// Qwen2-VL's ChatML. The manifest's system message opens it when the first
// turn is not a system turn. Text holding a chat control token is refused
// (ErrBadRequest), so a message cannot forge turns or image slots.
func (v *VLM) ChatPrompt(turns []ChatTurn) (Prompt, error) {
	if len(turns) == 0 || turns[0].Role != "system" {
		if sys := v.Manifest().Prompt.System; sys != "" || v.chat == nil {
			turns = append([]ChatTurn{{Role: "system", Text: cmp.Or(sys, tokenizer.DefaultSystemPrompt)}}, turns...)
		}
	}
	var out Prompt
	var pads []int
	msgs := make([]tokenizer.ChatMessage, len(turns))
	for i, t := range turns {
		if StripControl(t.Text) != t.Text {
			return Prompt{}, fmt.Errorf("%w: message %d contains a chat control token", ErrBadRequest, i)
		}
		msgs[i] = tokenizer.ChatMessage{Role: t.Role, Text: t.Text}
		if len(t.Images) == 0 {
			continue
		}
		msgs[i].Text = ""
		for _, px := range t.Images {
			msgs[i].Parts = append(msgs[i].Parts, tokenizer.ChatPart{Type: tokenizer.ChatImage})
			pads = append(pads, px.ImageTokens())
			out.Images = append(out.Images, px)
		}
		msgs[i].Parts = append(msgs[i].Parts, tokenizer.ChatPart{Type: tokenizer.ChatText, Text: t.Text})
	}
	var err error
	if v.chat != nil {
		_, out.IDs, err = v.tok.EncodeChat(v.chat, msgs, true, pads)
	} else {
		out.IDs, err = v.tok.Encode(chatML(msgs, pads))
	}
	if err != nil {
		return Prompt{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return out, nil
}

// chatML renders msgs in Qwen2-VL's ChatML (what its chat template
// renders), each image part as a vision block of pads[k] pads, ending with
// the assistant header.
func chatML(msgs []tokenizer.ChatMessage, pads []int) string {
	var b strings.Builder
	k := 0
	for _, m := range msgs {
		b.WriteString(tokenizer.ImStart + m.Role + "\n" + m.Text)
		for _, p := range m.Parts {
			if p.Type == tokenizer.ChatImage {
				b.WriteString(tokenizer.VisionStart + strings.Repeat(tokenizer.ImagePad, pads[k]) + tokenizer.VisionEnd)
				k++
				continue
			}
			b.WriteString(p.Text)
		}
		b.WriteString(tokenizer.ImEnd + "\n")
	}
	b.WriteString(tokenizer.ImStart + "assistant\n")
	return b.String()
}
