package eval

import (
	"context"
	"fmt"
	"io"

	"github.com/medgr2/medgr2/data"
)

// Options tune Evaluate.
type Options struct {
	// BatchSize is the number of items per Answer call; 0 means 16.
	BatchSize int
	// Progress, if not nil, receives the progress: a bar redrawn in place
	// when it is a terminal, else a plain line every 10% of the items and
	// at least every 10 s, and one when done.
	Progress io.Writer
	// Description labels the progress.
	Description string
}

// Prediction is the outcome on one item.
type Prediction struct {
	QuestionID   string    `json:"question_id"`
	Dataset      string    `json:"dataset"`
	Modality     string    `json:"modality_type"`
	QuestionType string    `json:"question_type"`
	Split        string    `json:"split,omitempty"`
	Output       string    `json:"output"`
	OptionProbs  []float64 `json:"probs,omitempty"`
	Gold         int       `json:"gold"`      // correct option index
	Predicted    int       `json:"predicted"` // chosen option index; -1 when none could be read and no probabilities were given
	Parsed       bool      `json:"parsed"`
	Correct      bool      `json:"correct"`
}

// Result is a finished evaluation.
type Result struct {
	Predictions []Prediction `json:"predictions"`
	Summary     Summary      `json:"summary"`
}

// Evaluate runs a over items in batches and scores each answer: the
// prediction is the option ExtractAnswer reads from the output text, or,
// when the text is empty or names no option, the most probable option if
// probabilities are given (as the server answers). A text that names no
// option is counted as unparsed either way; without probabilities it
// counts wrong.
// Items must be valid (see data.Item.Validate).
func Evaluate(ctx context.Context, a Answerer, items []data.Item, opt Options) (*Result, error) {
	bs := opt.BatchSize
	if bs <= 0 {
		bs = 16
	}
	bar := newProgress(opt.Progress, len(items), opt.Description)
	res := &Result{Predictions: make([]Prediction, 0, len(items))}
	for start := 0; start < len(items); start += bs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		batch := items[start:min(start+bs, len(items))]
		answers, err := a.Answer(ctx, batch)
		if err != nil {
			return nil, fmt.Errorf("eval: items %d–%d: %w", start, start+len(batch)-1, err)
		}
		if len(answers) != len(batch) {
			return nil, fmt.Errorf("%w: %d for %d items", ErrAnswerCount, len(answers), len(batch))
		}
		for i, it := range batch {
			p, err := score(it, answers[i])
			if err != nil {
				return nil, err
			}
			res.Predictions = append(res.Predictions, p)
		}
		bar.add(len(batch))
	}
	bar.finish()
	res.Summary = Summarize(res.Predictions)
	return res, nil
}

func score(it data.Item, a Answer) (Prediction, error) {
	gold, err := it.AnswerIndex()
	if err != nil {
		return Prediction{}, fmt.Errorf("eval: %s: %w", it.QuestionID, err)
	}
	p := Prediction{
		QuestionID: it.QuestionID, Dataset: it.Dataset, Modality: it.ModalityType,
		QuestionType: it.QuestionType, Split: it.Split, Output: a.Text, OptionProbs: a.OptionProbs,
		Gold: gold, Predicted: -1,
	}
	opts := it.Options()
	probs := len(a.OptionProbs) == len(opts)
	switch {
	case a.Text != "":
		p.Predicted, p.Parsed = data.ExtractAnswer(a.Text, opts)
	case probs:
		p.Predicted, p.Parsed = argmax(a.OptionProbs), true
	}
	switch {
	case !p.Parsed && probs:
		// The text names no option: the most probable one is the answer,
		// as models.VLM.Answer (and so the server) answers.
		p.Predicted = argmax(a.OptionProbs)
	case !p.Parsed:
		p.Predicted = -1
	}
	p.Correct = p.Predicted == gold
	return p, nil
}

func argmax(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// ExpectedRandomAccuracy is the mean of 1/options over items: the
// accuracy a uniform random guesser has in expectation.
func ExpectedRandomAccuracy(items []data.Item) float64 {
	if len(items) == 0 {
		return 0
	}
	var s float64
	for _, it := range items {
		s += 1 / float64(len(it.Options()))
	}
	return s / float64(len(items))
}
