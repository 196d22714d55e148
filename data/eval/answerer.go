package eval

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/medgr2/medgr2/data"
)

// Answer is a model's reply to one item.
type Answer struct {
	// Text is the raw output ("<think>…</think><answer>B</answer>", "B",
	// or an option's text); it is parsed with data.ExtractAnswer.
	Text string `json:"output"`
	// OptionProbs, when set, holds one probability per option in letter
	// order. When Text is empty or names no option, the most probable
	// option is the prediction.
	OptionProbs []float64 `json:"probs,omitempty"`
}

// Answerer answers a batch of items. It returns one Answer per item, in
// order. Implementations must honour ctx. A model-backed Answerer lives
// with the model bundle code; this package provides scripted ones for
// baselines and offline evaluation.
type Answerer interface {
	Answer(ctx context.Context, items []data.Item) ([]Answer, error)
}

// AnswererFunc adapts a function to Answerer.
type AnswererFunc func(ctx context.Context, items []data.Item) ([]Answer, error)

// Answer calls f.
func (f AnswererFunc) Answer(ctx context.Context, items []data.Item) ([]Answer, error) {
	return f(ctx, items)
}

// Sentinel errors of the evaluator and the scripted answerers.
var (
	ErrAnswerCount = errors.New("eval: answerer returned the wrong number of answers")
	ErrAnswersFile = errors.New("eval: bad answers file")
	ErrLetter      = errors.New("eval: bad constant letter")
)

// letterAnswers returns answers that are option letters.
func letterAnswers(items []data.Item, pick func(data.Item) int) []Answer {
	out := make([]Answer, len(items))
	for i, it := range items {
		if k := pick(it); k >= 0 {
			out[i] = Answer{Text: data.Letters[k : k+1]}
		}
	}
	return out
}

// Random picks a uniformly random option per item. The choice depends only
// on the seed and the question id, so it is the same alone or in a batch.
type Random struct{ Seed uint64 }

// Answer implements Answerer.
func (r Random) Answer(ctx context.Context, items []data.Item) ([]Answer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return letterAnswers(items, func(it data.Item) int {
		h := fnv.New64a()
		h.Write([]byte(it.QuestionID))
		return rand.New(rand.NewPCG(r.Seed, h.Sum64())).IntN(len(it.Options()))
	}), nil
}

// Constant always answers the same letter (an item with fewer options gets
// an answer it cannot parse, which counts as wrong).
type Constant struct{ Letter string }

// NewConstant returns a Constant answerer for letter "A"…"D".
func NewConstant(letter string) (Constant, error) {
	l := strings.ToUpper(strings.TrimSpace(letter))
	if len(l) != 1 || !strings.Contains(data.Letters, l) {
		return Constant{}, fmt.Errorf("%w: %q", ErrLetter, letter)
	}
	return Constant{Letter: l}, nil
}

// Answer implements Answerer.
func (c Constant) Answer(ctx context.Context, items []data.Item) ([]Answer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Answer, len(items))
	for i := range out {
		out[i] = Answer{Text: c.Letter}
	}
	return out, nil
}

// Majority is the majority-answer baseline: for each item it picks the
// option whose text was most often the correct answer in the reference
// items (typically the training split), falling back to the reference's
// most frequent answer letter when no option text was ever correct.
type Majority struct {
	counts map[string]int // normalised answer text → times correct
	letter int            // most frequent correct letter index
}

// NewMajority counts the answers of the reference items.
func NewMajority(reference []data.Item) *Majority {
	m := &Majority{counts: map[string]int{}}
	var letters [data.MaxOptions]int
	for _, it := range reference {
		m.counts[data.NormText(it.GTAnswer)]++
		if k, err := it.AnswerIndex(); err == nil {
			letters[k]++
		}
	}
	for k := range letters {
		if letters[k] > letters[m.letter] {
			m.letter = k
		}
	}
	return m
}

// Answer implements Answerer.
func (m *Majority) Answer(ctx context.Context, items []data.Item) ([]Answer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return letterAnswers(items, func(it data.Item) int {
		best, bestN := -1, 0
		for k, o := range it.Options() {
			if n := m.counts[data.NormText(o)]; n > bestN {
				best, bestN = k, n
			}
		}
		if best < 0 {
			best = min(m.letter, len(it.Options())-1)
		}
		return best
	}), nil
}

// Scripted answers items from recorded outputs keyed by question id; an
// item without a recorded output gets an empty answer, which counts as
// unparsed (and in Missing).
type Scripted struct {
	byID map[string]Answer
}

// answerLine is one line of an answers file.
type answerLine struct {
	QuestionID string    `json:"question_id"`
	Output     *string   `json:"output"`
	Probs      []float64 `json:"probs"`
}

// LoadAnswers reads a JSONL answers file: one object per line with
// question_id and output (raw model text) and/or probs (one per option).
// Bad lines are errors naming the file and line.
func LoadAnswers(path string) (*Scripted, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval: answers: %w", err)
	}
	s := &Scripted{byID: map[string]Answer{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<16), 16<<20)
	for line := 1; sc.Scan(); line++ {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		var al answerLine
		if err := json.Unmarshal(l, &al); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %v", ErrAnswersFile, path, line, err)
		}
		if al.QuestionID == "" || (al.Output == nil && al.Probs == nil) {
			return nil, fmt.Errorf("%w: %s:%d: need question_id and output or probs", ErrAnswersFile, path, line)
		}
		if _, dup := s.byID[al.QuestionID]; dup {
			return nil, fmt.Errorf("%w: %s:%d: duplicate question_id %q", ErrAnswersFile, path, line, al.QuestionID)
		}
		a := Answer{OptionProbs: al.Probs}
		if al.Output != nil {
			a.Text = *al.Output
		}
		s.byID[al.QuestionID] = a
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrAnswersFile, path, err)
	}
	return s, nil
}

// NewScripted returns a Scripted answerer from a map of outputs.
func NewScripted(outputs map[string]Answer) *Scripted {
	return &Scripted{byID: outputs}
}

// Answer implements Answerer.
func (s *Scripted) Answer(ctx context.Context, items []data.Item) ([]Answer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Answer, len(items))
	for i, it := range items {
		out[i] = s.byID[it.QuestionID]
	}
	return out, nil
}

// Has reports whether the script holds an answer for the question id.
func (s *Scripted) Has(id string) bool {
	_, ok := s.byID[id]
	return ok
}
