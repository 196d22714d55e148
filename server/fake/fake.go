package fake

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/model"
)

// Options sets a fake model's cost and identity. The zero value costs
// nothing and is named "fake-<role>" version "1".
type Options struct {
	BatchCost time.Duration // fixed wall time per batch
	ItemCost  time.Duration // added wall time per item in a batch
	Version   string        // model version; default "1"
	// Fail, if set, is called per batch; a non-nil result is returned as
	// the batch error (to test error paths).
	Fail func(n int) error
}

// counters records calls; safe for concurrent reads.
type counters struct {
	batches atomic.Int64 // batches run
	items   atomic.Int64 // items across all batches
}

// Batches returns the number of batches run so far.
func (c *counters) Batches() int64 { return c.batches.Load() }

// Items returns the number of items run so far.
func (c *counters) Items() int64 { return c.items.Load() }

// spend records a batch of n and waits its cost, or returns ctx's error.
func (o Options) spend(ctx context.Context, c *counters, n int) error {
	c.batches.Add(1)
	c.items.Add(int64(n))
	if o.Fail != nil {
		if err := o.Fail(n); err != nil {
			return err
		}
	}
	d := o.BatchCost + time.Duration(n)*o.ItemCost
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fake: batch of %d: %w", n, ctx.Err())
	}
}

func (o Options) info(role string) model.Info {
	v := o.Version
	if v == "" {
		v = "1"
	}
	return model.Info{Name: "fake-" + role, Version: v, Role: role}
}

// hash64 mixes strings into a stable 64-bit value.
func hash64(parts ...string) uint64 {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return binary.LittleEndian.Uint64(h.Sum(nil))
}

// VQA is a fake model.VQA.
type VQA struct {
	counters
	opts Options
}

// NewVQA returns a fake VQA model.
func NewVQA(o Options) *VQA { return &VQA{opts: o} }

// Info implements model.VQA.
func (m *VQA) Info() model.Info { return m.opts.info("vqa") }

// AnswerBatch implements model.VQA: a softmax over hashed option logits.
func (m *VQA) AnswerBatch(ctx context.Context, in []model.VQAInput) ([]model.VQAOutput, error) {
	if err := m.opts.spend(ctx, &m.counters, len(in)); err != nil {
		return nil, err
	}
	out := make([]model.VQAOutput, len(in))
	for i, x := range in {
		if len(x.Options) < api.MinOptions || len(x.Options) > api.MaxOptions {
			return nil, fmt.Errorf("fake: input %d: %d options (want %d…%d, as the real models)", i, len(x.Options), api.MinOptions, api.MaxOptions)
		}
		probs := make([]float64, len(x.Options))
		var sum float64
		best := 0
		for j, opt := range x.Options {
			logit := float64(hash64(x.ImageHash, x.Question, opt)%1000) / 250
			probs[j] = math.Exp(logit)
			sum += probs[j]
			if probs[j] > probs[best] {
				best = j
			}
		}
		for j := range probs {
			probs[j] /= sum
		}
		out[i] = model.VQAOutput{Answer: best, Probs: probs}
		if x.Reason {
			out[i].Reasoning = fmt.Sprintf("<think>The image (%s) is compared against %d options; %q fits best.</think><answer>%c</answer>",
				short(x.ImageHash), len(x.Options), x.Options[best], 'A'+best)
		}
	}
	return out, nil
}

func short(h string) string {
	if len(h) > 8 {
		return h[:8]
	}
	return h
}

// Generator is a fake model.Generator.
type Generator struct {
	counters
	opts Options
}

// NewGenerator returns a fake generator model.
func NewGenerator(o Options) *Generator { return &Generator{opts: o} }

// Info implements model.Generator.
func (m *Generator) Info() model.Info { return m.opts.info("generator") }

// GenerateBatch implements model.Generator.
func (m *Generator) GenerateBatch(ctx context.Context, in []model.GenerateInput) ([][]model.Item, error) {
	if err := m.opts.spend(ctx, &m.counters, len(in)); err != nil {
		return nil, err
	}
	out := make([][]model.Item, len(in))
	for i, x := range in {
		modality := x.Metadata["modality"]
		if modality == "" {
			modality = "medical"
		}
		for k := range x.NumItems {
			ans := int(hash64(x.ImageHash, fmt.Sprint(k)) % 4)
			out[i] = append(out[i], model.Item{
				Question:  fmt.Sprintf("Question %d: what finding is shown in this %s image?", k+1, modality),
				Options:   []string{"No abnormality", "Nodule", "Effusion", "Fracture"},
				Answer:    ans,
				Reasoning: fmt.Sprintf("<think>Inspecting the %s image for the listed findings.</think><answer>%c</answer>", modality, 'A'+ans),
			})
		}
	}
	return out, nil
}

// Reward is a fake model.Reward.
type Reward struct {
	counters
	opts Options
}

// NewReward returns a fake reward model.
func NewReward(o Options) *Reward { return &Reward{opts: o} }

// Info implements model.Reward.
func (m *Reward) Info() model.Info { return m.opts.info("reward") }

// ScoreBatch implements model.Reward: a score in [−6, 10] from a hash.
func (m *Reward) ScoreBatch(ctx context.Context, in []model.ScoreInput) ([]float64, error) {
	if err := m.opts.spend(ctx, &m.counters, len(in)); err != nil {
		return nil, err
	}
	out := make([]float64, len(in))
	for i, x := range in {
		h := hash64(x.ImageHash, x.Question, strings.Join(x.Options, "\x1f"), fmt.Sprint(x.Answer), x.Reasoning)
		out[i] = -6 + float64(h%1601)/100
	}
	return out, nil
}

// Chat is a fake model.Chat that answers with a fixed sentence naming the
// images it saw, emitting one word per token.
type Chat struct {
	counters
	opts Options
}

// NewChat returns a fake chat model.
func NewChat(o Options) *Chat { return &Chat{opts: o} }

// Info implements model.Chat.
func (m *Chat) Info() model.Info { return m.opts.info("chat") }

// ChatBatch implements model.Chat.
func (m *Chat) ChatBatch(ctx context.Context, in []model.ChatInput) ([]model.ChatOutput, error) {
	if err := m.opts.spend(ctx, &m.counters, len(in)); err != nil {
		return nil, err
	}
	out := make([]model.ChatOutput, len(in))
	for i, x := range in {
		images, prompt := 0, 0
		for _, msg := range x.Messages {
			images += len(msg.Images)
			prompt += len(strings.Fields(msg.Text)) + 64*len(msg.Images)
		}
		words := strings.Fields(fmt.Sprintf("I see %d image(s). The findings are consistent with a normal study.", images))
		limit := x.MaxTokens
		if limit <= 0 || limit > len(words) {
			limit = len(words)
		}
		var b strings.Builder
		for k, w := range words[:limit] {
			piece := w
			if k > 0 {
				piece = " " + w
			}
			b.WriteString(piece)
			if x.Emit != nil {
				x.Emit(piece)
			}
		}
		finish := "stop"
		if limit < len(words) {
			finish = "length"
		}
		out[i] = model.ChatOutput{Text: b.String(), FinishReason: finish, PromptTokens: prompt, CompletionTokens: limit}
	}
	return out, nil
}

// Compile-time checks.
var (
	_ model.VQA       = (*VQA)(nil)
	_ model.Generator = (*Generator)(nil)
	_ model.Reward    = (*Reward)(nil)
	_ model.Chat      = (*Chat)(nil)
)
