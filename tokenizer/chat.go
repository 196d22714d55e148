package tokenizer

import (
	"fmt"
	"strings"
)

// Chat-format tokens of Qwen2-VL that a prompt needs.
const (
	ImStart     = "<|im_start|>"
	ImEnd       = "<|im_end|>"
	VisionStart = "<|vision_start|>"
	VisionEnd   = "<|vision_end|>"
	ImagePad    = "<|image_pad|>"
)

// DefaultSystemPrompt is the system message Qwen2-VL's chat template uses
// when none is given.
const DefaultSystemPrompt = "You are a helpful assistant."

// MaxImageTokens bounds VQAPrompt.ImageTokens (Qwen2-VL's largest default
// image, 16384 patches, gives 4096 tokens after the 2×2 merge).
const MaxImageTokens = 1 << 16

// VQAPrompt is one visual question in the Qwen2-VL chat format, shared by
// serving (Answer empty: the text ends where the model starts writing) and
// training (Answer set: the loss is masked to the answer span).
//
// Render produces, with "\n" as written:
//
//	<|im_start|>system
//	{System}<|im_end|>
//	<|im_start|>user
//	<|vision_start|>{ImageTokens × <|image_pad|>}<|vision_end|>{Question}
//	A. {Options[0]}
//	B. {Options[1]}<|im_end|>
//	<|im_start|>assistant
//	{Answer}<|im_end|>
//
// The vision block is left out when ImageTokens is 0, the option lines when
// Options is empty, and "{Answer}<|im_end|>\n" when Answer is empty.
type VQAPrompt struct {
	// System is the system message; "" means DefaultSystemPrompt.
	System string
	// Question is the user's question; required.
	Question string
	// Options are the answer choices, lettered A, B, … (at most 26).
	Options []string
	// ImageTokens is the number of <|image_pad|> tokens, computed by the
	// caller as grid_t·grid_h·grid_w / merge² (merge is 2 for Qwen2-VL).
	// 0 means a text-only prompt.
	ImageTokens int
	// Answer is the assistant's reply for training, e.g.
	// "<think>…</think><answer>B</answer>"; "" for serving.
	Answer string
}

// RenderedPrompt is a VQAPrompt as text.
type RenderedPrompt struct {
	// Text is the full prompt.
	Text string
	// AnswerStart is the byte offset in Text where the answer begins (the
	// end of "<|im_start|>assistant\n"); it equals len(Text) without Answer.
	AnswerStart int
	// AnswerEnd is the byte offset just after the <|im_end|> that closes
	// the answer (the trailing "\n" is not part of the answer span).
	AnswerEnd int
}

// EncodedPrompt is a VQAPrompt as token ids.
type EncodedPrompt struct {
	// IDs are the token ids of RenderedPrompt.Text.
	IDs []int
	// AnswerStart is the index in IDs of the first answer token; training
	// computes the loss on IDs[AnswerStart:AnswerEnd] only.
	AnswerStart int
	// AnswerEnd is one past the answer's closing <|im_end|> token.
	AnswerEnd int
}

// Render returns the prompt text. A field that contains one of the chat
// control tokens (<|im_start|>, <|im_end|>, <|vision_start|>,
// <|vision_end|>, <|image_pad|>) is rejected so user text cannot forge turns
// or image slots; errors wrap ErrBadPrompt.
func (p VQAPrompt) Render() (RenderedPrompt, error) {
	if err := p.validate(); err != nil {
		return RenderedPrompt{}, err
	}
	system := p.System
	if system == "" {
		system = DefaultSystemPrompt
	}
	var b strings.Builder
	b.Grow(len(system) + len(p.Question) + len(p.Answer) + p.ImageTokens*len(ImagePad) + 128)
	b.WriteString(ImStart + "system\n" + system + ImEnd + "\n" + ImStart + "user\n")
	if p.ImageTokens > 0 {
		b.WriteString(VisionStart)
		for i := 0; i < p.ImageTokens; i++ {
			b.WriteString(ImagePad)
		}
		b.WriteString(VisionEnd)
	}
	b.WriteString(p.UserText())
	b.WriteString(ImEnd + "\n" + ImStart + "assistant\n")
	r := RenderedPrompt{AnswerStart: b.Len()}
	if p.Answer != "" {
		b.WriteString(p.Answer + ImEnd)
		r.AnswerEnd = b.Len()
		b.WriteString("\n")
	} else {
		r.AnswerEnd = b.Len()
	}
	r.Text = b.String()
	return r, nil
}

