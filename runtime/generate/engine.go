package generate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// ErrBadLogits reports logits whose shape does not match the batch.
var ErrBadLogits = errors.New("generate: logits do not match the batch")

// Logits holds next-token scores for a batch: Rows rows of Vocab values,
// row-major in Data.
type Logits struct {
	Data  []float32 // Rows×Vocab scores
	Rows  int       // number of sequences
	Vocab int       // vocabulary size
}

// Row returns the scores of row i, sharing Data's memory.
func (l Logits) Row(i int) []float32 { return l.Data[i*l.Vocab : (i+1)*l.Vocab] }

func (l Logits) check(rows int) error {
	if l.Rows != rows || l.Vocab <= 0 || len(l.Data) != l.Rows*l.Vocab {
		return fmt.Errorf("%w: got %d rows × %d vocab (%d values), want %d rows",
			ErrBadLogits, l.Rows, l.Vocab, len(l.Data), rows)
	}
	return nil
}

// Session advances every row of a prefilled batch by one token.
type Session interface {
	// Next feeds tokens[i] to row i (finished rows receive their last token
	// again and their logits are ignored) and returns the logits for the
	// following position of every row.
	Next(ctx context.Context, tokens []int) (Logits, error)
}

// Options controls the generation of one row.
type Options struct {
	// MaxNewTokens bounds the completion length; 0 means 256.
	MaxNewTokens int
	// Temperature divides the logits before sampling; 0 selects greedy
	// decoding (argmax).
	Temperature float32
	// TopK keeps the K most likely tokens; 0 keeps all.
	TopK int
	// TopP keeps the smallest set of tokens whose probability sums to at
	// least TopP; 0 or 1 keeps all.
	TopP float32
	// Seed seeds the row's random source (PCG); the same seed gives the
	// same completion.
	Seed uint64
	// StopTokens end the completion when generated; the stop token is
	// included in Result.Tokens.
	StopTokens []int
	// StopStrings end the completion when the decoded text contains one of
	// them; the completion is cut at the token that completed the string.
	// They need Detokenize.
	StopStrings []string
	// Detokenize decodes token ids to text for StopStrings.
	Detokenize func(ids []int) string
	// SuppressTokens are never generated (Hugging Face's suppress_tokens):
	// sampling and greedy choice skip them, as they skip tokens outside
	// top-k/top-p. LogProbs stay those of the full distribution. A model
	// suppresses its image placeholders this way, so a completion never
	// holds an image slot.
	SuppressTokens []int
	// TemperatureAfter overrides Temperature for the token that directly
	// follows a generated token in the map: TemperatureAfter[tok] is the
	// temperature of the next pick (0 is greedy). A structured completion
	// can sample its free text and decide a field (the answer letter after
	// "<answer>") greedily. The first token, which follows the prompt, is
	// never overridden.
	TemperatureAfter map[int]float32
}

// DefaultMaxNewTokens is the completion budget when Options.MaxNewTokens is 0.
const DefaultMaxNewTokens = 256

// Finish reasons reported in Result.FinishReason.
const (
	FinishStop   = "stop"   // a stop token or stop string was generated
	FinishLength = "length" // MaxNewTokens was reached
)

// Result is one row's completion.
type Result struct {
	Tokens       []int     // generated token ids, stop token included
	LogProbs     []float32 // log p(Tokens[i]) under softmax(logits/T)
	FinishReason string    // FinishStop or FinishLength
}

// row is the per-sequence state of a running batch.
type row struct {
	opts   Options
	rng    *rand.Rand // per-row source, so batching does not change draws
	res    Result
	done   bool
	budget int // MaxNewTokens resolved
	// scratch buffers reused across steps
	probs []float64
	order []int
}

// Run generates one completion per row, starting from first (the logits
// after each row's prompt) and advancing the batch with sess. opts holds
// one Options per row. It returns when every row has finished, or with the
// first error from sess or ctx.
func Run(ctx context.Context, sess Session, first Logits, opts []Options) ([]Result, error) {
	if err := first.check(len(opts)); err != nil {
		return nil, err
	}
	rows := make([]*row, len(opts))
	for i, o := range opts {
		if err := o.validate(); err != nil {
			return nil, fmt.Errorf("generate: row %d: %w", i, err)
		}
		b := o.MaxNewTokens
		if b == 0 {
			b = DefaultMaxNewTokens
		}
		rows[i] = &row{opts: o, budget: b, rng: rand.New(rand.NewPCG(o.Seed, 0x6d656467723221))}
	}
	logits := first
	tokens := make([]int, len(rows))
	for {
		active := 0
		for i, r := range rows {
			if r.done {
				continue
			}
			tok := r.step(logits.Row(i))
			tokens[i] = tok
			if !r.done {
				active++
			}
		}
		if active == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		next, err := sess.Next(ctx, tokens)
		if err != nil {
			return nil, fmt.Errorf("generate: decode step: %w", err)
		}
		if err := next.check(len(rows)); err != nil {
			return nil, err
		}
		logits = next
	}
	out := make([]Result, len(rows))
	for i, r := range rows {
		out[i] = r.res
	}
	return out, nil
}

func (o Options) validate() error {
	switch {
	case o.MaxNewTokens < 0:
		return fmt.Errorf("option MaxNewTokens %d < 0", o.MaxNewTokens)
	case o.Temperature < 0 || math.IsNaN(float64(o.Temperature)):
		return fmt.Errorf("option Temperature %v < 0", o.Temperature)
	case o.TopK < 0:
		return fmt.Errorf("option TopK %d < 0", o.TopK)
	case o.TopP < 0 || o.TopP > 1:
		return fmt.Errorf("option TopP %v outside [0, 1]", o.TopP)
	case len(o.StopStrings) > 0 && o.Detokenize == nil:
		return errors.New("option StopStrings needs Detokenize")
	}
	for _, t := range o.SuppressTokens {
		if t < 0 {
			return fmt.Errorf("option SuppressTokens holds %d < 0", t)
		}
	}
	for tok, t := range o.TemperatureAfter {
		if t < 0 || math.IsNaN(float64(t)) {
			return fmt.Errorf("option TemperatureAfter[%d] %v < 0", tok, t)
		}
	}
	return nil
}

// step picks the row's next token from its logits, records it and updates
// the finished state. It returns the token to feed next.
func (r *row) step(logits []float32) int {
	tok, lp := r.pick(logits)
	r.res.Tokens = append(r.res.Tokens, tok)
	r.res.LogProbs = append(r.res.LogProbs, lp)
	switch {
	case r.stoppedByToken(tok) || r.stoppedByString():
		r.done, r.res.FinishReason = true, FinishStop
	case len(r.res.Tokens) >= r.budget:
		r.done, r.res.FinishReason = true, FinishLength
	}
	return tok
}

func (r *row) stoppedByToken(tok int) bool {
	for _, s := range r.opts.StopTokens {
		if tok == s {
			return true
		}
	}
	return false
}

// stoppedByString checks whether the text of the completion now contains a
// stop string that it did not contain one token earlier.
func (r *row) stoppedByString() bool {
	if len(r.opts.StopStrings) == 0 {
		return false
	}
	text := r.opts.Detokenize(r.res.Tokens)
	for _, s := range r.opts.StopStrings {
		if s != "" && strings.Contains(text, s) {
			return true
		}
	}
	return false
}
