package backend

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime/generate"
	"github.com/medgr2/medgr2/server/model"
)

// Chat adapts a logits bundle to model.Chat: conversations are rendered
// in the Qwen2-VL chat template (ChatML with vision blocks), generated in
// one batch with the KV cache, and streamed through ChatInput.Emit as
// tokens are sampled (models.GenerateStream).
type Chat struct {
	m *Models
	s *slot
}

// Info implements model.Chat.
func (c *Chat) Info() model.Info { return info(c.s, "chat") }

// ChatBatch implements model.Chat. Generation stops at the bundle's
// end-of-sequence tokens, at a stop string (cut from the text, never
// streamed) or after MaxTokens.
func (c *Chat) ChatBatch(ctx context.Context, in []model.ChatInput) ([]model.ChatOutput, error) {
	v, done := c.s.use()
	defer done()
	detok := func(ids []int) string { return detokenize(v, ids) }
	prompts := make([]models.Prompt, len(in))
	opts := make([]generate.Options, len(in))
	streams := make([]*textStream, len(in))
	for i, x := range in {
		p, err := c.prompt(ctx, v, x.Messages)
		if err != nil {
			return nil, mapErr(fmt.Sprintf("chat input %d", i), err)
		}
		prompts[i] = p
		opts[i] = generate.Options{MaxNewTokens: x.MaxTokens, Temperature: float32(x.Temperature), TopP: float32(x.TopP),
			Seed: x.Seed, StopTokens: v.Manifest().SpecialTokens.EOS, StopStrings: x.Stop, Detokenize: detok}
		streams[i] = &textStream{decode: detok, stop: x.Stop, emit: x.Emit}
	}
	f, err := v.ImageFeatures(ctx, prompts)
	if err != nil {
		return nil, mapErr("chat", err)
	}
	res, err := v.GenerateStream(ctx, prompts, opts, f, func(row int, toks []int) { streams[row].add(toks) })
	if err != nil {
		return nil, mapErr("chat", err)
	}
	out := make([]model.ChatOutput, len(in))
	for i, r := range res {
		text := streams[i].finish(r.Tokens)
		out[i] = model.ChatOutput{Text: text, FinishReason: r.FinishReason, PromptTokens: len(prompts[i].IDs), CompletionTokens: len(r.Tokens)}
	}
	return out, nil
}

// detokenize decodes generated ids without special tokens.
func detokenize(v *models.VLM, ids []int) string {
	s, _ := v.Tokenizer().Decode(ids, true) // generated ids are in the vocabulary
	return s
}

// prompt encodes messages with the bundle's chat template
// (models.VLM.ChatPrompt), after processing their images.
func (c *Chat) prompt(ctx context.Context, v *models.VLM, msgs []model.ChatMessage) (models.Prompt, error) {
	var imgs []model.Image
	for _, m := range msgs {
		imgs = append(imgs, m.Images...)
	}
	px, err := c.m.pixels(ctx, v, imgs)
	if err != nil {
		return models.Prompt{}, err
	}
	turns := make([]models.ChatTurn, len(msgs))
	k := 0
	for i, m := range msgs {
		turns[i] = models.ChatTurn{Role: m.Role, Text: m.Text, Images: px[k : k+len(m.Images)]}
		k += len(m.Images)
	}
	return v.ChatPrompt(turns)
}

// textStream turns one row's tokens into text deltas. It emits only text
// that cannot change any more: a trailing incomplete UTF-8 character
// (decoded as U+FFFD) and a tail that may be the start of a stop string
// are held back, and nothing from a stop string on is ever emitted.
type textStream struct {
	decode func(ids []int) string
	stop   []string
	emit   func(string) // nil: not streaming
	ids    []int
	sent   int  // bytes of text emitted
	cut    bool // a stop string was seen; the text is final
}

// add appends a row's new tokens and emits what became final.
func (s *textStream) add(toks []int) {
	if s.emit == nil || s.cut {
		return
	}
	s.ids = append(s.ids, toks...)
	s.flush(s.decode(s.ids))
}

// finish returns the completion's text (cut before the first stop string)
// and emits whatever was held back.
func (s *textStream) finish(toks []int) string {
	text, _ := cutStop(s.decode(toks), s.stop)
	if s.emit != nil && len(text) > s.sent {
		s.emit(text[s.sent:])
		s.sent = len(text)
	}
	return text
}

// flush emits the final part of text not yet sent.
func (s *textStream) flush(text string) {
	text, hit := cutStop(text, s.stop)
	s.cut = hit
	end := len(text)
	if !hit {
		end = stableEnd(text, s.stop)
	}
	if end > s.sent {
		s.emit(text[s.sent:end])
		s.sent = end
	}
}

// cutStop cuts text before the earliest stop string; hit reports one.
func cutStop(text string, stop []string) (string, bool) {
	cut := -1
	for _, st := range stop {
		if i := strings.Index(text, st); st != "" && i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut < 0 {
		return text, false
	}
	return text[:cut], true
}

// stableEnd returns how much of text is final: it drops a trailing
// U+FFFD (a character still being decoded) and the longest tail that is a
// proper prefix of a stop string.
func stableEnd(text string, stop []string) int {
	end := len(text)
	for end > 0 {
		r, size := utf8.DecodeLastRuneInString(text[:end])
		if r != utf8.RuneError {
			break
		}
		end -= size
	}
	hold := 0
	for _, st := range stop {
		for n := min(len(st)-1, end); n > hold; n-- {
			if strings.HasSuffix(text[:end], st[:n]) {
				hold = n
				break
			}
		}
	}
	return end - hold
}
