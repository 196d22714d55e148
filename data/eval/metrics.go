package eval

import (
	"math"
	"sort"
)

// Z95 is the normal quantile for a two-sided 95% interval.
const Z95 = 1.959963984540054

// Wilson returns the Wilson score interval for correct successes out of n
// at normal quantile z (use Z95 for 95%). With n = 0 it returns 0, 1.
func Wilson(correct, n int, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	p := float64(correct) / float64(n)
	nf := float64(n)
	z2 := z * z
	den := 1 + z2/nf
	centre := (p + z2/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	return math.Max(0, centre-half), math.Min(1, centre+half)
}

// Score is the accuracy of one group of items.
type Score struct {
	Group    string  `json:"group"`
	N        int     `json:"n"`
	Correct  int     `json:"correct"`
	Unparsed int     `json:"unparsed"` // outputs that name no option (wrong unless probabilities chose the answer)
	Accuracy float64 `json:"accuracy"` // Correct / N, 0 when N is 0
	Low      float64 `json:"ci95_low"` // Wilson 95% interval
	High     float64 `json:"ci95_high"`
}

func (s *Score) add(correct, parsed bool) {
	s.N++
	if correct {
		s.Correct++
	}
	if !parsed {
		s.Unparsed++
	}
}

func (s *Score) finish() {
	if s.N > 0 {
		s.Accuracy = float64(s.Correct) / float64(s.N)
	}
	s.Low, s.High = Wilson(s.Correct, s.N, Z95)
}

// Summary is accuracy overall and broken down by modality, question type
// and dataset. Breakdowns are sorted by group name.
type Summary struct {
	Overall        Score   `json:"overall"`
	ByModality     []Score `json:"by_modality"`
	ByQuestionType []Score `json:"by_question_type"`
	ByDataset      []Score `json:"by_dataset"`
	// Missing counts items the answerer gave no output for at all.
	Missing int `json:"missing"`
}

// Summarize computes the summary of a list of predictions.
func Summarize(preds []Prediction) Summary {
	s := Summary{Overall: Score{Group: "overall"}}
	mod, typ, ds := map[string]*Score{}, map[string]*Score{}, map[string]*Score{}
	for _, p := range preds {
		s.Overall.add(p.Correct, p.Parsed)
		group(mod, p.Modality).add(p.Correct, p.Parsed)
		group(typ, p.QuestionType).add(p.Correct, p.Parsed)
		group(ds, p.Dataset).add(p.Correct, p.Parsed)
		if p.Output == "" && len(p.OptionProbs) == 0 {
			s.Missing++
		}
	}
	s.Overall.finish()
	s.ByModality, s.ByQuestionType, s.ByDataset = flatten(mod), flatten(typ), flatten(ds)
	return s
}

func group(m map[string]*Score, name string) *Score {
	if name == "" {
		name = "(none)"
	}
	if m[name] == nil {
		m[name] = &Score{Group: name}
	}
	return m[name]
}

func flatten(m map[string]*Score) []Score {
	out := make([]Score, 0, len(m))
	for _, s := range m {
		s.finish()
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}