// UserText returns the text of the user turn after the image: the
// question and the lettered options, one per line ("Q?\nA. x\nB. y").
func (p VQAPrompt) UserText() string {
	var b strings.Builder
	b.WriteString(p.Question)
	for i, o := range p.Options {
		fmt.Fprintf(&b, "\n%c. %s", 'A'+i, o)
	}
	return b.String()
}

// Messages returns the prompt as chat messages for a chat template
// (Answer is not included): the system message when System is set, then
// the user turn of an image part (when ImageTokens > 0) and UserText.
func (p VQAPrompt) Messages() []ChatMessage {
	var msgs []ChatMessage
	if p.System != "" {
		msgs = append(msgs, ChatMessage{Role: "system", Text: p.System})
	}
	var parts []ChatPart
	if p.ImageTokens > 0 {
		parts = append(parts, ChatPart{Type: ChatImage})
	}
	parts = append(parts, ChatPart{Type: ChatText, Text: p.UserText()})
	return append(msgs, ChatMessage{Role: "user", Parts: parts})
}

// Validate reports a prompt Render would refuse (an empty question, a
// control token in a field, too many image tokens or options); errors wrap
// ErrBadPrompt.
func (p VQAPrompt) Validate() error { return p.validate() }

func (p VQAPrompt) validate() error {
	if strings.TrimSpace(p.Question) == "" {
		return fmt.Errorf("%w: empty question", ErrBadPrompt)
	}
	if p.ImageTokens < 0 || p.ImageTokens > MaxImageTokens {
		return fmt.Errorf("%w: %d image tokens (want 0…%d)", ErrBadPrompt, p.ImageTokens, MaxImageTokens)
	}
	if len(p.Options) > 26 {
		return fmt.Errorf("%w: %d options (at most 26)", ErrBadPrompt, len(p.Options))
	}
	fields := map[string]string{"system": p.System, "question": p.Question, "answer": p.Answer}
	for i, o := range p.Options {
		if strings.TrimSpace(o) == "" {
			return fmt.Errorf("%w: option %c is empty", ErrBadPrompt, 'A'+i)
		}
		fields[fmt.Sprintf("option %c", 'A'+i)] = o
	}
	for name, s := range fields {
		for _, ctl := range []string{ImStart, ImEnd, VisionStart, VisionEnd, ImagePad} {
			if strings.Contains(s, ctl) {
				return fmt.Errorf("%w: %s contains the control token %s", ErrBadPrompt, name, ctl)
			}
		}
	}
	return nil
}

// EncodePrompt renders p and encodes it. The text before the answer and the
// answer are encoded separately, so AnswerStart is an exact token boundary
// (the answer's first token never merges with the "\n" before it). It fails
// with ErrUnsupported if the tokenizer lacks a chat control token.
func (t *Tokenizer) EncodePrompt(p VQAPrompt) (EncodedPrompt, error) {
	for _, ctl := range []string{ImStart, ImEnd, VisionStart, VisionEnd, ImagePad} {
		if _, ok := t.TokenID(ctl); !ok {
			return EncodedPrompt{}, fmt.Errorf("%w: tokenizer has no %s token for the chat format", ErrUnsupported, ctl)
		}
	}
	r, err := p.Render()
	if err != nil {
		return EncodedPrompt{}, err
	}
	ids, err := t.Encode(r.Text[:r.AnswerStart])
	if err != nil {
		return EncodedPrompt{}, fmt.Errorf("tokenizer: encode prompt: %w", err)
	}
	e := EncodedPrompt{AnswerStart: len(ids)}
	if ids, err = t.AppendEncode(ids, r.Text[r.AnswerStart:r.AnswerEnd]); err != nil {
		return EncodedPrompt{}, fmt.Errorf("tokenizer: encode answer: %w", err)
	}
	e.AnswerEnd = len(ids)
	if ids, err = t.AppendEncode(ids, r.Text[r.AnswerEnd:]); err != nil {
		return EncodedPrompt{}, fmt.Errorf("tokenizer: encode prompt tail: %w", err)
	}
	e.IDs = ids
	return e, nil
}
