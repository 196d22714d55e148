package models

import (
	"context"
	"fmt"
	"strings"

	"github.com/medgr2/medgr2/runtime/generate"
)

// TokenFunc receives, while GenerateStream runs, the tokens that row has
// produced since the previous call for that row (usually one). It is
// called from the generating goroutine and must not block for long.
type TokenFunc func(row int, tokens []int)

// GenerateStream is Generate with the KV cache that also reports every
// row's tokens through emit (when not nil) as soon as they are sampled,
// for streaming responses. Every token of every Result is reported exactly
// once, in order, stop token included; a finished row reports nothing
// more. f holds the prompts' image features, from ImageFeatures.
func (v *VLM) GenerateStream(ctx context.Context, prompts []Prompt, opts []generate.Options, f Features, emit TokenFunc) ([]generate.Result, error) {
	if len(opts) != len(prompts) {
		return nil, fmt.Errorf("%w: %d options for %d prompts", ErrBadRequest, len(opts), len(prompts))
	}
	s := &streamSession{emit: emit, rows: make([]streamRow, len(opts))}
	budget := 0
	for i, o := range opts {
		n := o.MaxNewTokens
		if n <= 0 {
			n = generate.DefaultMaxNewTokens
		}
		s.rows[i] = streamRow{opts: o, budget: n}
		budget = max(budget, n)
	}
	first, d, err := v.PrefillWith(ctx, prompts, budget, f)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	s.inner = d
	var sess generate.Session = d
	if emit != nil {
		sess = s
	}
	res, err := generate.Run(ctx, sess, first, v.suppressVision(opts))
	if err != nil {
		return nil, fmt.Errorf("models: generate: %w", err)
	}
	for i, r := range res {
		// The step that finished the last rows is never fed back through
		// Next; report its tokens (and anything else not yet sent) here.
		if sent := len(s.rows[i].tokens); emit != nil && !s.rows[i].done && sent < len(r.Tokens) {
			emit(i, r.Tokens[sent:])
		}
	}
	return res, nil
}

// streamSession wraps a Decoder: each Next carries the tokens the engine
// just sampled, which it reports before advancing the cache.
type streamSession struct {
	inner generate.Session
	emit  TokenFunc
	rows  []streamRow
}

// streamRow mirrors the engine's stopping rules for one row, so tokens fed
// again to a finished row are not reported twice.
type streamRow struct {
	opts   generate.Options
	budget int   // MaxNewTokens resolved
	tokens []int // reported so far
	done   bool  // finished: stop token, stop string or budget
}

// Next reports each unfinished row's new token, then advances the batch.
func (s *streamSession) Next(ctx context.Context, tokens []int) (generate.Logits, error) {
	for i, t := range tokens {
		r := &s.rows[i]
		if r.done {
			continue
		}
		r.tokens = append(r.tokens, t)
		s.emit(i, r.tokens[len(r.tokens)-1:])
		r.done = r.finished(t)
	}
	return s.inner.Next(ctx, tokens)
}

// finished applies generate's rules: a stop token, a stop string in the
// decoded text, or the budget.
func (r *streamRow) finished(t int) bool {
	for _, s := range r.opts.StopTokens {
		if t == s {
			return true
		}
	}
	if len(r.opts.StopStrings) > 0 && r.opts.Detokenize != nil {
		text := r.opts.Detokenize(r.tokens)
		for _, s := range r.opts.StopStrings {
			if s != "" && strings.Contains(text, s) {
				return true
			}
		}
	}
	return len(r.tokens) >= r.budget
}
