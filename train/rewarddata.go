package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
)

// The paper's four sample levels (reward-model regression targets).
const (
	LevelOriginal   = 10 // the item's own question, answer and reasoning
	LevelPerturbed  = 6  // a wrong letter, a swapped option or an altered finding
	LevelIncoherent = 0  // reasoning contradicting the answer, or shuffled text
	LevelIrrelevant = -6 // a question about another image or modality
)

// Sample is one graded reward-model example: an image, a question with
// options, an answer with its reasoning, and the level it deserves.
type Sample struct {
	QuestionID string   // the item the sample was made from
	Kind       string   // original, wrong_letter, swapped_option, altered_finding, contradiction, shuffled, irrelevant
	ImagePath  string   // the image shown
	Question   string   // the question asked
	Options    []string // the options listed
	Answer     string   // "<think>…</think><answer>X</answer>"
	Level      float32  // LevelOriginal … LevelIrrelevant
}

// GradedSamples builds, from each MCQ item, one original sample and one
// sample per other level (the perturbation kind chosen with a PCG seeded by
// seed): perturbed = wrong answer letter, swapped option text or altered
// finding; incoherent = reasoning that contradicts the answer, or the
// answer's words shuffled; irrelevant = the question, options and answer of
// an item of another modality (or, failing that, another image) shown with
// this item's image. Items without a valid answer are errors wrapping
// ErrData.
func GradedSamples(items []data.Item, seed uint64) ([]Sample, error) {
	rng := rand.New(rand.NewPCG(seed, 0x7e3a))
	var out []Sample
	for i, it := range items {
		idx, err := it.AnswerIndex()
		if err != nil {
			return nil, fmt.Errorf("%w: item %d (%s): %w", ErrData, i, it.QuestionID, err)
		}
		opts := it.Options()
		wrong := (idx + 1 + rng.IntN(len(opts)-1)) % len(opts)
		base := Sample{QuestionID: it.QuestionID, ImagePath: it.ImageFile(), Question: it.Question, Options: opts}
		mk := func(kind, answer string, level float32) Sample {
			s := base
			s.Kind, s.Answer, s.Level = kind, answer, level
			return s
		}
		L, W := data.Letters[idx:idx+1], data.Letters[wrong:wrong+1]
		out = append(out, mk("original", AnswerText(L, opts[idx]), LevelOriginal))
		switch rng.IntN(3) {
		case 0:
			out = append(out, mk("wrong_letter", AnswerText(W, opts[idx]), LevelPerturbed))
		case 1:
			out = append(out, mk("swapped_option", AnswerText(W, opts[wrong]), LevelPerturbed))
		default:
			out = append(out, mk("altered_finding", AnswerText(L, opts[wrong]), LevelPerturbed))
		}
		if rng.IntN(2) == 0 {
			out = append(out, mk("contradiction", "<think>The image does not show "+opts[idx]+
				"; it cannot be "+opts[idx]+".</think><answer>"+L+"</answer>", LevelIncoherent))
		} else {
			words := strings.Fields("The image shows " + opts[idx] + " answer " + L + " so")
			rng.Shuffle(len(words), func(a, b int) { words[a], words[b] = words[b], words[a] })
			out = append(out, mk("shuffled", strings.Join(words, " "), LevelIncoherent))
		}
		if o, ok := otherItem(items, i, rng); ok {
			oi, _ := o.AnswerIndex()
			oo := o.Options()
			s := mk("irrelevant", AnswerText(data.Letters[oi:oi+1], oo[oi]), LevelIrrelevant)
			s.Question, s.Options = o.Question, oo
			out = append(out, s)
		}
	}
	return out, nil
}

// otherItem picks an item of another modality, else of another image.
func otherItem(items []data.Item, i int, rng *rand.Rand) (data.Item, bool) {
	var other, otherImage []int
	for j, it := range items {
		if _, err := it.AnswerIndex(); err != nil || j == i {
			continue
		}
		if it.ModalityType != items[i].ModalityType {
			other = append(other, j)
		} else if it.ImagePath != items[i].ImagePath {
			otherImage = append(otherImage, j)
		}
	}
	if len(other) == 0 {
		other = otherImage
	}
	if len(other) == 0 {
		return data.Item{}, false
	}
	return items[other[rng.IntN(len(other))]], true
}

// RewardRows encodes samples as reward-model rows (target = level), token
// for token as models.VLM.RewardPrompt encodes them for scoring. Each row's
// Group is its sample's QuestionID, so a Loader batches an item's graded
// samples together (what LossConfig.RankWeight's pairs need); clear Group
// to batch rows independently, as is better for pure MSE training (see
// DefaultRewardRankWeight).
func (p *Prep) RewardRows(ctx context.Context, samples []Sample) ([]Row, error) {
	rows := make([]Row, len(samples))
	for i, s := range samples {
		r, _, err := p.Row(ctx, s.Question, s.Options, s.ImagePath, models.RewardResponse(s.Options, s.Answer))
		if err != nil {
			return nil, fmt.Errorf("sample %d (%s, %s): %w", i, s.QuestionID, s.Kind, err)
		}
		// The score is read at the row's last token: end the row at the
		// <|im_end|> closing the answer, where models.VLM.Score reads it.
		r.IDs = r.IDs[:r.AnswerEnd]
		r.Target, r.Group = s.Level, s.QuestionID
		rows[i] = r
	}
	return rows, nil
}

// Spearman returns the rank correlation of x and y (ties get their mean
// rank); NaN when either is constant or the lengths differ.
func Spearman(x, y []float64) float64 {
	if len(x) != len(y) || len(x) < 2 {
		return math.NaN()
	}
	rx, ry := ranks(x), ranks(y)
	var mx, my float64
	for i := range rx {
		mx += rx[i]
		my += ry[i]
	}
	mx /= float64(len(rx))
	my /= float64(len(ry))
	var sxy, sxx, syy float64
	for i := range rx {
		dx, dy := rx[i]-mx, ry[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return math.NaN()
	}
	return sxy / math.Sqrt(sxx*syy)
}

func ranks(v []float64) []float64 {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
	r := make([]float64, len(v))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && v[idx[j+1]] == v[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	return r
}

// AUC returns the probability that a score of pos exceeds one of neg,
// ties counting one half (the area under the ROC curve); NaN when either
// is empty.
func AUC(pos, neg []float64) float64 {
	if len(pos) == 0 || len(neg) == 0 {
		return math.NaN()
	}
	var w float64
	for _, x := range pos {
		for _, y := range neg {
			switch {
			case x > y:
				w++
			case x == y:
				w += 0.5
			}
		}
	}
	return w / float64(len(pos)*len(neg))
}
